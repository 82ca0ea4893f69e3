//! `berth runtime …`: berth's own OCI runtime with runc's command line (see `berth-runtime`).
//!
//! Every argument after `runtime` goes to the runtime untouched (global flags such as `--root`
//! and `--log` first, then the verb), so `berth runtime` can stand wherever runc does.

use clap::Args;

/// `berth runtime` arguments: everything, verbatim.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RuntimeArgs {
    /// runc-style arguments: [--root R] [--log F] [--log-format json] COMMAND [ARGS...]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Runs the runtime; returns its exit status. Must run before any thread is started (the
/// runtime forks).
pub fn run(a: RuntimeArgs) -> i32 {
    berth_runtime::cli::run(a.args)
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
    }

    #[test]
    fn passes_runc_arguments_through() {
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
        let Sub::Runtime(a) = w.cmd;
        assert_eq!(a.args[0], "--root");
        assert_eq!(a.args.last().map(String::as_str), Some("c1"));
        assert_eq!(a.args.len(), 10);
        let w = Wrap::try_parse_from(["berth", "runtime", "--help"]).unwrap();
        let Sub::Runtime(a) = w.cmd;
        assert_eq!(a.args, vec!["--help"]);
    }
}
