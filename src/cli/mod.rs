//! The command line: parses arguments, runs one command, turns errors into messages.
//!
//! Exit codes (one table for every command, in `output.rs` and the README): 0 ok,
//! 1 the run or a check failed, 2 the configuration or command line is wrong,
//! 3 `plan`: something would change, 130 interrupted with Ctrl-C.

mod bundle;
mod bundle_replay;
mod commands;
mod crypto;
mod decrypt_columns;
mod dry_run;
mod harden;
mod init;
mod logging;
mod output;
mod plan;
mod plan_deletes;
mod profile;
mod progress;
mod receipt;
mod report;
mod scaffold;
mod secrets;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::render_error;

/// Ferry moves data between your clients' systems: whole, validated, protected.
#[derive(Parser, Debug)]
#[command(name = "ferry", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). `RUST_LOG` also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Ferry's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy the configured streams from the source to the destination.
    Sync {
        /// Config file(s); several run one after the other.
        #[arg(short, long = "config", default_value = "sync.toml")]
        config: Vec<PathBuf>,
        /// Only these streams (comma-separated).
        #[arg(long, value_delimiter = ',')]
        streams: Option<Vec<String>>,
        /// Ignore saved state: read everything again.
        #[arg(long)]
        full_refresh: bool,
        /// Stop each stream after N rows (a first try; state is not saved).
        #[arg(long)]
        limit: Option<u64>,
        /// Write the run report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Fail a stream whose source reported a total (a COUNT(*), an API's total) that
        /// differs from the rows read; its state is then not committed.
        #[arg(long)]
        require_complete: bool,
        /// Where a failed stream's debug bundle goes (default `.ferry/bundles/` beside
        /// the config); `ferry replay <bundle>` re-runs it.
        #[arg(long, value_name = "DIR")]
        debug_bundle: Option<PathBuf>,
        /// Read a sample (1,000 rows per stream, or --limit), transform and validate it,
        /// write nothing, and show what would be written.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what `sync` would do (schema changes, destructive writes, rows to move)
    /// without writing anything. Exit 0: nothing would change; 3: something would, or
    /// the source cannot count what it would read; 1: the sync would refuse.
    Plan {
        /// Config file.
        #[arg(short, long, default_value = "sync.toml")]
        config: std::path::PathBuf,
        /// Only these streams (comma-separated).
        #[arg(long, value_delimiter = ',')]
        streams: Option<Vec<String>>,
        /// Plan a full refresh (ignore saved state).
        #[arg(long)]
        full_refresh: bool,
    },
    /// Re-run the failing step recorded in a debug bundle (written by a failed `sync`)
    /// against its recorded rows, writing nothing. Exit 0: the failure reproduces.
    Replay {
        /// The bundle folder (`.ferry/bundles/<run id>-<stream>`).
        bundle: PathBuf,
    },
    /// Test every connection and say what is wrong with each.
    Check {
        /// Config file.
        #[arg(short, long, default_value = "sync.toml")]
        config: PathBuf,
    },
    /// Profile the source's streams: per column its type, nulls, distinct values, min/max,
    /// top values, lengths, shapes and the personal data it appears to hold, then the
    /// checks and protections to paste into sync.toml (see docs/profile.md).
    Profile {
        /// Config file.
        #[arg(short, long, default_value = "sync.toml")]
        config: PathBuf,
        /// Only these streams (comma-separated).
        #[arg(long, value_delimiter = ',')]
        streams: Option<Vec<String>>,
        /// Read the first N rows of each stream (default 10,000).
        #[arg(long, value_name = "N", conflicts_with = "full")]
        sample: Option<u64>,
        /// Read every row.
        #[arg(long)]
        full: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the source's streams and their schemas.
    Discover {
        /// Config file.
        #[arg(short, long, default_value = "sync.toml")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a connector's config as JSON Schema.
    Spec {
        /// Connector name (see `ferry connectors`).
        connector: String,
    },
    /// List the connectors this build knows.
    Connectors,
    /// Show or reset incremental state.
    State {
        /// What to do.
        #[command(subcommand)]
        action: StateAction,
    },
    /// Manage the client's encrypted vault of secrets.
    Secrets {
        /// What to do.
        #[command(subcommand)]
        action: SecretsAction,
        /// The client's config file; the vault is `.ferry/secrets.vault` beside it.
        #[arg(short, long, default_value = "sync.toml", global = true)]
        config: PathBuf,
    },
    /// Generate keys into the vault (signing keys for receipts, field keys).
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
        /// The client's config file; the vault is `.ferry/secrets.vault` beside it.
        #[arg(short, long, default_value = "sync.toml", global = true)]
        config: PathBuf,
    },
    /// Check a delivery receipt: its signature, and that its outputs are unchanged.
    ///
    /// Exit 0: signed by the --pubkey key and no output changed or missing; 1: the
    /// signature failed (or the receipt is unsigned), or an output changed or is missing;
    /// 3: the signature is valid but no --pubkey was given to say whose it should be.
    Verify {
        /// The receipt file (`.ferry/receipts/<run>.json`).
        receipt: PathBuf,
        /// The signer's public key (base64, or an `ssh-ed25519 …` line) or a file holding it.
        #[arg(long)]
        pubkey: Option<String>,
        /// The config of the run, to read tables back from its destination (and find
        /// the files of a file destination).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The folder holding the delivered files (a copy of the delivery), which the
        /// receipt's file names are relative to.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write the client's delivery report of a run: one HTML page (no script, nothing
    /// fetched) with the receipt's figures, the rows of the pipeline's last runs, and the
    /// commands and digests to check the delivery.
    Report {
        /// The run id (`.ferry/receipts/<run id>.json`), or the path of a receipt file.
        run: String,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// The config whose receipts folder holds the run's receipt.
        #[arg(short, long, default_value = "sync.toml")]
        config: PathBuf,
    },
    /// Create a client folder, ready to check and sync.
    ///
    /// Writes sync.toml (every field of the chosen connectors, explained), .ferry/,
    /// .gitignore and a README with the next commands. Never overwrites a folder.
    Init {
        /// The client's name (also the folder's, unless --dir).
        client: String,
        /// Source connector (default `file`; asked on a terminal).
        #[arg(long)]
        source: Option<String>,
        /// Destination connector (default `sqlite`; asked on a terminal).
        #[arg(long)]
        destination: Option<String>,
        /// The folder to create (default: ./<client>).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Create a connector crate and register it.
    ///
    /// Writes connectors/<name>/, a working source and/or sink that passes the conformance
    /// kit, and adds its lines to the root Cargo.toml and src/lib.rs. Never overwrites.
    NewConnector {
        /// Lowercase letters, digits and `-` (e.g. `acme-erp`).
        name: String,
        /// With a source (default: both a source and a sink).
        #[arg(long)]
        source: bool,
        /// With a sink, i.e. a destination (default: both).
        #[arg(long)]
        sink: bool,
        /// A folder inside the Ferry workspace.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Encrypt a file (or stdin) to age recipients, in the standard age v1 format.
    Encrypt {
        /// Input file (default: stdin).
        input: Option<PathBuf>,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// An `age1…` public key, or `file:PATH` of a recipients file; repeat for several.
        #[arg(short, long = "recipient", required = true)]
        recipients: Vec<String>,
    },
    /// Decrypt an age file (or stdin) with an identity from the vault.
    Decrypt {
        /// Input file (default: stdin).
        input: Option<PathBuf>,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The identity: a file (`key.txt`, as `age -i` takes) or a reference such as
        /// `${secret:age_identity}` (default) or `${file:key.txt}`.
        #[arg(short, long, default_value = "${secret:age_identity}")]
        identity: String,
        /// The client's config file; the vault is `.ferry/secrets.vault` beside it.
        #[arg(short, long, default_value = "sync.toml")]
        config: PathBuf,
    },
    /// Decrypt columns an `encrypt` transform protected, in a CSV or JSONL file.
    ///
    /// For the client who holds the field key (`ferry keys export field` prints it). The
    /// format is in SECURITY.md, to decrypt with other tools too.
    DecryptColumns {
        /// Input file, `.csv` or `.jsonl` (default: stdin, with --format).
        input: Option<PathBuf>,
        /// Output file (default: stdout); written only when every value decrypted.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// A file holding the field key (32 bytes, base64).
        #[arg(long)]
        key_file: PathBuf,
        /// Columns to decrypt (comma-separated or repeated); `COLUMN=NAME` for a column
        /// renamed after it was encrypted under NAME.
        #[arg(long, required = true, value_delimiter = ',')]
        columns: Vec<String>,
        /// The input's format (default: from its extension).
        #[arg(long, value_enum)]
        format: Option<decrypt_columns::Format>,
    },
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `ferry secrets …`
#[derive(Subcommand, Debug)]
pub enum SecretsAction {
    /// Store a secret; the value is read from a hidden prompt, or stdin when piped.
    Set {
        /// Name to refer to it by: `${secret:NAME}`.
        name: String,
    },
    /// List the names of stored secrets (never their values).
    List,
    /// Remove a secret.
    Rm {
        /// The name.
        name: String,
    },
    /// Re-encrypt the vault under a new passphrase or key
    /// (`FERRY_NEW_PASSPHRASE` / `FERRY_NEW_MASTER_KEY`, or a prompt).
    Rotate,
}

/// `ferry keys …`
#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Make a new key and store it in the vault; prints the public half, if any.
    Generate {
        /// What kind of key.
        kind: secrets::KeyKind,
        /// Vault name to store it under (default: age_identity, signing_key, field_key, hash_key).
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing key of that name.
        #[arg(long)]
        force: bool,
    },
    /// Print the public half of a key in the vault (`signing`: the base64 key for
    /// `ferry verify --pubkey` and the `allowed_signers` line for `ssh-keygen -Y verify`).
    Show {
        /// What kind of key.
        kind: secrets::KeyKind,
        /// Vault name it is stored under (default: signing_key).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a field (or hash) key from the vault, to hand to the client who may decrypt.
    ///
    /// Whoever holds a field key can read every value encrypted with it: send it over a
    /// channel you would send the data itself over, never with the data.
    Export {
        /// What kind of key (`field` or `hash`; age and signing keys have public halves).
        kind: secrets::KeyKind,
        /// Its vault name (default: field_key, hash_key).
        #[arg(long)]
        name: Option<String>,
    },
}

/// `ferry state …`
#[derive(Subcommand, Debug)]
pub enum StateAction {
    /// Print the committed state of every stream (or one).
    Show {
        /// Config file.
        #[arg(short, long, default_value = "sync.toml")]
        config: PathBuf,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Forget the state of every stream (or one): the next sync reads everything.
    Reset {
        /// Config file.
        #[arg(short, long, default_value = "sync.toml")]
        config: PathBuf,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
}

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    // first, while this is the only thread: the vault's key leaves the environment, so
    // no child process (tap, connector, pip) inherits it
    ferry_core::vault::take_key_env();
    harden::process();
    output::quiet_broken_pipe();
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(commands::run(cli));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}
