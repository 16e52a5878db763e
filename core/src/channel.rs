//! A [`MessageStream`] fed by a producer through a bounded channel.
//!
//! A source that reads on its own thread or task hands its messages over through a
//! channel of a few messages: a slow destination makes the producer wait (memory holds a
//! few batches, never the result), and when the consumer drops the stream the next send
//! fails, which tells the producer to stop.
//!
//! [`spawn_blocking`] and [`spawn`] start a producer in two steps: `start` (connect,
//! plan, run the query) fails the read itself, so its error names the stream before any
//! message; `run` then streams, and an error it returns is the stream's last item.

use std::future::Future;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::source::{Message, MessageStream};

/// Messages a read's channel holds by default: a batch waiting while the next is built.
pub const CAPACITY: usize = 2;

/// The producer's end of a message channel.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Result<Message>>,
}

impl Sender {
    /// Sends `message`, waiting for room. `false`: the consumer is gone, stop reading.
    #[must_use = "stop producing when the consumer is gone"]
    pub async fn send(&self, message: Message) -> bool {
        self.tx.send(Ok(message)).await.is_ok()
    }

    /// [`Sender::send`] from a blocking thread (never from an async task).
    #[must_use = "stop producing when the consumer is gone"]
    pub fn send_blocking(&self, message: Message) -> bool {
        self.tx.blocking_send(Ok(message)).is_ok()
    }

    /// Sends `messages` in order; `false` as soon as the consumer is gone.
    #[must_use = "stop producing when the consumer is gone"]
    pub async fn send_all(&self, messages: impl IntoIterator<Item = Message>) -> bool {
        for m in messages {
            if !self.send(m).await {
                return false;
            }
        }
        true
    }

    /// [`Sender::send_all`] from a blocking thread.
    #[must_use = "stop producing when the consumer is gone"]
    pub fn send_all_blocking(&self, messages: impl IntoIterator<Item = Message>) -> bool {
        messages.into_iter().all(|m| self.send_blocking(m))
    }

    /// Ends the stream with `error` (a consumer that is gone does not need it).
    pub async fn fail(&self, error: Error) {
        let _ = self.tx.send(Err(error)).await;
    }

    /// [`Sender::fail`] from a blocking thread.
    pub fn fail_blocking(&self, error: Error) {
        let _ = self.tx.blocking_send(Err(error));
    }

    /// Whether the consumer dropped the stream.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A channel holding up to `capacity` messages: the sender, and the receiver as a stream.
/// The stream ends when every sender is dropped.
pub fn channel(capacity: usize) -> (Sender, MessageStream) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    (Sender { tx }, stream.boxed())
}

/// Starts a producer on a blocking thread: `start` runs there first (its error is this
/// call's), then `run` streams through a channel of `capacity` messages.
pub async fn spawn_blocking<S: Send + 'static>(
    capacity: usize,
    start: impl FnOnce() -> Result<S> + Send + 'static,
    run: impl FnOnce(S, &Sender) -> Result<()> + Send + 'static,
) -> Result<MessageStream> {
    let (tx, stream) = channel(capacity);
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let Some(state) = report_start(start(), ready_tx) else {
            return;
        };
        if let Err(e) = run(state, &tx) {
            tx.fail_blocking(e);
        }
    });
    started(ready_rx).await?;
    Ok(stream)
}

/// Starts a producer as an async task: `start` runs first (its error is this call's),
/// then `run` streams through a channel of `capacity` messages. Dropping the stream makes
/// the producer's next send fail.
pub async fn spawn<S, Fut>(
    capacity: usize,
    start: impl Future<Output = Result<S>> + Send + 'static,
    run: impl FnOnce(S, Sender) -> Fut + Send + 'static,
) -> Result<MessageStream>
where
    S: Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let (tx, stream) = channel(capacity);
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(async move {
        let Some(state) = report_start(start.await, ready_tx) else {
            return;
        };
        let fail = tx.clone();
        if let Err(e) = run(state, tx).await {
            fail.fail(e).await;
        }
    });
    started(ready_rx).await?;
    Ok(stream)
}

/// Tells the caller waiting on `ready` how the start went; the producer's state when it
/// started and the caller still waits.
fn report_start<S>(started: Result<S>, ready: oneshot::Sender<Result<()>>) -> Option<S> {
    match started {
        Ok(state) => ready.send(Ok(())).is_ok().then_some(state),
        Err(e) => {
            let _ = ready.send(Err(e));
            None
        }
    }
}

async fn started(ready: oneshot::Receiver<Result<()>>) -> Result<()> {
    match ready.await {
        Ok(r) => r,
        Err(_) => Err(Error::internal("the reader stopped before it started")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_start_error_fails_the_call_and_a_run_error_ends_the_stream() {
        let e = spawn_blocking(
            2,
            || Err::<(), _>(Error::config("no such table")),
            |_, _| Ok(()),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.message(), "no such table");
        let mut s = spawn_blocking(
            2,
            || Ok(7u64),
            |n, tx| {
                assert!(tx.send_all_blocking([Message::Estimate(n), Message::Total(n)]));
                Err(Error::data("row 2 is bad"))
            },
        )
        .await
        .unwrap();
        assert!(matches!(s.next().await, Some(Ok(Message::Estimate(7)))));
        assert!(matches!(s.next().await, Some(Ok(Message::Total(7)))));
        assert_eq!(
            s.next().await.unwrap().unwrap_err().message(),
            "row 2 is bad"
        );
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_a_blocking_producer() {
        let sent = Arc::new(AtomicU64::new(0));
        let (done_tx, done_rx) = oneshot::channel();
        let counter = sent.clone();
        let mut s = spawn_blocking(
            1,
            || Ok(()),
            move |_, tx| {
                while tx.send_blocking(Message::Estimate(0)) {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let _ = done_tx.send(());
                Ok(())
            },
        )
        .await
        .unwrap();
        assert!(s.next().await.is_some());
        drop(s);
        // the producer notices at its next send and returns
        done_rx.await.unwrap();
        assert!(sent.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_an_async_producer() {
        let (done_tx, done_rx) = oneshot::channel();
        let s = spawn(1, async { Ok(()) }, move |_, tx| async move {
            let mut n = 0;
            while tx.send(Message::Estimate(n)).await {
                n += 1;
            }
            assert!(tx.is_closed());
            let _ = done_tx.send(n);
            Ok(())
        })
        .await
        .unwrap();
        drop(s);
        // the channel holds one message: the producer stops after at most two sends
        assert!(done_rx.await.unwrap() <= 1);
        let e = spawn(
            1,
            async { Err::<(), _>(Error::config("bad query")) },
            |_, _| async { Ok(()) },
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.message(), "bad query");
    }
}
