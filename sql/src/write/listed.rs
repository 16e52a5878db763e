//! Rows the source deleted by key (change data capture): the keys are staged in the
//! writer's keys table (see [`super::missing`]), then the destination's rows with a staged
//! key are deleted (hard) or marked in [`DELETED_AT`] (soft).

use ferry_core::catalog::DELETED_AT;
use ferry_core::Deletes;

use super::dialect::Dialect;

/// The statements that delete or mark the rows of `table` whose `key` is staged in
/// `keys`; the last one's row count is the result. Soft deletes are stamped `started`
/// (UTC, `YYYY-MM-DD HH:MM:SS`) and leave rows marked before as they were.
pub fn listed<D: Dialect + ?Sized>(
    d: &D,
    table: &str,
    keys: &str,
    key: &[String],
    deletes: Deletes,
    started: &str,
) -> Vec<String> {
    let (t, k) = (d.qualified(table), d.qualified(keys));
    let same: Vec<String> = key
        .iter()
        .map(|c| format!("{k}.{c} = {t}.{c}", c = d.quote(c)))
        .collect();
    let staged = format!("EXISTS (SELECT 1 FROM {k} WHERE {})", same.join(" AND "));
    match deletes {
        Deletes::Hard => vec![format!("DELETE FROM {t} WHERE {staged}")],
        Deletes::Soft => {
            let mark = d.quote(DELETED_AT);
            vec![format!(
                "UPDATE {t} SET {mark} = {} WHERE {mark} IS NULL AND {staged}",
                d.timestamp(started)
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::test_dialect::Plain;

    #[test]
    fn staged_keys_are_deleted_or_marked_by_every_key_column() {
        let key = ["a".to_string(), "b".to_string()];
        let at = "2024-05-01 12:00:00";
        assert_eq!(
            listed(&Plain, "t", "k", &key, Deletes::Hard, at),
            [
                r#"DELETE FROM "t" WHERE EXISTS (SELECT 1 FROM "k" WHERE "k"."a" = "t"."a" AND "k"."b" = "t"."b")"#
            ]
        );
        let soft = listed(&Plain, "t", "k", &key[..1], Deletes::Soft, at);
        assert_eq!(
            soft,
            [
                r#"UPDATE "t" SET "_ferry_deleted_at" = '2024-05-01T12:00:00.000000Z' WHERE "_ferry_deleted_at" IS NULL AND EXISTS (SELECT 1 FROM "k" WHERE "k"."a" = "t"."a")"#
            ]
        );
    }
}
