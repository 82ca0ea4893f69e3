//! `berthd`: the berth daemon as its own executable. `berth daemon ARGS` execs it (it sits next
//! to `berth`) with argv[0] `<berth's argv[0]> daemon`, so usage and errors read `berth daemon`
//! there and `berthd` when it is run directly. The daemon finds `berth-shim` and
//! `berth-runtime` next to this executable.

use std::process::ExitCode;

use clap::Parser;

/// Run the berth daemon
#[derive(Parser)]
#[command(name = "berthd")]
struct Cli {
    #[command(flatten)]
    args: berth_daemon::DaemonArgs,
}

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => berth_daemon::run(cli.args),
        Err(e) => berth_usage::report(&e),
    }
}
