//! berth-usage: Docker's wording of command-line usage errors over clap, shared by the `berth`
//! client and the `berthd` daemon binary (which `berth daemon` runs), so both answer a missing
//! argument or an unknown flag as the docker CLI and dockerd do, with exit status 125.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The exit status of a usage error (docker's).
pub const USAGE_EXIT: u8 = 125;

/// The command path and usage line from a clap error ("berth run", "berth run [OPTIONS] ...").
fn usage_of(e: &clap::Error) -> Option<(String, String)> {
    let usage = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        _ => return None,
    };
    let line = usage
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("Usage:")
        .trim()
        .to_string();
    let cmd = line
        .split_whitespace()
        .take_while(|w| !w.starts_with('[') && !w.starts_with('<') && !w.starts_with('-'))
        .collect::<Vec<_>>()
        .join(" ");
    Some((cmd, line))
}

/// Rewrites clap's errors into docker's wording (missing arguments, unknown flags, unexpected
/// arguments); `None` for the errors clap's own message serves.
pub fn usage_error(e: &clap::Error) -> Option<String> {
    let (cmd, line) = usage_of(e)?;
    match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            let n = line
                .split_whitespace()
                .filter(|w| w.starts_with('<'))
                .count()
                .max(1);
            let plural = if n == 1 { "" } else { "s" };
            Some(format!(
                "berth: '{cmd}' requires at least {n} argument{plural}\n\nUsage:  {line}\n\nSee '{cmd} --help' for more information"
            ))
        }
        ErrorKind::UnknownArgument => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => return None,
            };
            let what = if arg.starts_with("--") {
                format!("unknown flag: {}", arg.split('=').next().unwrap_or(&arg))
            } else if let Some(c) = arg.strip_prefix('-') {
                format!(
                    "unknown shorthand flag: '{}' in {arg}",
                    c.chars().next().unwrap_or('-')
                )
            } else {
                format!("{cmd}: '{arg}' accepts no arguments")
            };
            Some(format!(
                "{what}\n\nUsage:  {line}\n\nRun '{cmd} --help' for more information"
            ))
        }
        _ => None,
    }
}

/// What a program does with a clap parse error: help and version requests are printed and
/// exit 0; errors are printed in docker's wording where there is one, and exit 125.
pub fn report(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            if let Some(m) = usage_error(e) {
                eprintln!("{m}");
            } else {
                let _ = e.print();
            }
            ExitCode::from(USAGE_EXIT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Parser, Debug)]
    #[command(name = "berth")]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand, Debug)]
    enum Cmd {
        Run {
            #[arg(long)]
            rm: bool,
            image: String,
        },
        Exec {
            container: String,
            #[arg(required = true)]
            cmd: Vec<String>,
        },
        Ps {
            #[arg(short, long)]
            all: bool,
        },
    }

    fn err(args: &[&str]) -> clap::Error {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())).unwrap_err()
    }

    #[test]
    fn docker_style_errors() {
        let m = usage_error(&err(&["run"])).unwrap();
        assert!(
            m.contains("'berth run' requires at least 1 argument"),
            "{m}"
        );
        let m = usage_error(&err(&["ps", "--nope"])).unwrap();
        assert!(m.starts_with("unknown flag: --nope"), "{m}");
        assert!(m.contains("Run 'berth ps --help'"), "{m}");
        let m = usage_error(&err(&["ps", "-x"])).unwrap();
        assert!(m.starts_with("unknown shorthand flag: 'x' in -x"), "{m}");
        let m = usage_error(&err(&["ps", "extra"])).unwrap();
        assert!(
            m.starts_with("berth ps: 'extra' accepts no arguments"),
            "{m}"
        );
        let m = usage_error(&err(&["exec", "c1"])).unwrap();
        assert!(m.contains("requires at least 2 arguments"), "{m}");
    }

    #[test]
    fn help_is_not_an_error() {
        assert_eq!(report(&err(&["ps", "--help"])), ExitCode::SUCCESS);
        assert_eq!(report(&err(&["ps", "--nope"])), ExitCode::from(USAGE_EXIT));
    }
}
