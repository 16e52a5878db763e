//! Speed figures for the connectors' benchmarks (ignored tests, run in release mode).

use arrow_array::RecordBatch;

use super::{read_all, request, simple_batch, wide_batch};
use ferry_core::catalog::WriteMode;
use ferry_core::sink::Sink;
use ferry_core::source::{ReadRequest, Source};

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

/// Appends `n` rows of [`wide_batch`] (`batch` rows a batch, a flush every 16 batches) to
/// table `wide`, and prints the rows per second.
pub async fn bench_write_wide(sink: &dyn Sink, n: usize, batch: usize) {
    let wide = wide_batch(batch);
    let t = std::time::Instant::now();
    let mut w = sink
        .open(request("wide", wide.schema(), WriteMode::Append))
        .await
        .unwrap();
    for i in 0..n / batch {
        w.write(wide.clone()).await.unwrap();
        if i % 16 == 15 {
            w.flush().await.unwrap();
        }
    }
    w.flush().await.unwrap();
    w.close().await.unwrap();
    let rows = (n / batch * batch) as f64;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "     wide: {rows} rows in {secs:.2}s = {:.0} rows/s",
        rows / secs
    );
}

/// Reads `request`'s stream whole, prints the rows per second, and returns the rows read.
pub async fn bench_read(source: &dyn Source, request: ReadRequest) -> usize {
    let stream = request.stream.clone();
    let t = std::time::Instant::now();
    let got: usize = read_all(source, request)
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "read {stream}: {got} rows in {secs:.2}s = {:.0} rows/s",
        got as f64 / secs
    );
    got
}
