//! The `ON DUPLICATE KEY UPDATE` clause of an upsert, in the form the server prefers.
//!
//! MySQL deprecates `VALUES(col)` in that clause from 8.0.20 (a warning per statement
//! now, an error in a later release) in favour of a row alias
//! (`INSERT … VALUES (…) AS new ON DUPLICATE KEY UPDATE c = new.c`). MariaDB has no row
//! alias and keeps `VALUES(col)`.

use crate::core::{quote, Server};

/// The alias the new row goes by in the row-alias form.
const NEW_ROW: &str = "`_ferry_new`";

/// Whether the server takes the row-alias form (MySQL 8.0.20 and later).
pub(crate) fn row_alias(server: Server) -> bool {
    !server.mariadb && server.version >= (8, 0, 20)
}

/// What follows the `VALUES` list of an upsert: the columns not in `key` take the new
/// row's values.
pub(crate) fn suffix(server: Server, names: &[String], key: &[String]) -> String {
    let alias = row_alias(server);
    let new_value = |c: &str| match alias {
        true => format!("{NEW_ROW}.{}", quote(c)),
        false => format!("VALUES({})", quote(c)),
    };
    let updates: Vec<String> = names
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{} = {}", quote(c), new_value(c)))
        .collect();
    let head = match alias {
        true => format!(" AS {NEW_ROW} ON DUPLICATE KEY UPDATE "),
        false => " ON DUPLICATE KEY UPDATE ".to_string(),
    };
    match updates.is_empty() {
        // every column is in the key: a repeated row changes nothing
        true => format!("{head}{0} = {0}", quote(&key[0])),
        false => format!("{head}{}", updates.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(mariadb: bool, version: (u16, u16, u16)) -> Server {
        Server { mariadb, version }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mysql_8_0_20_and_later_use_the_row_alias() {
        let s = suffix(
            server(false, (8, 0, 20)),
            &names(&["id", "name", "n"]),
            &names(&["id"]),
        );
        assert_eq!(
            s,
            " AS `_ferry_new` ON DUPLICATE KEY UPDATE `name` = `_ferry_new`.`name`, `n` = `_ferry_new`.`n`"
        );
        assert!(row_alias(server(false, (8, 4, 3))));
        assert!(row_alias(server(false, (9, 1, 0))));
    }

    #[test]
    fn mariadb_and_older_mysql_keep_values() {
        for s in [
            server(true, (11, 4, 2)),
            server(true, (10, 11, 19)),
            server(false, (8, 0, 19)),
            server(false, (5, 7, 44)),
        ] {
            assert_eq!(
                suffix(s, &names(&["id", "name"]), &names(&["id"])),
                " ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)",
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_key_only_table_updates_nothing() {
        let key = names(&["a", "b"]);
        assert_eq!(
            suffix(server(false, (8, 0, 36)), &key, &key),
            " AS `_ferry_new` ON DUPLICATE KEY UPDATE `a` = `a`"
        );
        assert_eq!(
            suffix(server(true, (10, 11, 0)), &key, &key),
            " ON DUPLICATE KEY UPDATE `a` = `a`"
        );
    }
}
