//! One retry policy for every connector: exponential backoff with jitter, a cap, a
//! number of attempts, and the wait a server asks for (`Retry-After`) honoured.
//!
//! Why jitter: clients that failed together (a server restarting) would otherwise retry
//! together, in waves. Each wait is `initial · 2ⁿ` (at most `max`) times a random factor
//! in [0.5, 1), so it never exceeds the cap and never drops below half of it.
//!
//! The caller decides what is temporary ([`Retry`]); the policy never reads messages.

use std::future::Future;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use crate::Error;

/// What a failure allows, as the caller classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A lasting failure: give up at once.
    Never,
    /// A temporary failure: try again after the policy's backoff.
    Backoff,
    /// A temporary failure, and the server asked to wait this long first.
    After(Duration),
}

impl Retry {
    /// [`Retry::Backoff`] for an error whose kind is retryable
    /// ([`crate::ErrorKind::is_retryable`]), else [`Retry::Never`].
    pub fn by_kind(e: &Error) -> Retry {
        if e.is_retryable() {
            Retry::Backoff
        } else {
            Retry::Never
        }
    }
}

/// How often and how patiently an operation that is safe to repeat is retried.
///
/// ```
/// use std::time::Duration;
/// use ferry_core::retry::{Retry, RetryPolicy};
///
/// let p = RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(1));
/// let w = p.wait(1, Retry::Backoff).unwrap();
/// assert!(w >= Duration::from_millis(50) && w < Duration::from_millis(100));
/// assert_eq!(p.wait(2, Retry::After(Duration::from_secs(5))), Some(Duration::from_secs(5)));
/// assert_eq!(p.wait(3, Retry::Backoff), None, "three attempts were made");
/// assert_eq!(p.wait(1, Retry::Never), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    initial: Duration,
    max: Duration,
    max_requested: Option<Duration>,
}

impl RetryPolicy {
    /// `attempts` in all, the first included (1: no retry), waiting `initial` before the
    /// first retry, doubled each time up to `max` (each wait jittered, see the module docs).
    pub const fn new(attempts: u32, initial: Duration, max: Duration) -> Self {
        RetryPolicy {
            attempts,
            initial,
            max,
            max_requested: None,
        }
    }

    /// The longest wait a server may ask for; asking for longer gives up at once (the
    /// caller names the wait), rather than stalling a run for an hour.
    pub const fn with_max_requested(mut self, longest: Duration) -> Self {
        self.max_requested = Some(longest);
        self
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The longest wait a server may ask for (`None`: any).
    pub fn max_requested(&self) -> Option<Duration> {
        self.max_requested
    }

    /// The jittered wait after failed attempt `attempt` (one-based): `initial · 2^(attempt-1)`,
    /// at most `max`, times a random factor in [0.5, 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = 1u32 << attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(doubled).min(self.max);
        base.mul_f64(jitter())
    }

    /// How long to wait after attempt `attempt` (one-based) failed as `retry` says, or
    /// `None` to give up: a lasting failure, every attempt used, or a requested wait longer
    /// than [`RetryPolicy::with_max_requested`] allows. A requested wait is taken as asked.
    pub fn wait(&self, attempt: u32, retry: Retry) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        match retry {
            Retry::Never => None,
            Retry::Backoff => Some(self.backoff(attempt)),
            Retry::After(asked) if self.max_requested.is_some_and(|m| asked > m) => None,
            Retry::After(asked) => Some(asked),
        }
    }

    /// Runs `op` (given the one-based attempt number) until it succeeds, fails in a way
    /// `classify` calls lasting, or the policy gives up; then returns its last result.
    /// `notify` hears of each failure that is retried, with the attempt and the wait (for
    /// a log line). Only for operations safe to repeat as a whole.
    pub async fn run<T, E, Op, Fut>(
        &self,
        mut op: Op,
        classify: impl Fn(&E) -> Retry,
        mut notify: impl FnMut(&E, u32, Duration),
    ) -> Result<T, E>
    where
        Op: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            let e = match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match self.wait(attempt, classify(&e)) {
                Some(wait) => {
                    notify(&e, attempt, wait);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                None => return Err(e),
            }
        }
    }
}

/// A random factor in [0.5, 1) (0.5 if the system has no randomness: waits stay bounded).
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = SystemRandom::new().fill(&mut b);
    0.5 + f64::from(u16::from_le_bytes(b)) / 65536.0 / 2.0
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ErrorKind;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stays_within_its_jitter() {
        let p = RetryPolicy::new(10, 100 * MS, 700 * MS);
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 700), (9, 700)] {
            for _ in 0..50 {
                let w = p.backoff(attempt);
                assert!(
                    w >= base * MS / 2 && w < base * MS,
                    "attempt {attempt}: {w:?} not in [{}, {}) ms",
                    base / 2,
                    base
                );
            }
        }
        // huge attempt numbers and caps neither overflow nor panic
        let p = RetryPolicy::new(u32::MAX, Duration::from_secs(u64::MAX / 4), Duration::MAX);
        assert!(p.backoff(u32::MAX) <= Duration::MAX);
    }

    #[test]
    fn jitter_varies_and_stays_in_range() {
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(
            samples.iter().all(|j| (0.5..1.0).contains(j)),
            "{samples:?}"
        );
        let first = samples[0];
        assert!(
            samples.iter().any(|j| *j != first),
            "64 equal factors: no jitter"
        );
    }

    #[test]
    fn a_requested_wait_wins_up_to_its_limit() {
        let p = RetryPolicy::new(5, 100 * MS, 200 * MS).with_max_requested(60 * 1000 * MS);
        let asked = Duration::from_secs(30);
        assert_eq!(p.wait(1, Retry::After(asked)), Some(asked), "over the cap");
        assert_eq!(p.wait(1, Retry::After(MS)), Some(MS), "under the backoff");
        assert_eq!(
            p.wait(1, Retry::After(Duration::ZERO)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            p.wait(1, Retry::After(Duration::from_secs(61))),
            None,
            "too long a wait gives up"
        );
        assert_eq!(p.wait(5, Retry::After(MS)), None, "attempts used");
        let unlimited = RetryPolicy::new(2, MS, MS);
        assert_eq!(
            unlimited.wait(1, Retry::After(Duration::from_secs(3600))),
            Some(Duration::from_secs(3600))
        );
    }

    fn failing(
        kind: ErrorKind,
        calls: &AtomicU32,
        succeed_at: u32,
    ) -> impl FnMut(u32) -> std::future::Ready<Result<u32, Error>> + '_ {
        move |attempt| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(attempt, n, "attempts are numbered from 1");
            std::future::ready(if n >= succeed_at {
                Ok(n)
            } else {
                Err(Error::new(kind, "failed"))
            })
        }
    }

    #[tokio::test]
    async fn run_retries_temporary_failures_until_one_succeeds() {
        let p = RetryPolicy::new(4, MS, 2 * MS);
        let calls = AtomicU32::new(0);
        let mut heard = Vec::new();
        let out = p
            .run(
                failing(ErrorKind::Temporary, &calls, 3),
                Retry::by_kind,
                |_, attempt, wait| heard.push((attempt, wait)),
            )
            .await;
        assert_eq!(out.unwrap(), 3);
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert_eq!((heard[0].0, heard[1].0), (1, 2));
        assert!(heard.iter().all(|(_, w)| *w < 2 * MS), "{heard:?}");
    }

    /// `run` of `attempts` on a call that always fails with `kind`: the error it returns,
    /// the calls made and the retries it announced.
    async fn run_failing(attempts: u32, kind: ErrorKind) -> (Error, u32, usize) {
        let p = RetryPolicy::new(attempts, MS, MS);
        let calls = AtomicU32::new(0);
        let mut retries = 0;
        let e = p
            .run(
                failing(kind, &calls, u32::MAX),
                Retry::by_kind,
                |_, _, _| retries += 1,
            )
            .await
            .unwrap_err();
        (e, calls.load(Ordering::SeqCst), retries)
    }

    #[tokio::test]
    async fn run_gives_up_after_the_last_attempt() {
        let (e, calls, _) = run_failing(3, ErrorKind::Unreachable).await;
        assert_eq!(
            e.kind(),
            ErrorKind::Unreachable,
            "the last error is returned"
        );
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn run_does_not_repeat_a_lasting_failure() {
        let (e, calls, retries) = run_failing(5, ErrorKind::NotFound).await;
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!((calls, retries), (1, 0), "a lasting failure is not retried");
    }

    #[tokio::test]
    async fn run_waits_what_the_server_asks() {
        let p = RetryPolicy::new(2, Duration::from_secs(60), Duration::from_secs(60));
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let out = p
            .run(
                failing(ErrorKind::RateLimited, &calls, 2),
                |_| Retry::After(20 * MS),
                |_, _, wait| assert_eq!(wait, 20 * MS),
            )
            .await;
        assert_eq!(out.unwrap(), 2);
        let took = started.elapsed();
        assert!(
            took >= 20 * MS && took < Duration::from_secs(30),
            "{took:?}"
        );
    }
}
