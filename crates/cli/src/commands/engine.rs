//! `berth daemon …`, `berth runtime …` and `berth registry …`: the engine's own binaries, run in
//! place of the client.
//!
//! The client links neither the daemon, the runtime nor the registry server. `berth daemon ARGS`
//! execs `berthd ARGS`, `berth runtime ARGS` execs `berth-runtime ARGS` and `berth registry ARGS`
//! execs `berth-registry ARGS`, all found next to this executable (its
//! real path, symlinks resolved). The exec replaces the process, so its pid, signals and exit
//! status are the daemon's or the runtime's own. argv[0] becomes `<berth's argv[0]> daemon` (or
//! `runtime`): the command line reads as before, and the daemon's usage and errors say
//! `berth daemon`. Every argument passes through untouched, `--help` included.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Args;

/// The binary behind `berth daemon`.
pub const DAEMON_BIN: &str = "berthd";
/// The binary behind `berth runtime`.
pub const RUNTIME_BIN: &str = "berth-runtime";
/// The binary behind `berth registry`.
pub const REGISTRY_BIN: &str = "berth-registry";

/// `berth daemon` arguments: everything, verbatim, for berthd.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct DaemonArgs {
    /// dockerd-style flags (see `berth daemon --help`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// `berth runtime` arguments: everything, verbatim, for berth-runtime.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RuntimeArgs {
    /// runc-style arguments: [--root R] [--log F] [--log-format json] COMMAND [ARGS...]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// `berth registry` arguments: everything, verbatim, for berth-registry.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RegistryArgs {
    /// serve [--addr A] [--root R] [--config F] … | gc [--root R] [--dry-run]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// The engine binary a subcommand of `berth` runs, if any.
pub fn binary_for(subcommand: &OsStr) -> Option<&'static str> {
    match subcommand.to_str()? {
        "daemon" => Some(DAEMON_BIN),
        "runtime" => Some(RUNTIME_BIN),
        "registry" => Some(REGISTRY_BIN),
        _ => None,
    }
}

/// Where `name` sits: next to this executable.
fn sibling(name: &str) -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| {
        std::io::Error::other(format!("{} has no parent directory", exe.display()))
    })?;
    Ok(dir.join(name))
}

/// Execs the engine binary behind `berth SUBCOMMAND` with `args`. Returns only when it could
/// not be run: after printing why, with the shell's statuses (127 not found, 126 otherwise).
pub fn exec(subcommand: &str, args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let Some(name) = binary_for(OsStr::new(subcommand)) else {
        eprintln!("berth: {subcommand}: not an engine command");
        return ExitCode::from(125);
    };
    let path = match sibling(name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth: cannot find {name} (`berth {subcommand}` runs it): {e}");
            return ExitCode::from(127);
        }
    };
    let mut arg0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| OsString::from("berth"));
    arg0.push(" ");
    arg0.push(subcommand);
    let e = Command::new(&path).arg0(arg0).args(args).exec();
    if e.kind() == std::io::ErrorKind::NotFound {
        eprintln!(
            "berth: {} not found: `berth {subcommand}` runs {name}, which must be installed next to berth",
            path.display()
        );
        ExitCode::from(127)
    } else {
        eprintln!(
            "berth: cannot run {} (`berth {subcommand}`): {e}",
            path.display()
        );
        ExitCode::from(126)
    }
}

/// `berth daemon ARGS` / `berth runtime ARGS` / `berth registry ARGS` as the first argument: exec at once, before the
/// client parses its command line (so `berth runtime run` costs one exec over berth-runtime's
/// own). `None` for every other command line.
pub fn exec_if_engine_command() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let first = args.next()?;
    binary_for(&first)?;
    let sub = first.to_str()?.to_string();
    Some(exec(&sub, args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Runtime(RuntimeArgs),
        Daemon(DaemonArgs),
    }

    #[test]
    fn passes_arguments_through() {
        let w = Wrap::try_parse_from([
            "berth",
            "runtime",
            "--root",
            "/r",
            "--log",
            "/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "c1",
        ])
        .unwrap();
        let Sub::Runtime(a) = w.cmd else {
            panic!("not runtime")
        };
        assert_eq!(a.args[0], "--root");
        assert_eq!(a.args.last().map(|s| s.as_os_str()), Some(OsStr::new("c1")));
        assert_eq!(a.args.len(), 10);
        let w = Wrap::try_parse_from(["berth", "runtime", "--help"]).unwrap();
        let Sub::Runtime(a) = w.cmd else {
            panic!("not runtime")
        };
        assert_eq!(a.args, vec!["--help"]);
        let w = Wrap::try_parse_from(["berth", "daemon", "--help", "-H", "unix:///x"]).unwrap();
        let Sub::Daemon(a) = w.cmd else {
            panic!("not daemon")
        };
        assert_eq!(a.args, vec!["--help", "-H", "unix:///x"]);
    }

    #[test]
    fn engine_commands() {
        assert_eq!(binary_for(OsStr::new("daemon")), Some("berthd"));
        assert_eq!(binary_for(OsStr::new("runtime")), Some("berth-runtime"));
        assert_eq!(binary_for(OsStr::new("registry")), Some("berth-registry"));
        assert_eq!(binary_for(OsStr::new("run")), None);
    }
}
