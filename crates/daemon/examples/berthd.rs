//! A stand-alone `berth daemon` for trying the daemon crate on its own:
//! `cargo run -p berth-daemon --example berthd -- --data-root /tmp/d -H unix:///tmp/d.sock`.
//! The engine looks for `berth-shim` next to this executable.

use clap::Parser;

#[derive(Parser)]
#[command(name = "berthd")]
struct Cli {
    #[command(flatten)]
    args: berth_daemon::DaemonArgs,
}

fn main() -> std::process::ExitCode {
    berth_daemon::run(Cli::parse().args)
}
