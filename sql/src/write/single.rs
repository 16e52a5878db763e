//! Writing to a database that takes one writer at a time (SQLite, an embedded file):
//! a sink keeps **one** connection, opened on first use, and every writer of the run
//! (one per stream) takes turns on it from a blocking thread, so the async runtime never
//! waits on the database. The writers share its one open transaction, each batch atomic
//! inside a savepoint. A flush of any writer commits what all of them wrote; that is
//! harmless, as committing early only makes rows durable sooner. What must not happen
//! is a writer believing rows durable that a failed commit threw away: a failed commit
//! marks every writer with rows in it, and their next flush fails instead.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ferry_core::{Error, ErrorKind, Result};

/// A blocking connection, as far as sharing it needs.
pub trait Session: Send + 'static {
    /// Runs statements that return no rows.
    fn exec(&mut self, sql: &str) -> Result<()>;
    /// Whether a transaction is open (the database may end one itself after an error).
    fn in_transaction(&self) -> bool;
    /// Makes what a commit wrote durable, right after it.
    fn sync(&mut self) -> Result<()>;
    /// `e` with the database named in its context.
    fn named(&self, e: Error) -> Error;
}

/// The result of `fut`, a call of a blocking driver's (a single-writer database's
/// [`crate::write::Driver`] answers at once, its futures ready when first polled).
pub fn ready<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(fut).poll(&mut cx) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(Error::internal(
            "a blocking driver's call did not finish at once",
        )),
    }
}

/// Row ids a writer inserted, first to last.
pub type Rows = (i64, i64);

/// The one connection of a sink and who has rows in its open transaction.
pub struct Shared<S> {
    /// The connection.
    pub session: S,
    /// Writers with rows in the open, uncommitted transaction.
    dirty: HashSet<u64>,
    /// Writers whose uncommitted rows a failed commit discarded.
    lost: HashSet<u64>,
    /// Row id ranges each writer inserted since its own last flush, so an aborted stream
    /// can take its rows back out while other streams' rows stay. Another writer's
    /// commit makes them durable too, but they stay here: the run counts a stream's rows
    /// committed only at that stream's own flush, so an abort must still remove them.
    pending: HashMap<u64, Vec<Rows>>,
    next_writer: u64,
}

impl<S: Session> Shared<S> {
    fn new(session: S) -> Self {
        Shared {
            session,
            dirty: HashSet::new(),
            lost: HashSet::new(),
            pending: HashMap::new(),
            next_writer: 1,
        }
    }

    /// A new writer's id.
    pub fn writer(&mut self) -> u64 {
        self.next_writer += 1;
        self.next_writer - 1
    }

    /// Runs `f` inside the open transaction (begun with `IMMEDIATE`: the write lock is
    /// taken now rather than failing to upgrade later), all or nothing.
    pub fn atomically<T>(&mut self, f: impl FnOnce(&mut S) -> Result<T>) -> Result<T> {
        if !self.session.in_transaction() {
            self.session.exec("BEGIN IMMEDIATE")?;
        }
        self.session.exec("SAVEPOINT ferry_op")?;
        match f(&mut self.session) {
            Ok(v) => {
                self.session.exec("RELEASE ferry_op")?;
                Ok(v)
            }
            Err(e) => {
                if self.session.in_transaction() {
                    let _ = self.session.exec("ROLLBACK TO ferry_op; RELEASE ferry_op");
                    if self.dirty.is_empty() {
                        // nobody else's rows: end the empty transaction, free the write lock
                        let _ = self.session.exec("ROLLBACK");
                    }
                } else {
                    // the database rolled the whole transaction back (disk full, I/O error …)
                    self.discard();
                }
                Err(e)
            }
        }
    }

    /// Writer `id` put rows in the open transaction (`rows`: their ids, when it can
    /// take them back).
    pub fn wrote(&mut self, id: u64, rows: Vec<Rows>) {
        self.dirty.insert(id);
        if !rows.is_empty() {
            self.pending.entry(id).or_default().extend(rows);
        }
    }

    /// Commits the open transaction, then makes it durable.
    pub fn commit(&mut self) -> Result<()> {
        if !self.session.in_transaction() {
            return Ok(());
        }
        if let Err(e) = self.session.exec("COMMIT") {
            if self.session.in_transaction() {
                let _ = self.session.exec("ROLLBACK");
            }
            self.discard();
            return Err(e);
        }
        self.dirty.clear();
        self.session.sync()
    }

    /// Commits for writer `id`, whose rows count committed from now on (an abort leaves
    /// them); fails if a failed commit discarded some of them.
    pub fn flush(&mut self, id: u64) -> Result<()> {
        self.check_lost(id)?;
        self.commit()?;
        self.pending.remove(&id);
        Ok(())
    }

    /// Fails if a failed commit discarded rows of writer `id` (and forgets it).
    pub fn check_lost(&mut self, id: u64) -> Result<()> {
        if self.lost.remove(&id) {
            let m = "rows written since the last flush were lost: a commit on this database failed";
            return Err(self.session.named(Error::new(ErrorKind::Io, m)));
        }
        Ok(())
    }

    /// Writer `id` gives up: its uncommitted rows are rolled back when nobody else has
    /// rows in the transaction. Returns the ranges of its rows that may still be there
    /// (committed by another writer's flush, or sharing the transaction with theirs).
    pub fn abandon(&mut self, id: u64) -> Result<Vec<Rows>> {
        self.lost.remove(&id);
        let rows = self.pending.remove(&id).unwrap_or_default();
        if self.dirty.remove(&id) && self.dirty.is_empty() && self.session.in_transaction() {
            self.session.exec("ROLLBACK")?;
        }
        Ok(rows)
    }

    /// The open transaction is gone: every writer with rows in it lost them.
    fn discard(&mut self) {
        let dirty: Vec<u64> = self.dirty.drain().collect();
        self.lost.extend(dirty);
    }
}

/// Opens a sink's connection.
type Open<S> = Box<dyn Fn() -> Result<S> + Send + Sync>;

/// The one connection of a sink, opened on first use, used from blocking threads.
pub struct Connection<S: Session> {
    open: Open<S>,
    slot: Mutex<Option<Shared<S>>>,
}

impl<S: Session> Connection<S> {
    /// Not open yet: `open` opens it on first use.
    pub fn new(open: impl Fn() -> Result<S> + Send + Sync + 'static) -> Self {
        Connection {
            open: Box::new(open),
            slot: Mutex::new(None),
        }
    }

    /// Runs `f` on the connection (opened if needed) on a blocking thread.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Shared<S>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.peek(|this, slot| {
            if slot.is_none() {
                *slot = Some(Shared::new((this.open)()?));
            }
            f(slot.as_mut().expect("opened above"))
        })
        .await
    }

    /// Runs `f` on a blocking thread, with the connection if it is open.
    pub async fn peek<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Self, &mut Option<Shared<S>>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = this.slot.lock().map_err(|_| {
                Error::internal(
                    "an earlier database operation panicked; the connection is unusable",
                )
            })?;
            f(&this, &mut slot)
        })
        .await
        .map_err(|e| Error::internal(format!("database worker failed: {e}")))?
    }
}

impl<S: Session> Drop for Connection<S> {
    fn drop(&mut self) {
        // closing may take a while (SQLite checkpoints its WAL): not on an async thread
        let shared = self.slot.get_mut().ok().and_then(Option::take);
        if let (Some(shared), Ok(rt)) = (shared, tokio::runtime::Handle::try_current()) {
            rt.spawn_blocking(move || drop(shared));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records statements; fails `COMMIT` when told, ending the transaction as SQLite
    /// does after an I/O error.
    #[derive(Default)]
    struct Fake {
        log: Vec<String>,
        open: bool,
        fail_commit: bool,
    }

    impl Session for Fake {
        fn exec(&mut self, sql: &str) -> Result<()> {
            self.log.push(sql.to_string());
            match sql {
                "BEGIN IMMEDIATE" => self.open = true,
                "ROLLBACK" => self.open = false,
                "COMMIT" if self.fail_commit => {
                    self.open = false;
                    return Err(Error::new(ErrorKind::Io, "disk full"));
                }
                "COMMIT" => self.open = false,
                _ => {}
            }
            Ok(())
        }
        fn in_transaction(&self) -> bool {
            self.open
        }
        fn sync(&mut self) -> Result<()> {
            self.log.push("sync".into());
            Ok(())
        }
        fn named(&self, e: Error) -> Error {
            e.with("file", "fake.db")
        }
    }

    #[test]
    fn a_failed_commit_fails_the_next_flush_of_every_writer_with_rows_in_it() {
        let mut db = Shared::new(Fake::default());
        let (a, b, c) = (db.writer(), db.writer(), db.writer());
        db.atomically(|_| Ok(())).unwrap();
        db.wrote(a, vec![(1, 2)]);
        db.wrote(b, vec![]);
        db.session.fail_commit = true;
        assert!(db.flush(c).is_err());
        for w in [a, b] {
            let e = db.flush(w).unwrap_err();
            assert_eq!(e.context_value("file"), Some("fake.db"), "{e}");
            assert!(e.message().contains("lost"), "{e}");
        }
        db.session.fail_commit = false;
        db.flush(a).unwrap();
    }

    #[test]
    fn a_batch_is_all_or_nothing_and_an_abort_rolls_back_only_its_own_rows() {
        let mut db = Shared::new(Fake::default());
        let (a, b) = (db.writer(), db.writer());
        let e = db.atomically(|_| Err::<(), _>(Error::data("bad row")));
        assert!(e.is_err());
        assert_eq!(
            db.session.log,
            [
                "BEGIN IMMEDIATE",
                "SAVEPOINT ferry_op",
                "ROLLBACK TO ferry_op; RELEASE ferry_op",
                "ROLLBACK"
            ]
        );
        db.atomically(|_| Ok(())).unwrap();
        db.wrote(a, vec![(1, 5)]);
        db.wrote(b, vec![(6, 6)]);
        // another writer has rows in the transaction: no rollback, the rows to delete
        assert_eq!(db.abandon(a).unwrap(), [(1, 5)]);
        assert!(db.session.in_transaction());
        assert_eq!(db.abandon(b).unwrap(), [(6, 6)]);
        assert!(!db.session.in_transaction());
        db.atomically(|_| Ok(())).unwrap();
        db.wrote(a, vec![(7, 7)]);
        db.flush(a).unwrap();
        assert_eq!(db.session.log.last().map(String::as_str), Some("sync"));
        assert!(db.abandon(a).unwrap().is_empty(), "flushed rows stay");
    }
}
