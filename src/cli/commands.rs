//! One function per command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ferry_core::secret::ResolveContext;
use ferry_core::{Error, ErrorKind, FerryType};
use ferry_engine::report::Status;
use ferry_engine::state::{Access, StateStore};
use ferry_engine::{RunOptions, Runtime, SyncConfig};
use tokio_util::sync::CancellationToken;

use super::output::{emit, exit_code, hint, render_error};
use super::progress::Progress;
use super::secrets::{self, ClientFolder};
use super::{Cli, Command, KeysAction, SecretsAction, StateAction};

pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Sync {
            config,
            streams,
            full_refresh,
            limit,
            report,
            dry_run,
            require_complete,
            debug_bundle,
        } => {
            let limit = if dry_run { limit.or(Some(1000)) } else { limit };
            let opts = RunOptions {
                only: streams,
                full_refresh,
                limit,
                run_id: None,
                require_complete,
            };
            sync_all(
                &config,
                &opts,
                report.as_deref(),
                dry_run,
                debug_bundle.as_deref(),
            )
            .await
        }
        Command::Plan {
            config,
            streams,
            full_refresh,
        } => super::plan::plan(&config, streams, full_refresh).await,
        Command::Replay { bundle } => super::bundle::replay(&bundle).await,
        Command::Check { config } => check(&config).await,
        Command::Discover { config, json } => discover(&config, json).await,
        Command::Profile {
            config,
            streams,
            sample,
            full,
            json,
        } => super::profile::profile(&config, streams, sample, full, json).await,
        Command::Spec { connector } => spec(&connector),
        Command::Connectors => connectors(),
        Command::State { action } => state(action),
        Command::Encrypt {
            input,
            output,
            recipients,
        } => super::crypto::encrypt(
            input.as_deref(),
            output.as_deref(),
            &recipients,
            Path::new("."),
        )
        .map(|()| 0),
        Command::Decrypt {
            input,
            output,
            identity,
            config,
        } => decrypt(&config, &identity)
            .and_then(|id| super::crypto::decrypt(input.as_deref(), output.as_deref(), &id))
            .map(|()| 0),
        Command::Verify {
            receipt,
            pubkey,
            config,
            dir,
        } => {
            super::verify::verify(
                &receipt,
                pubkey.as_deref(),
                config.as_deref(),
                dir.as_deref(),
            )
            .await
        }
        Command::Report { run, html, config } => super::report::report(&run, &html, &config),
        Command::Secrets { action, config } => match ClientFolder::of(&config) {
            Ok(folder) => match action {
                SecretsAction::Set { name } => secrets::set(&folder, &name),
                SecretsAction::List => secrets::list(&folder),
                SecretsAction::Rm { name } => secrets::remove(&folder, &name),
                SecretsAction::Rotate => secrets::rotate(&folder),
            },
            Err(e) => Err(e),
        },
        Command::Keys {
            action: KeysAction::Generate { kind, name, force },
            config,
        } => ClientFolder::of(&config)
            .and_then(|f| secrets::generate(&f, kind, name.as_deref(), force)),
        Command::Keys {
            action: KeysAction::Show { kind, name },
            config,
        } => ClientFolder::of(&config).and_then(|f| secrets::show(&f, kind, name.as_deref())),
        Command::Keys {
            action: KeysAction::Export { kind, name },
            config,
        } => ClientFolder::of(&config).and_then(|f| secrets::export(&f, kind, name.as_deref())),
        Command::DecryptColumns {
            input,
            output,
            key_file,
            columns,
            format,
        } => super::decrypt_columns::run(
            input.as_deref(),
            output.as_deref(),
            &key_file,
            &columns,
            format,
        )
        .map(|n| {
            eprintln!("decrypted {n} values");
            0
        }),
        Command::Init {
            client,
            source,
            destination,
            dir,
        } => super::init::init(
            &client,
            source.as_deref(),
            destination.as_deref(),
            dir.as_deref(),
        ),
        Command::NewConnector {
            name,
            source,
            sink,
            dir,
        } => super::scaffold::new_connector(&name, source, sink, &dir),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "ferry", &mut script);
            emit(&String::from_utf8_lossy(&script)).map(|()| 0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprint!("{}", render_error(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Loads a config; `${secret:…}` references open the client's vault on first use.
pub(super) fn load(path: &Path) -> Result<SyncConfig, Error> {
    if !path.exists() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no config file at {}", path.display()),
        )
        .with("config", path.display()));
    }
    let folder = ClientFolder::of(path)?;
    let ctx = ResolveContext {
        vault: Some(folder.resolver()),
        ..ResolveContext::default()
    };
    SyncConfig::load(path, ctx)
}

async fn sync_all(
    configs: &[PathBuf],
    opts: &RunOptions,
    report: Option<&Path>,
    dry_run: bool,
    bundle_dir: Option<&Path>,
) -> Result<u8, Error> {
    let mut worst = 0;
    let mut reports = Vec::new();
    for path in configs {
        if configs.len() > 1 {
            println!("== {}", path.display());
        }
        let (r, receipt) = sync_one(path, opts, dry_run, bundle_dir).await?;
        print!("{}", r.summary());
        println!("{}", ferry_core::redact::redact(&receipt));
        let code = match r.status {
            Status::Succeeded => 0,
            Status::Failed => 1,
            Status::Cancelled => 130,
        };
        worst = worst.max(code);
        reports.push(r);
        if code != 0 {
            break;
        }
    }
    if let Some(p) = report {
        let json = if reports.len() == 1 {
            reports[0].to_json()
        } else {
            ferry_core::redact::redact(
                &serde_json::to_string_pretty(&reports).expect("reports serialize"),
            )
        };
        ferry_engine::state::write_atomic(p, json.as_bytes())?;
    }
    Ok(worst)
}

pub(super) async fn sync_one(
    path: &Path,
    opts: &RunOptions,
    dry_run: bool,
    bundle_dir: Option<&Path>,
) -> Result<(ferry_engine::RunReport, String), Error> {
    let cfg = load(path)?;
    let registry = crate::registry();
    let source = registry.build_source(&cfg.source)?;
    let mut sink = registry.build_sink(&cfg.destination)?;
    let preview = dry_run.then(|| Arc::new(super::dry_run::DryRunSink::new(sink.clone())));
    if let Some(p) = &preview {
        sink = p.clone();
    }
    // the run id is chosen here so that the pipeline's lock can name the run holding it
    let mut opts = opts.clone();
    let run_id = opts
        .run_id
        .get_or_insert_with(ferry_engine::runtime::new_run_id)
        .clone();
    let holder = format!("sync run {run_id}");
    let access = if dry_run {
        Access::Read
    } else {
        Access::Exclusive(&holder)
    };
    let state = Arc::new(StateStore::open_pipeline(&cfg, access)?);
    if let (Some(note), false) = (state.note(), dry_run) {
        eprintln!("{note}");
    }
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping: finishing nothing new, committing only what was flushed (Ctrl-C again to force)");
            on_signal.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let mut rt = Runtime::new(source, sink, state);
    rt.settings = cfg.run.clone();
    let scratch =
        tempfile::tempdir().map_err(|e| Error::io(e, "cannot make a temp folder", "/tmp"))?;
    // a trial (`--limit`) leaves nothing at the destination: not its rejected records either
    let trial = dry_run || opts.limit.is_some();
    rt.quarantine = Arc::new(match (&cfg.run.quarantine, trial) {
        (_, true) if dry_run => ferry_engine::quarantine::Quarantine::new(scratch.path()),
        (ferry_engine::config::QuarantineTarget::Folder(dir), _) => {
            ferry_engine::quarantine::Quarantine::new(cfg.dir.join(dir))
        }
        (ferry_engine::config::QuarantineTarget::Destination(_), true) => {
            ferry_engine::quarantine::Quarantine::new(scratch.path())
        }
        // the only destination section there is (checked when the config was read)
        (ferry_engine::config::QuarantineTarget::Destination(q), false) => {
            ferry_engine::quarantine::Quarantine::to_sink(rt.sink.clone(), &q.stream)?
        }
    });
    rt.observer = Arc::new(Progress::new(dry_run));
    rt.cancel = cancel;
    let result = rt
        .sync(
            &cfg.streams,
            &opts,
            Some(&cfg),
            (&cfg.source.kind, &cfg.destination.kind),
        )
        .await;
    watcher.abort();
    let mut report = result?;
    if let Some(p) = preview {
        report.dry_run = true;
        report.trial = false;
        // a dry run is run as a trial, which commits nothing; what a stream that finished
        // let through is what it *would* write ("would write" in the summary)
        for s in report
            .streams
            .iter_mut()
            .filter(|s| s.status == Status::Succeeded)
        {
            s.rows_committed += std::mem::take(&mut s.rows_uncommitted);
        }
        let note = format!(
            "{}dry run: nothing was written, no state or receipt saved",
            p.render()
        );
        return Ok((report, note));
    }
    if let Some(n) = opts.limit {
        // a receipt signs what the destination holds; a trial leaves it holding nothing new
        let note = if report.status == Status::Succeeded {
            format!(
                "trial (--limit {n}): up to {n} rows per stream were written through the destination \
                 and then rolled back; no rows were kept, no state or receipt saved. \
                 `ferry sync` without --limit loads everything"
            )
        } else {
            format!(
                "trial (--limit {n}) failed: what it wrote was rolled back; no rows were kept, \
                 no state or receipt saved"
            )
        };
        return Ok((report, note));
    }
    let mut note = super::receipt::write(&cfg, &report);
    for b in super::bundle::write_all(&cfg, &report, bundle_dir) {
        note.push_str(&format!(
            "\ndebug bundle: {} (`ferry replay {}` re-runs the failing step)",
            b.display(),
            b.display()
        ));
    }
    Ok((report, note))
}

/// Tests both connections, then finds what `plan` and `sync` would refuse before a row
/// is read (a stream the source does not offer, a mode, cursor, transform or check that
/// does not fit, a schema change the policy forbids, another client's destination), with
/// the same messages and exit codes.
async fn check(path: &Path) -> Result<u8, Error> {
    let cfg = load(path)?;
    // transforms need no connection to be checked: a typo fails before any is opened
    let run = ferry_engine::transform::RunInfo::starting_now("check");
    for sc in &cfg.streams {
        ferry_engine::config::build_stream(Some(&cfg), sc, &run)?;
    }
    let registry = crate::registry();
    // a connector section that does not parse stops `sync` here too: same message, exit 2
    let source = registry.build_source(&cfg.source)?;
    let sink = registry.build_sink(&cfg.destination)?;
    let (src_result, dst_result) = tokio::join!(source.check(), sink.check());
    let mut failed = false;
    println!("{:<12} {:<10} status", "connection", "connector");
    for (role, kind, res, route) in [
        ("source", &cfg.source.kind, src_result, source.route()),
        (
            "destination",
            &cfg.destination.kind,
            dst_result,
            sink.route(),
        ),
    ] {
        match res {
            Ok(()) => {
                println!("{role:<12} {kind:<10} ok");
                for line in route {
                    println!("{:<23} {line}", "");
                }
            }
            Err(e) => {
                failed = true;
                println!(
                    "{role:<12} {kind:<10} FAILED ({}): {}",
                    e.kind(),
                    ferry_core::redact::redact(&e.to_string())
                );
                if let Some(h) = hint(&e) {
                    println!("{:<23} hint: {h}", "");
                }
            }
        }
    }
    if failed {
        return Ok(1);
    }
    if let Some(client) = cfg.client.as_deref() {
        if let Some(owner) = sink.owner().await?.filter(|o| o != client) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("the destination is bound to client `{owner}`, but this folder is client `{client}`: `ferry sync` would refuse it"),
            )
            .with("client", client));
        }
    }
    let catalog = source.discover().await?;
    let mut rt = Runtime::new(
        source,
        sink.clone(),
        Arc::new(StateStore::open(cfg.state_path(), cfg.client.as_deref())?),
    );
    rt.settings = cfg.run.clone();
    let mut tasks = rt.plan(
        &catalog,
        &cfg.streams,
        &RunOptions::default(),
        Some(&cfg),
        "check",
    )?;
    let found = ferry_engine::runtime::reconcile(sink.as_ref(), &mut tasks, &cfg.streams).await?;
    if let Some(e) = found.iter().find_map(|r| r.decision.error(&r.stream)) {
        return Err(e);
    }
    let names: Vec<&str> = tasks.iter().map(|t| t.read.stream.as_str()).collect();
    println!(
        "{:<12} {:<10} ready: {} stream(s), planned as `sync` plans them: {}",
        "streams",
        "",
        names.len(),
        names.join(", ")
    );
    Ok(0)
}

/// Resolves a `${…}` reference, a path to an identity file, or a literal identity
/// (against the client's vault).
fn decrypt(config: &Path, identity: &str) -> Result<ferry_core::Secret, Error> {
    let folder = ClientFolder::of(config)?;
    let ctx = ResolveContext {
        vault: Some(folder.resolver()),
        base_dir: ".".into(),
    };
    // a plain path, as `age -i key.txt` takes it
    let reference;
    let identity = if identity.contains("${") || identity.starts_with("AGE-SECRET-KEY-") {
        identity
    } else if Path::new(identity).is_file() {
        reference = format!("${{file:{identity}}}");
        &reference
    } else {
        return Err(Error::config(format!(
            "no identity file at `{identity}`, and it is not a reference such as `${{secret:age_identity}}`"
        ))
        .with("identity", identity));
    };
    let (value, _) =
        ferry_core::secret::with_context(ctx, || ferry_core::secret::resolve(identity));
    Ok(ferry_core::Secret::new(value?))
}

async fn discover(path: &Path, json: bool) -> Result<u8, Error> {
    use std::fmt::Write;
    let cfg = load(path)?;
    let source = crate::registry().build_source(&cfg.source)?;
    let catalog = source.discover().await?;
    if json {
        let streams: Vec<_> = catalog.streams.iter().map(|s| s.to_json()).collect();
        let text =
            serde_json::to_string_pretty(&serde_json::json!({ "streams": streams })).expect("json");
        emit(&format!("{text}\n"))?;
        return Ok(0);
    }
    let mut out = String::new();
    for s in &catalog.streams {
        let incremental = if s.supports_incremental() && s.cursor_candidates.is_empty() {
            "incremental by the source's own position".to_string()
        } else if s.supports_incremental() {
            format!("incremental by {}", s.cursor_candidates.join(" | "))
        } else {
            "full refresh only".into()
        };
        let pk = if s.primary_key.is_empty() {
            "none".to_string()
        } else {
            s.primary_key.join(", ")
        };
        let _ = writeln!(out, "{}  (primary key: {pk}; {incremental})", s.name);
        for f in s.schema.fields() {
            let ty = FerryType::of(f)
                .map(|t| t.to_string())
                .unwrap_or_else(|| f.data_type().to_string());
            let _ = writeln!(
                out,
                "  {:<24} {:<16} {}",
                f.name(),
                ty,
                if f.is_nullable() { "null" } else { "not null" }
            );
        }
        out.push('\n');
    }
    emit(&out)?;
    Ok(0)
}

fn spec(connector: &str) -> Result<u8, Error> {
    let registry = crate::registry();
    let def = registry.get(connector)?;
    let text = serde_json::to_string_pretty(&def.spec()).expect("json");
    emit(&format!("{text}\n"))?;
    Ok(0)
}

fn connectors() -> Result<u8, Error> {
    let mut out = format!(
        "{:<12} {:<7} {:<12} description\n",
        "connector", "source", "destination"
    );
    for d in crate::registry().all() {
        out.push_str(&format!(
            "{:<12} {:<7} {:<12} {}\n",
            d.name,
            if d.is_source() { "yes" } else { "-" },
            if d.is_sink() { "yes" } else { "-" },
            d.description
        ));
    }
    emit(&out)?;
    Ok(0)
}

fn state(action: StateAction) -> Result<u8, Error> {
    match action {
        StateAction::Show { config, stream } => {
            let cfg = load(&config)?;
            let store = StateStore::open_pipeline(&cfg, Access::Read)?;
            if let Some(note) = store.note() {
                eprintln!("{note}");
            }
            let snap = store.snapshot();
            let value = match &stream {
                Some(s) => {
                    known_stream(&cfg, &store, s)?;
                    serde_json::to_value(snap.streams.get(s).ok_or_else(|| {
                        Error::new(
                            ErrorKind::NotFound,
                            format!("no state saved for stream `{s}`: its next sync reads it from the start"),
                        )
                        .with("stream", s)
                        .with("file", store.path().display())
                    })?)
                }
                None => serde_json::to_value(&snap),
            }
            .expect("state serializes");
            let text =
                ferry_core::redact::redact(&serde_json::to_string_pretty(&value).expect("json"));
            emit(&format!("{text}\n"))?;
            Ok(0)
        }
        StateAction::Reset { config, stream } => {
            let cfg = load(&config)?;
            let store = StateStore::open_pipeline(&cfg, Access::Exclusive("state reset"))?;
            if let Some(note) = store.note() {
                eprintln!("{note}");
            }
            if let Some(s) = &stream {
                known_stream(&cfg, &store, s)?;
            }
            let removed = store.reset(stream.as_deref())?;
            let pipeline = store.pipeline().map(|p| p.describe()).unwrap_or_default();
            if removed.is_empty() {
                println!("no state to reset (pipeline `{pipeline}`)");
            } else {
                println!(
                    "reset state of: {} (pipeline `{pipeline}`)",
                    removed.join(", ")
                );
            }
            Ok(0)
        }
    }
}

/// `stream` is one the config lists or one with saved state; otherwise a usage error
/// (exit 2) naming those that are.
fn known_stream(cfg: &SyncConfig, store: &StateStore, stream: &str) -> Result<(), Error> {
    let mut known: Vec<String> = store.stream_names();
    known.extend(cfg.streams.iter().map(|s| s.name.clone()));
    known.sort();
    known.dedup();
    if known.iter().any(|k| k == stream) {
        return Ok(());
    }
    let listed = if known.is_empty() {
        "none (the config lists no streams and nothing was synced yet)".to_string()
    } else {
        known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let near = ferry_core::suggest::nearest(stream, known.iter().map(String::as_str))
        .map(|n| format!("did you mean `{n}`? "))
        .unwrap_or_default();
    Err(Error::new(
        ErrorKind::ConfigInvalid,
        format!("no stream `{stream}` in this pipeline; {near}streams it knows: {listed}"),
    )
    .with("stream", stream)
    .with("state", store.path().display()))
}
