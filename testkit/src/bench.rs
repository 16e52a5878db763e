//! Speed figures for the connectors' benchmarks (ignored tests, run in release mode).

use arrow_array::RecordBatch;

use super::{request, simple_batch};
use ferry_core::catalog::WriteMode;
use ferry_core::sink::Sink;

/// Writes `n` rows of [`simple_batch`] (`batch` rows a batch, a flush every 16 batches)
/// in each mode, to tables `bench_append`, `bench_overwrite` and `bench_upsert`, and
/// prints the rows per second of each.
pub async fn bench_write_modes(sink: &dyn Sink, n: usize, batch: usize) {
    let batches: Vec<RecordBatch> = (0..n.div_ceil(batch))
        .map(|i| {
            let first = (i * batch) as i64 + 1;
            simple_batch(first, batch.min(n - i * batch), "bench-row")
        })
        .collect();
    for mode in [WriteMode::Append, WriteMode::Overwrite, WriteMode::Upsert] {
        let table = format!("bench_{mode}");
        let t = std::time::Instant::now();
        let mut w = sink
            .open(request(&table, batches[0].schema(), mode))
            .await
            .unwrap();
        for (i, b) in batches.iter().enumerate() {
            w.write(b.clone()).await.unwrap();
            if i % 16 == 15 {
                w.flush().await.unwrap();
            }
        }
        w.flush().await.unwrap();
        w.close().await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{:>9}: {n} rows in {secs:.2}s = {:.0} rows/s",
            mode.to_string(),
            n as f64 / secs
        );
    }
}
