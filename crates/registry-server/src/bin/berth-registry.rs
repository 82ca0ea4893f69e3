//! `berth-registry`: berth's registry server and its garbage collector. `berth registry ARGS`
//! execs it (it sits next to `berth`) with argv[0] `<berth's argv[0]> registry`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use berth_registry_server::config::{RegistryConfig, ServeArgs};
use berth_registry_server::{gc, server, storage::Store, Registry};
use clap::{Parser, Subcommand};

/// berth's OCI distribution registry
#[derive(Parser)]
#[command(name = "berth-registry")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the registry API until SIGTERM
    Serve(ServeArgs),
    /// Delete blobs no manifest references
    Gc(GcArgs),
}

#[derive(clap::Args)]
struct GcArgs {
    /// Storage root directory
    #[arg(long, default_value = berth_registry_server::config::DEFAULT_ROOT)]
    root: std::path::PathBuf,
    /// List what would be deleted; delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs younger than this many seconds (a push may be about to
    /// reference them)
    #[arg(long, default_value_t = 3600)]
    grace_seconds: u64,
    /// Remove upload sessions nobody wrote to for this many seconds
    #[arg(long, default_value_t = gc::DEFAULT_UPLOAD_MAX_AGE.as_secs())]
    upload_max_age_seconds: u64,
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = RegistryConfig::load(&args)?;
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_max_level(cfg.log_level)
        .try_init();
    let reg =
        Arc::new(Registry::new(cfg.clone()).map_err(|e| {
            anyhow::anyhow!("opening the storage root {}: {e}", cfg.root.display())
        })?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(server::run(reg)).map_err(anyhow::Error::msg)
}

fn run_gc(a: GcArgs) -> anyhow::Result<()> {
    if !a.root.is_dir() {
        anyhow::bail!("storage root {} does not exist", a.root.display());
    }
    let store = Store::open(&a.root)?;
    let r = gc::collect_with(
        &store,
        a.dry_run,
        Duration::from_secs(a.grace_seconds),
        Duration::from_secs(a.upload_max_age_seconds),
    )?;
    let verb = if a.dry_run { "would delete" } else { "deleted" };
    let mut bytes = 0;
    for (d, size) in &r.swept {
        println!("{verb} {d} ({size} bytes)");
        bytes += size;
    }
    for what in &r.stale_uploads {
        println!("{verb} {what}");
    }
    println!(
        "{} blob(s) referenced; {verb} {} blob(s), {bytes} bytes; kept {} unreferenced blob(s) younger than {}s",
        r.marked,
        r.swept.len(),
        r.kept_young,
        a.grace_seconds
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return berth_usage::report(&e),
    };
    let r = match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Gc(a) => run_gc(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth registry: {e:#}");
            ExitCode::from(1)
        }
    }
}
