//! One function per command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ferry_core::receipt::Receipt;
use ferry_core::report::Status;
use ferry_core::secret::ResolveContext;
use ferry_core::state::StateStore;
use ferry_core::{Error, ErrorKind, FerryType, RunOptions, Runtime, SyncConfig};
use tokio_util::sync::CancellationToken;

use super::output::{exit_code, render_error};
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
        } => super::verify::verify(&receipt, pubkey.as_deref(), config.as_deref()).await,
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
            clap_complete::generate(shell, &mut cmd, "ferry", &mut std::io::stdout());
            Ok(0)
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
        ferry_core::state::write_atomic(p, json.as_bytes())?;
    }
    Ok(worst)
}

pub(super) async fn sync_one(
    path: &Path,
    opts: &RunOptions,
    dry_run: bool,
    bundle_dir: Option<&Path>,
) -> Result<(ferry_core::RunReport, String), Error> {
    let cfg = load(path)?;
    let registry = crate::registry();
    let source = registry.build_source(&cfg.source)?;
    let mut sink = registry.build_sink(&cfg.destination)?;
    let preview = dry_run.then(|| Arc::new(super::dry_run::DryRunSink::new(sink.clone())));
    if let Some(p) = &preview {
        sink = p.clone();
    }
    let state = Arc::new(StateStore::open(cfg.state_path(), cfg.client.as_deref())?);
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
    rt.quarantine = Arc::new(match (&cfg.run.quarantine, dry_run) {
        (_, true) => ferry_core::quarantine::Quarantine::new(scratch.path()),
        (ferry_core::config::QuarantineTarget::Folder(dir), false) => {
            ferry_core::quarantine::Quarantine::new(cfg.dir.join(dir))
        }
        // the only destination section there is (checked when the config was read)
        (ferry_core::config::QuarantineTarget::Destination(q), false) => {
            ferry_core::quarantine::Quarantine::to_sink(rt.sink.clone(), &q.stream)?
        }
    });
    rt.observer = Arc::new(Progress::new());
    rt.cancel = cancel;
    let result = rt
        .sync(
            &cfg.streams,
            opts,
            Some(&cfg),
            (&cfg.source.kind, &cfg.destination.kind),
        )
        .await;
    watcher.abort();
    let mut report = result?;
    if let Some(p) = preview {
        report.dry_run = true;
        let note = format!(
            "{}dry run: nothing was written, no state or receipt saved",
            p.render()
        );
        return Ok((report, note));
    }
    let mut note = write_receipt(&cfg, &report);
    for b in super::bundle::write_all(&cfg, &report, bundle_dir) {
        note.push_str(&format!(
            "\ndebug bundle: {} (`ferry replay {}` re-runs the failing step)",
            b.display(),
            b.display()
        ));
    }
    Ok((report, note))
}

/// Writes the run's receipt, signed when the vault holds the signing key; returns a line
/// saying where it went. A receipt that cannot be written is reported, not fatal.
fn write_receipt(cfg: &SyncConfig, report: &ferry_core::RunReport) -> String {
    let receipt = match Receipt::from_report(report, cfg.client.as_deref()) {
        Ok(r) => r,
        Err(e) => return format!("receipt: not written: {e}"),
    };
    let folder = match ClientFolder::of(&cfg.file.path) {
        Ok(f) => f,
        Err(e) => return format!("receipt: not written: {e}"),
    };
    let (signed, how) = if folder.vault.exists() {
        match ferry_core::secret::Vault::get(folder.resolver().as_ref(), &cfg.run.signing_key) {
            Ok(key) => match receipt.clone().sign(&key) {
                Ok(s) => {
                    let pk = s
                        .signature
                        .as_ref()
                        .map(|s| s.public_key.clone())
                        .unwrap_or_default();
                    (s, format!("signed by {pk}"))
                }
                Err(e) => (receipt.unsigned(), format!("UNSIGNED: {}", e.message())),
            },
            Err(e) => (receipt.unsigned(), format!("UNSIGNED: {}", e.message())),
        }
    } else {
        (
            receipt.unsigned(),
            "UNSIGNED: run `ferry keys generate signing` to sign receipts".to_string(),
        )
    };
    let path = cfg
        .dir
        .join(&cfg.run.receipts)
        .join(format!("{}.json", report.run_id));
    match signed.write(&path) {
        Ok(()) => format!("receipt: {} ({how})", path.display()),
        Err(e) => format!("receipt: not written: {e}"),
    }
}

async fn check(path: &Path) -> Result<u8, Error> {
    let cfg = load(path)?;
    let registry = crate::registry();
    let source = registry.build_source(&cfg.source);
    let sink = registry.build_sink(&cfg.destination);
    let (src_result, dst_result) = tokio::join!(
        async {
            match &source {
                Ok(s) => s.check().await,
                Err(e) => Err(clone_err(e)),
            }
        },
        async {
            match &sink {
                Ok(s) => s.check().await,
                Err(e) => Err(clone_err(e)),
            }
        }
    );
    let mut failed = false;
    println!("{:<12} {:<10} status", "connection", "connector");
    for (role, kind, res) in [
        ("source", &cfg.source.kind, src_result),
        ("destination", &cfg.destination.kind, dst_result),
    ] {
        match res {
            Ok(()) => println!("{role:<12} {kind:<10} ok"),
            Err(e) => {
                failed = true;
                println!(
                    "{role:<12} {kind:<10} FAILED ({}): {}",
                    e.kind(),
                    ferry_core::redact::redact(&e.to_string())
                );
                if let Some(h) = e.kind().hint() {
                    println!("{:<23} hint: {h}", "");
                }
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Resolves a `${…}` reference (or literal identity) against the client's vault.
fn decrypt(config: &Path, identity: &str) -> Result<ferry_core::Secret, Error> {
    let folder = ClientFolder::of(config)?;
    let ctx = ResolveContext {
        vault: Some(folder.resolver()),
        base_dir: ".".into(),
    };
    let (value, _) =
        ferry_core::secret::with_context(ctx, || ferry_core::secret::resolve(identity));
    Ok(ferry_core::Secret::new(value?))
}

fn clone_err(e: &Error) -> Error {
    let mut out = Error::new(e.kind(), e.message());
    for (k, v) in e.context() {
        out = out.with(k, v);
    }
    out
}

async fn discover(path: &Path, json: bool) -> Result<u8, Error> {
    let cfg = load(path)?;
    let source = crate::registry().build_source(&cfg.source)?;
    let catalog = source.discover().await?;
    if json {
        let streams: Vec<_> = catalog.streams.iter().map(|s| s.to_json()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "streams": streams })).expect("json")
        );
        return Ok(0);
    }
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
        println!("{}  (primary key: {pk}; {incremental})", s.name);
        for f in s.schema.fields() {
            let ty = FerryType::of(f)
                .map(|t| t.to_string())
                .unwrap_or_else(|| f.data_type().to_string());
            println!(
                "  {:<24} {:<16} {}",
                f.name(),
                ty,
                if f.is_nullable() { "null" } else { "not null" }
            );
        }
        println!();
    }
    Ok(0)
}

fn spec(connector: &str) -> Result<u8, Error> {
    let registry = crate::registry();
    let def = registry.get(connector)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&def.spec()).expect("json")
    );
    Ok(0)
}

fn connectors() -> Result<u8, Error> {
    println!(
        "{:<12} {:<7} {:<12} description",
        "connector", "source", "destination"
    );
    for d in crate::registry().all() {
        println!(
            "{:<12} {:<7} {:<12} {}",
            d.name,
            if d.is_source() { "yes" } else { "-" },
            if d.is_sink() { "yes" } else { "-" },
            d.description
        );
    }
    Ok(0)
}

fn state(action: StateAction) -> Result<u8, Error> {
    match action {
        StateAction::Show { config, stream } => {
            let cfg = load(&config)?;
            let store = StateStore::open(cfg.state_path(), cfg.client.as_deref())?;
            let snap = store.snapshot();
            let value = match &stream {
                Some(s) => serde_json::to_value(snap.streams.get(s).ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("no state saved for stream `{s}`"),
                    )
                    .with("file", store.path().display())
                })?),
                None => serde_json::to_value(&snap),
            }
            .expect("state serializes");
            println!(
                "{}",
                ferry_core::redact::redact(&serde_json::to_string_pretty(&value).expect("json"))
            );
            Ok(0)
        }
        StateAction::Reset { config, stream } => {
            let cfg = load(&config)?;
            let store = StateStore::open(cfg.state_path(), cfg.client.as_deref())?;
            let removed = store.reset(stream.as_deref())?;
            if removed.is_empty() {
                println!("no state to reset");
            } else {
                println!("reset state of: {}", removed.join(", "));
            }
            Ok(0)
        }
    }
}
