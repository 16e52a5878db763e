//! The tag that binds a destination to one client (tenant binding): a one-row table
//! [`OWNER_TABLE`] naming the client an earlier sync wrote for.

use ferry_core::{FerryType, Result};

use super::dialect::{Driver, KeyPart};
use super::naming::OWNER_TABLE;

/// The client the destination is bound to, if it holds a tag.
pub async fn read<D: Driver>(db: &mut D) -> Result<Option<String>> {
    match db.table(OWNER_TABLE).await? {
        Some(t) => {
            let sql = format!("SELECT client FROM {} LIMIT 1", db.qualified(&t.name));
            db.query_text(&sql).await
        }
        None => Ok(None),
    }
}

/// Binds the destination to `client` unless it is bound already (insert-if-absent, never
/// replace), and returns the client it is bound to then. The caller runs it under a lock
/// (or in a transaction) that makes checking and inserting one step, so two syncs
/// binding at once cannot both win.
pub async fn bind<D: Driver>(db: &mut D, client: &str) -> Result<Option<String>> {
    let t = db.qualified(OWNER_TABLE);
    let ty = db.column_type(FerryType::String, KeyPart::Sole);
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {t} (client {ty} NOT NULL){}",
        db.table_options()
    );
    db.execute(&create).await?;
    let me = db.literal(client);
    let from = db.dual();
    db.execute(&format!(
        "INSERT INTO {t} (client) SELECT {me}{from} WHERE NOT EXISTS (SELECT 1 FROM {t})"
    ))
    .await?;
    db.query_text(&format!("SELECT client FROM {t} LIMIT 1"))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::test_dialect::Fake;
    use futures::FutureExt;

    #[test]
    fn binds_once_and_reads_back() {
        let mut db = Fake::default();
        assert_eq!(read(&mut db).now_or_never().unwrap().unwrap(), None);
        let first = bind(&mut db, "acme").now_or_never().unwrap().unwrap();
        assert_eq!(first.as_deref(), Some("acme"));
        let second = bind(&mut db, "o'hare").now_or_never().unwrap().unwrap();
        assert_eq!(
            second.as_deref(),
            Some("acme"),
            "a bound destination keeps its client"
        );
        assert!(
            db.log
                .iter()
                .any(|s| s.contains("SELECT 'o''hare' WHERE NOT EXISTS")),
            "{:?}",
            db.log
        );
        assert_eq!(
            read(&mut db).now_or_never().unwrap().unwrap().as_deref(),
            Some("acme")
        );
    }
}
