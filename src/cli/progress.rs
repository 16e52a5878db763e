//! Progress: a bar per stream on a terminal, a log line every few seconds otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_engine::report::{group, StreamReport};
use ferry_engine::runtime::Observer;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bars: Option<MultiProgress>,
    /// A `--dry-run`: nothing is written, so nothing is "written and rolled back".
    dry_run: bool,
    streams: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    pub fn new(dry_run: bool) -> Self {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)));
        Progress {
            bars,
            dry_run,
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn style(total: bool) -> ProgressStyle {
        let t = if total {
            "{prefix:>16} {bar:30} {human_pos}/{human_len} rows  {rps}  {elapsed}"
        } else {
            "{prefix:>16} {spinner} {human_pos} rows  {rps}  {elapsed}"
        };
        ProgressStyle::with_template(t)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rps",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{} rows/s", group(s.per_sec() as u64));
                },
            )
    }
}

impl Observer for Progress {
    fn stream_started(&self, stream: &str) {
        let bar = self.bars.as_ref().map(|m| {
            let b = m.add(ProgressBar::no_length());
            b.set_style(Self::style(false));
            b.set_prefix(stream.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        if bar.is_none() {
            eprintln!("{stream}: started");
        }
        let now = Instant::now();
        self.streams.lock().unwrap().insert(
            stream.to_string(),
            Entry {
                bar,
                started: now,
                last_log: now,
            },
        );
    }

    fn expected(&self, stream: &str, rows: u64) {
        if let Some(Entry { bar: Some(b), .. }) = self.streams.lock().unwrap().get(stream) {
            b.set_length(rows);
            b.set_style(Self::style(true));
        }
    }

    fn progress(&self, stream: &str, rows: u64, _bytes: u64) {
        let mut streams = self.streams.lock().unwrap();
        let Some(e) = streams.get_mut(stream) else {
            return;
        };
        match &e.bar {
            Some(b) => b.set_position(rows),
            None if e.last_log.elapsed() >= Duration::from_secs(5) => {
                e.last_log = Instant::now();
                let secs = e.started.elapsed().as_secs_f64().max(0.001);
                eprintln!(
                    "{stream}: {} rows ({} rows/s)",
                    group(rows),
                    group((rows as f64 / secs) as u64)
                );
            }
            None => {}
        }
    }

    fn stream_finished(&self, report: &StreamReport) {
        let entry = self.streams.lock().unwrap().remove(&report.stream);
        let msg = match &report.error {
            // a successful stream leaves rows uncommitted only in a trial, which rolls back
            None if report.rows_uncommitted > 0 && self.dry_run => format!(
                "{}: done, {} rows read (dry run: nothing written)",
                report.stream,
                group(report.rows_read)
            ),
            None if report.rows_uncommitted > 0 => format!(
                "{}: done, {} rows written and rolled back (trial), {} kept",
                report.stream,
                group(report.rows_uncommitted),
                group(report.rows_committed)
            ),
            None => format!(
                "{}: done, {} rows committed",
                report.stream,
                group(report.rows_committed)
            ),
            Some(e) => format!(
                "{}: failed after {} rows read, {} committed: {e}",
                report.stream,
                group(report.rows_read),
                group(report.rows_committed)
            ),
        };
        match entry.and_then(|e| e.bar) {
            Some(b) => b.finish_and_clear(),
            None => eprintln!("{}", ferry_core::redact::redact(&msg)),
        }
    }
}
