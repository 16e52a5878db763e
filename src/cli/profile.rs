//! `ferry profile`: prints what each stream's columns hold (a table, or `--json`) and the
//! TOML it suggests. The figures come from `ferry_engine::profile`.

use std::fmt::Write;
use std::path::Path;

use ferry_core::Error;
use ferry_engine::profile::{self, ColumnProfile, ProfileOptions, StreamProfile};
use ferry_engine::report::group;

pub async fn profile(
    path: &Path,
    only: Option<Vec<String>>,
    sample: Option<u64>,
    full: bool,
    json: bool,
) -> Result<u8, Error> {
    let cfg = super::commands::load(path)?;
    let source = crate::registry().build_source(&cfg.source)?;
    let catalog = source.discover().await?;
    let from_option = only.is_some();
    let names: Vec<String> = match only {
        Some(list) => list,
        None if cfg.streams.is_empty() => catalog.names().iter().map(|s| s.to_string()).collect(),
        None => cfg.streams.iter().map(|s| s.name.clone()).collect(),
    };
    let mut streams = Vec::new();
    for name in &names {
        let Some(info) = catalog.get(name) else {
            let e = Error::config(format!(
                "the source of {} has no stream `{name}`; its streams are: {}",
                path.display(),
                catalog.names().join(", ")
            ))
            .with("stream", name);
            // the name came from the command line, not from a line of the config
            return Err(if from_option {
                e.with("option", "--streams")
            } else {
                e
            });
        };
        streams.push(info);
    }
    let opts = ProfileOptions::today(if full {
        None
    } else {
        Some(sample.unwrap_or(profile::DEFAULT_SAMPLE))
    });
    let mut profiles = Vec::new();
    for info in streams {
        profiles.push(profile::profile_stream(source.as_ref(), info, opts).await?);
    }
    if json {
        let streams: Vec<serde_json::Value> = profiles
            .iter()
            .map(|p| {
                let mut v = serde_json::to_value(p).expect("json");
                v["suggested_toml"] = serde_json::Value::String(profile::suggest(p));
                v
            })
            .collect();
        let doc = serde_json::json!({
            "version": profile::JSON_VERSION,
            "config": path.display().to_string(),
            "streams": streams,
        });
        super::output::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("json")
        ))?;
        return Ok(0);
    }
    let mut out = String::new();
    for p in &profiles {
        table(p, &mut out);
    }
    for p in &profiles {
        out.push('\n');
        out.push_str(&profile::suggest(p));
    }
    super::output::emit(&out)?;
    Ok(0)
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

fn table(p: &StreamProfile, out: &mut String) {
    let rows = if p.complete {
        format!("{} rows (all)", group(p.rows))
    } else {
        format!(
            "the first {} rows (a sample; --full reads all)",
            group(p.rows)
        )
    };
    let rejected = if p.rejected > 0 {
        format!(", {} unreadable records left out", group(p.rejected))
    } else {
        String::new()
    };
    let _ = writeln!(out, "stream {}: {rows}{rejected}", p.stream);
    let head = [
        "column",
        "type",
        "nulls",
        "distinct",
        "min",
        "max",
        "length",
        "top values / shape",
        "holds",
    ];
    let mut lines: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for c in &p.columns {
        lines.push(row(c));
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
        }
        let _ = writeln!(out, "  {}", line.trim_end());
    }
    for c in &p.columns {
        for f in &c.findings {
            let _ = writeln!(out, "  {}: {} — {}", c.name, f.kind.name(), f.evidence);
        }
    }
    out.push('\n');
}

fn row(c: &ColumnProfile) -> Vec<String> {
    let nulls = if c.nulls == 0 {
        "0".to_string()
    } else {
        format!("{} ({:.1} %)", group(c.nulls), c.null_share * 100.0)
    };
    let distinct = if c.distinct_exact {
        group(c.distinct)
    } else {
        format!("~{}", group(c.distinct))
    };
    let hidden = || {
        if c.redacted {
            "(hidden)".to_string()
        } else {
            String::new()
        }
    };
    let length = c
        .length
        .map(|l| format!("{}–{} (avg {:.1})", l.min, l.max, l.mean))
        .unwrap_or_default();
    let top = if c.redacted {
        c.shapes
            .first()
            .map(|s| format!("shape {}", s.value))
            .unwrap_or_default()
    } else {
        let values: Vec<String> = c
            .top_values
            .iter()
            .take(3)
            .map(|v| format!("{} ×{}", cut(&v.value, 16), group(v.count)))
            .collect();
        let mut s = values.join(", ");
        if let Some(shape) = &c.one_shape {
            let _ = write!(s, "; shape {}", cut(shape, 16));
        }
        s
    };
    let holds: Vec<&str> = c.findings.iter().map(|f| f.kind.name()).collect();
    vec![
        c.name.clone(),
        c.r#type.clone(),
        nulls,
        distinct,
        c.min.as_deref().map(|s| cut(s, 20)).unwrap_or_else(hidden),
        c.max.as_deref().map(|s| cut(s, 20)).unwrap_or_else(hidden),
        length,
        cut(&top, 48),
        holds.join(", "),
    ]
}
