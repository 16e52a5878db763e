//! A stream writer's own connection to a database server that loads rows with plain
//! statements (MySQL): one transaction stays open between flushes, each batch atomic in
//! it (a savepoint), and a flush commits. DDL happens only before rows (`open`) and after
//! the last commit (`close`), as some servers commit implicitly before any DDL.

use async_trait::async_trait;
use ferry_core::arrow_array::RecordBatch;
use ferry_core::{Error, ErrorKind, Result};

use super::writer::Load;

/// What the writer needs of its connection.
#[async_trait]
pub trait Session: Send {
    /// Runs a statement that returns no rows.
    async fn exec(&mut self, sql: &str) -> Result<()>;
    /// Runs a statement that changes rows; returns how many it changed.
    async fn exec_count(&mut self, sql: &str) -> Result<u64>;
    /// Sends `batch`'s rows.
    async fn insert(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Overwrite, after the last commit: puts the staging table in the table's place.
    async fn swap(&mut self) -> Result<()>;
    /// Ends the session (best effort).
    async fn close(self);
}

/// A [`Load`] over a writer's own [`Session`].
pub struct Transacted<S> {
    /// `None` once finished or aborted.
    session: Option<S>,
    /// `DROP TABLE` of an overwrite's staging table: when the swap fails or the stream
    /// is given up.
    drop_staging: Option<String>,
    /// A transaction with rows is open.
    in_tx: bool,
    /// The server rolled the open transaction back (deadlock, lost connection): the rows
    /// since the last flush are gone, so the next flush must fail.
    lost: bool,
}

impl<S: Session> Transacted<S> {
    /// Rows go through `session`; `staging` is an overwrite's staging table (as
    /// statements name it).
    pub fn new(session: S, staging: Option<String>) -> Self {
        Transacted {
            session: Some(session),
            drop_staging: staging.map(|t| format!("DROP TABLE IF EXISTS {t}")),
            in_tx: false,
            lost: false,
        }
    }

    fn session(&mut self) -> Result<&mut S> {
        let closed = || Error::internal("the writer's connection was already closed");
        self.session.as_mut().ok_or_else(closed)
    }

    fn check_lost(&self) -> Result<()> {
        if self.lost {
            return Err(Error::new(
                ErrorKind::Temporary,
                "rows written since the last flush were lost: the server rolled the transaction back",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Session> Load for Transacted<S> {
    async fn write(&mut self, batch: &RecordBatch, _before: u64) -> Result<()> {
        self.check_lost()?;
        if !self.in_tx {
            self.session()?.exec("START TRANSACTION").await?;
            self.in_tx = true;
        }
        // each batch whole or not at all
        self.session()?.exec("SAVEPOINT ferry_batch").await?;
        if let Err(e) = self.session()?.insert(batch).await {
            if self
                .session()?
                .exec("ROLLBACK TO SAVEPOINT ferry_batch")
                .await
                .is_err()
            {
                // the savepoint is gone with the whole transaction
                self.lost = true;
                self.in_tx = false;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        self.check_lost()?;
        if self.in_tx {
            let committed = self.session()?.exec("COMMIT").await;
            self.in_tx = false;
            committed?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        self.session()?;
        let mut session = self.session.take().expect("checked");
        if let Some(drop) = &self.drop_staging {
            if let Err(e) = session.swap().await {
                // the old table is intact; the staged rows cannot be used
                let _ = session.exec(drop).await;
                session.close().await;
                return Err(e);
            }
        }
        session.close().await;
        Ok(())
    }

    async fn apply(&mut self, statements: &[String]) -> Result<Vec<u64>> {
        self.commit().await?;
        let session = self.session()?;
        session.exec("START TRANSACTION").await?;
        let mut counts = Vec::with_capacity(statements.len());
        for sql in statements {
            match session.exec_count(sql).await {
                Ok(n) => counts.push(n),
                Err(e) => {
                    let _ = session.exec("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        session.exec("COMMIT").await?;
        Ok(counts)
    }

    async fn abort(&mut self) -> Result<()> {
        let Some(mut session) = self.session.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        if self.in_tx {
            result = session.exec("ROLLBACK").await;
        }
        if let Some(drop) = &self.drop_staging {
            result = result.and(session.exec(drop).await);
        }
        session.close().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::arrow_array::{ArrayRef, Int64Array};
    use futures::FutureExt;
    use std::sync::{Arc, Mutex};

    /// Logs statements; inserts fail when told, and so does the rollback to the
    /// savepoint (the server ended the transaction).
    #[derive(Clone, Default)]
    struct Fake {
        log: Arc<Mutex<Vec<String>>>,
        fail_insert: bool,
        tx_gone: bool,
    }

    #[async_trait]
    impl Session for Fake {
        async fn exec(&mut self, sql: &str) -> Result<()> {
            self.log.lock().unwrap().push(sql.into());
            match sql.starts_with("ROLLBACK TO") && self.tx_gone {
                true => Err(Error::new(ErrorKind::Temporary, "no such savepoint")),
                false => Ok(()),
            }
        }
        async fn exec_count(&mut self, sql: &str) -> Result<u64> {
            self.exec(sql).await.map(|()| 1)
        }
        async fn insert(&mut self, _batch: &RecordBatch) -> Result<()> {
            self.log.lock().unwrap().push("rows".into());
            match self.fail_insert {
                true => Err(Error::new(ErrorKind::Temporary, "deadlock")),
                false => Ok(()),
            }
        }
        async fn swap(&mut self) -> Result<()> {
            self.log.lock().unwrap().push("swap".into());
            Ok(())
        }
        async fn close(self) {
            self.log.lock().unwrap().push("close".into());
        }
    }

    fn batch() -> RecordBatch {
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        RecordBatch::try_from_iter([("id", ids)]).unwrap()
    }

    #[test]
    fn batches_in_savepoints_flushes_commit_and_a_lost_transaction_fails_the_flush() {
        let fake = Fake::default();
        let log = fake.log.clone();
        let mut t = Transacted::new(fake, Some("`stage`".into()));
        t.write(&batch(), 0).now_or_never().unwrap().unwrap();
        t.commit().now_or_never().unwrap().unwrap();
        t.finish().now_or_never().unwrap().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "START TRANSACTION",
                "SAVEPOINT ferry_batch",
                "rows",
                "COMMIT",
                "swap",
                "close"
            ]
        );
        let fake = Fake {
            fail_insert: true,
            tx_gone: true,
            ..Fake::default()
        };
        let log = fake.log.clone();
        let mut t = Transacted::new(fake, Some("`stage`".into()));
        assert!(t.write(&batch(), 0).now_or_never().unwrap().is_err());
        let e = t.commit().now_or_never().unwrap().unwrap_err();
        assert!(e.message().contains("lost"), "{e}");
        t.abort().now_or_never().unwrap().unwrap();
        let log = log.lock().unwrap();
        assert_eq!(
            log[log.len() - 2..],
            ["DROP TABLE IF EXISTS `stage`", "close"]
        );
        assert!(
            !log.contains(&"ROLLBACK".to_string()),
            "the transaction was gone already"
        );
    }
}
