//! Which pipeline a state file belongs to, and where its files are.
//!
//! A pipeline is one config file of a client folder writing to one destination. Its
//! identity is the config file's name and the destination's type plus the fields that
//! name where data lands (path, host/port/database/schema, bucket/prefix, url…, as
//! written in the config: a `${secret:…}` reference stays a reference, a URL loses its
//! user, password and query). Two configs never share state, and editing a config's batch
//! size or checks keeps its state, while pointing it at another destination starts fresh.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::SyncConfig;

/// The `[run] state` value that means "Ferry chooses": one file per pipeline.
pub const DEFAULT_STATE: &str = ".ferry/state.json";

/// Destination fields that name where data lands (any connector; absent ones are skipped).
const LOCATION_KEYS: &[&str] = &[
    "url",
    "host",
    "port",
    "socket",
    "database",
    "schema",
    "path",
    "dir",
    "bucket",
    "prefix",
    "endpoint",
    "region",
    "package",
    "command",
    "executable",
];

/// One pipeline: a config file and its destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Short stable id: the config's file stem and a hash of the identity (`sync-1f2e3d4c`).
    pub id: String,
    /// The config file's name within its folder.
    pub config: String,
    /// The destination as identified: type and location fields (no secrets).
    pub destination: String,
}

impl Pipeline {
    /// The pipeline of a loaded config.
    pub fn of(cfg: &SyncConfig) -> Pipeline {
        let config = cfg
            .file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sync.toml".into());
        let raw: toml::Table = toml::from_str(cfg.file.text).unwrap_or_default();
        let dest = raw.get("destination").and_then(|d| d.as_table());
        Pipeline::new(&config, &cfg.destination.kind, dest)
    }

    /// The pipeline of config file `config` writing to a `kind` destination whose section
    /// (as written) is `section`.
    pub fn new(config: &str, kind: &str, section: Option<&toml::Table>) -> Pipeline {
        let mut destination = kind.to_string();
        for key in LOCATION_KEYS {
            let Some(value) = section.and_then(|s| s.get(*key)) else {
                continue;
            };
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_) => {
                    value.to_string()
                }
                _ => continue,
            };
            let text = if *key == "url" || text.contains("://") {
                without_credentials(&text)
            } else {
                text
            };
            destination.push_str(&format!(" {key}={text}"));
        }
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{config}\n{destination}").as_bytes(),
        );
        let stem: String = Path::new(config)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let id = format!(
            "{stem}-{}",
            &ferry_formats::digest::hex(digest.as_ref())[..8]
        );
        Pipeline {
            id,
            config: config.to_string(),
            destination,
        }
    }

    /// How messages name it: `sync.toml → sqlite path=out.db`.
    pub fn describe(&self) -> String {
        format!("{} → {}", self.config, self.destination)
    }
}

/// `scheme://user:password@host/db?x=y` without `user:password@` and `?x=y`.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let rest = match rest.split_once('/') {
        Some((authority, path)) => format!(
            "{}/{path}",
            authority.rsplit_once('@').map_or(authority, |(_, h)| h)
        ),
        None => rest.rsplit_once('@').map_or(rest, |(_, h)| h).to_string(),
    };
    match scheme {
        Some(s) => format!("{s}://{rest}"),
        None => rest,
    }
}

/// Where a pipeline's state lives.
#[derive(Debug, Clone)]
pub struct StatePaths {
    /// The pipeline's state file.
    pub file: PathBuf,
    /// The lock file held while a run or a reset uses the state.
    pub lock: PathBuf,
    /// The folder-wide file of older builds that this pipeline may take over.
    pub legacy: Option<PathBuf>,
}

impl StatePaths {
    /// The paths for `pipeline` of `cfg`: `[run] state` when set, else
    /// `.ferry/state/<pipeline id>.json` (taking over `.ferry/state.json` of older builds).
    pub fn of(cfg: &SyncConfig, pipeline: &Pipeline) -> StatePaths {
        let (file, legacy) = if cfg.run.state == Path::new(DEFAULT_STATE) {
            (
                cfg.dir
                    .join(".ferry/state")
                    .join(format!("{}.json", pipeline.id)),
                Some(cfg.dir.join(DEFAULT_STATE)),
            )
        } else {
            (cfg.dir.join(&cfg.run.state), None)
        };
        // apart from the state files, so `.ferry/state/` holds state and nothing else
        let lock = cfg
            .dir
            .join(".ferry/locks")
            .join(format!("{}.lock", pipeline.id));
        StatePaths { file, lock, legacy }
    }
}

// here rather than in `config`: the config is read before, and without, any state
impl SyncConfig {
    /// The state file's path: this pipeline's (see [`StatePaths`]).
    pub fn state_path(&self) -> PathBuf {
        let pipeline = Pipeline::of(self);
        StatePaths::of(self, &pipeline).file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn identity_is_config_and_where_data_lands() {
        let a = Pipeline::new("sync.toml", "sqlite", Some(&section("path = \"d.db\"")));
        let b = Pipeline::new("deliver.toml", "sqlite", Some(&section("path = \"d.db\"")));
        let c = Pipeline::new(
            "sync.toml",
            "sqlite",
            Some(&section("path = \"d.db\"\nbusy_timeout_ms = 9")),
        );
        let d = Pipeline::new("sync.toml", "sqlite", Some(&section("path = \"e.db\"")));
        assert_ne!(a.id, b.id);
        assert_eq!(a.id, c.id, "a tuning field changed the pipeline");
        assert_ne!(a.id, d.id);
        assert!(a.id.starts_with("sync-"), "{}", a.id);
        assert_eq!(a.describe(), "sync.toml → sqlite path=d.db");
    }

    #[test]
    fn urls_lose_their_credentials() {
        let p = Pipeline::new(
            "s.toml",
            "postgres",
            Some(&section(
                "url = \"postgres://ferry:hunter22@db:5432/crm?sslmode=require\"",
            )),
        );
        assert_eq!(p.destination, "postgres url=postgres://db:5432/crm");
        let q = Pipeline::new(
            "s.toml",
            "postgres",
            Some(&section("url = \"postgres://ferry:other@db:5432/crm\"")),
        );
        assert_eq!(p.id, q.id, "a new password changed the pipeline");
    }
}
