//! Reading a stream for its profile: the first N rows (or all), batch by batch, so memory
//! stays bounded whatever the stream's size.

use std::collections::HashMap;

use chrono::NaiveDate;
use ferry_core::{Message, ReadRequest, Result, Source, StreamInfo};
use futures::StreamExt;
use serde::Serialize;

use super::stats::{ColumnProfile, ColumnStats};

/// How much to read.
#[derive(Debug, Clone, Copy)]
pub struct ProfileOptions {
    /// Read at most this many rows (the first ones); `None` reads them all.
    pub sample: Option<u64>,
    /// The day ages are counted at (dates of birth).
    pub today: NaiveDate,
}

impl ProfileOptions {
    /// Reads `sample` rows (`None`: all of them); ages are counted at today's date (UTC).
    pub fn today(sample: Option<u64>) -> Self {
        ProfileOptions {
            sample,
            today: chrono::Utc::now().date_naive(),
        }
    }
}

/// Default rows read per stream.
pub const DEFAULT_SAMPLE: u64 = 10_000;

/// One stream's profile.
#[derive(Debug, Clone, Serialize)]
pub struct StreamProfile {
    /// The stream's name.
    pub stream: String,
    /// Rows profiled.
    pub rows: u64,
    /// Records the source could not read (not profiled).
    pub rejected: u64,
    /// The row limit asked for (`null`: a full read).
    pub sample: Option<u64>,
    /// Whether every row of the stream was profiled (the stream ended within the limit).
    pub complete: bool,
    /// The columns, in the stream's order.
    pub columns: Vec<ColumnProfile>,
}

/// Profiles `stream` of `source`.
pub async fn profile_stream(
    source: &dyn Source,
    stream: &StreamInfo,
    opts: ProfileOptions,
) -> Result<StreamProfile> {
    let mut columns: Vec<ColumnStats> = stream
        .schema
        .fields()
        .iter()
        .map(|f| ColumnStats::new(f, opts.today))
        .collect();
    let mut index: HashMap<String, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name().to_string(), i))
        .collect();
    let mut request = ReadRequest::full(stream.name.clone());
    // one row past the sample tells a stream that has more from one that just fits
    request.limit = opts.sample.map(|n| n + 1);
    let mut messages = source.read(request).await?;
    let (mut rows, mut rejected, mut complete) = (0u64, 0u64, true);
    while let Some(message) = messages.next().await {
        let batch = match message? {
            Message::Batch(b) => b,
            Message::Rejected(_) => {
                rejected += 1;
                continue;
            }
            _ => continue,
        };
        if batch.num_rows() == 0 {
            continue;
        }
        let room = opts.sample.map_or(u64::MAX, |n| n - rows);
        if room == 0 {
            complete = false;
            break;
        }
        let read = batch.num_rows();
        let take = (read as u64).min(room) as usize;
        let batch = batch.slice(0, take);
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let i = *index.entry(field.name().clone()).or_insert_with(|| {
                columns.push(ColumnStats::new(field, opts.today));
                columns.len() - 1
            });
            columns[i].add(array);
        }
        rows += take as u64;
        if take < read {
            complete = false;
            break;
        }
    }
    let sampled = !complete;
    Ok(StreamProfile {
        stream: stream.name.clone(),
        rows,
        rejected,
        sample: opts.sample,
        complete,
        columns: columns.iter().map(|c| c.finish(sampled)).collect(),
    })
}
