//! Building one stream's transforms from its config, with each mistake positioned at the
//! transform in the config file (its line, or the unknown function inside its expression),
//! so `ferry check`, `plan` and `sync` point at it before a row is read.

use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::{StreamConfig, SyncConfig};
use crate::transform::{RunInfo, Transform, TransformConfig};
use ferry_core::{Error, Result};

/// Builds `stream`'s transforms in order. An error names the stream and the transform
/// (`transform 2 (filter)`), and, with `config`, the file, line and column.
pub fn build_stream(
    config: Option<&SyncConfig>,
    stream: &StreamConfig,
    run: &RunInfo,
) -> Result<Vec<Arc<dyn Transform>>> {
    stream
        .transforms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.build_with(run)
                .map_err(|e| position(config, stream, i, t, e))
        })
        .collect()
}

/// `e` (from building transform `i` of `stream`) as a config error at that transform.
pub fn position(
    config: Option<&SyncConfig>,
    stream: &StreamConfig,
    i: usize,
    t: &TransformConfig,
    e: Error,
) -> Error {
    let msg = format!(
        "stream `{}`, transform {} ({}): {}",
        stream.name,
        i + 1,
        t.kind(),
        e.message()
    );
    let mut out = match config {
        Some(c) => {
            let at = offset(c.file.text, &stream.name, i, e.context_value("function"));
            c.file.error_at(at, msg)
        }
        None => Error::new(e.kind(), msg),
    };
    for (k, v) in e.context() {
        if !matches!(*k, "file" | "line" | "column") {
            out = out.with(k, v);
        }
    }
    out.with("stream", &stream.name).with("transform", i + 1)
}

/// Byte offset of transform `i` of stream `name` in config `text`: of `function(` in its
/// expression when given and found there, else of the transform itself.
fn offset(text: &str, name: &str, i: usize, function: Option<&str>) -> Option<usize> {
    let root = DeValue::Table(DeTable::parse(text).ok()?.into_inner());
    let entry = root
        .get("streams")?
        .get_ref()
        .as_array()?
        .iter()
        .find(|s| s.get_ref().get("name").and_then(|n| n.get_ref().as_str()) == Some(name))?;
    let t = entry
        .get_ref()
        .get("transforms")?
        .get_ref()
        .as_array()?
        .get(i)?;
    if let (Some(f), Some(expr)) = (function, t.get_ref().get("expr")) {
        let span = expr.span();
        let call = format!("{f}(");
        if let Some(at) = text.get(span.clone()).and_then(|s| s.find(&call)) {
            return Some(span.start + at);
        }
        return Some(span.start);
    }
    Some(t.span().start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::secret::ResolveContext;
    use std::path::Path;

    fn config(text: &str) -> SyncConfig {
        SyncConfig::parse(
            Path::new("sync.toml"),
            text.to_string(),
            ".".into(),
            ResolveContext::default(),
        )
        .unwrap()
    }

    fn run() -> RunInfo {
        RunInfo {
            run_id: Some("r".into()),
            synced_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_mistake_points_at_its_transform_and_the_unknown_function() {
        let text = "[source]\ntype = \"file\"\n[destination]\ntype = \"file\"\n\
            [[streams]]\nname = \"a\"\n\
            [[streams]]\nname = \"b\"\ntransforms = [\n  { type = \"trim\", columns = [\"x\"] },\n  { type = \"filter\", expr = \"x > 1 && repalce(y, \\\"a\\\", \\\"b\\\") == \\\"c\\\"\" },\n]\n";
        let c = config(text);
        let e = build_stream(Some(&c), &c.streams[1], &run()).err().unwrap();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid);
        assert!(
            e.message().contains("stream `b`, transform 2 (filter)"),
            "{e}"
        );
        assert!(e.message().contains("did you mean `replace`?"), "{e}");
        assert_eq!(e.context_value("line"), Some("11"), "{e}");
        assert_eq!(e.context_value("column"), Some("39"), "{e}");
        assert_eq!(e.context_value("transform"), Some("2"));

        // any other mistake points at the transform itself
        let text = text.replace("repalce", "replace").replace(
            "{ type = \"trim\", columns = [\"x\"] }",
            "{ type = \"cast\", column = \"x\", to = \"intt\" }",
        );
        let c = config(&text);
        let e = build_stream(Some(&c), &c.streams[1], &run()).err().unwrap();
        assert!(
            e.message().contains("stream `b`, transform 1 (cast)"),
            "{e}"
        );
        assert_eq!(e.context_value("line"), Some("10"), "{e}");
        assert_eq!(e.context_value("column"), Some("3"), "{e}");
        assert!(build_stream(Some(&c), &c.streams[0], &run())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn build_errors_without_a_file_still_name_the_stream_and_transform() {
        let s: StreamConfig = toml::from_str(
            "name = \"s\"\ntransforms = [{ type = \"derive\", column = \"c\", expr = \"1\", as = \"intt\" }]",
        )
        .unwrap();
        let e = build_stream(None, &s, &run()).err().unwrap();
        assert!(
            e.message()
                .starts_with("stream `s`, transform 1 (derive): "),
            "{e}"
        );
        assert!(e.message().contains("unknown type `intt`"), "{e}");
        assert_eq!(e.context_value("line"), None);
    }
}
