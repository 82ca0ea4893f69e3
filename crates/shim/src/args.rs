//! The shim's command line:
//!
//! ```text
//! berth-shim --id ID --state-dir DIR --runtime PATH --runtime-root DIR
//!            (--bundle DIR | --exec-process FILE) [--log-path FILE] [--tty] [--stdin]
//! ```

use std::ffi::OsString;
use std::path::PathBuf;

/// What the shim supervises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The container's init process: `runtime create --bundle DIR` at start-up, `runtime start`
    /// on START.
    Init { bundle: PathBuf },
    /// An exec session: `runtime exec --detach --process FILE` on START.
    Exec { process: PathBuf },
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub id: String,
    pub state_dir: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub mode: Mode,
    pub log_path: Option<PathBuf>,
    /// Rotate the log past this many bytes (0: never).
    pub log_max_size: u64,
    /// Log files kept in all, the live one included.
    pub log_max_files: u32,
    pub tty: bool,
    pub stdin: bool,
    /// The container's cgroup path (`/berth/<id>`), read for OOM kills before the runtime deletes it.
    pub cgroup: Option<String>,
}

/// A runtime named by another process's descriptor (`/proc/<pid>/fd/<n>`: the daemon hands
/// shims its sealed memfd copy of berth-runtime this way, so the runtime need not copy itself
/// at every start) is opened now and run through the shim's own descriptor, which stays valid
/// after the daemon exits. Other runtime paths are run by name.
pub fn pin_runtime(mut args: Args) -> Result<Args, String> {
    use std::os::fd::IntoRawFd;
    if !args.runtime.starts_with("/proc/") {
        return Ok(args);
    }
    let file = std::fs::File::open(&args.runtime)
        .map_err(|e| format!("opening runtime {}: {e}", args.runtime.display()))?;
    // Kept open (close-on-exec) for the life of the shim.
    let fd = file.into_raw_fd();
    args.runtime = PathBuf::from(format!("/proc/self/fd/{fd}"));
    Ok(args)
}

/// Makes `p` absolute against the current directory (the shim later changes to `/`).
fn absolute(p: PathBuf) -> Result<PathBuf, String> {
    if p.is_absolute() {
        return Ok(p);
    }
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    Ok(cwd.join(p))
}

fn number(v: Option<OsString>, flag: &str) -> Result<Option<u64>, String> {
    v.map(|v| {
        v.to_str()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    })
    .transpose()
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut id = None;
    let mut state_dir = None;
    let mut runtime = None;
    let mut runtime_root = None;
    let mut bundle = None;
    let mut exec_process = None;
    let mut log_path = None;
    let mut cgroup = None;
    let mut log_max_size = None;
    let mut log_max_files = None;
    let (mut tty, mut stdin) = (false, false);
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let flag = flag
            .to_str()
            .ok_or("arguments must be valid UTF-8 flags")?
            .to_owned();
        let slot: &mut Option<OsString> = match flag.as_str() {
            "--tty" => {
                tty = true;
                continue;
            }
            "--stdin" => {
                stdin = true;
                continue;
            }
            "--id" => &mut id,
            "--state-dir" => &mut state_dir,
            "--runtime" => &mut runtime,
            "--runtime-root" => &mut runtime_root,
            "--bundle" => &mut bundle,
            "--exec-process" => &mut exec_process,
            "--log-path" => &mut log_path,
            "--cgroup" => &mut cgroup,
            "--log-max-size" => &mut log_max_size,
            "--log-max-files" => &mut log_max_files,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if value.is_empty() {
            return Err(format!("{flag} must not be empty"));
        }
        *slot = Some(value);
    }
    let need = |v: Option<OsString>, flag: &str| v.ok_or_else(|| format!("missing {flag}"));
    let id = need(id, "--id")?
        .into_string()
        .map_err(|_| "--id must be valid UTF-8")?;
    if id.starts_with('-') || id.contains('/') {
        return Err(format!("invalid --id {id:?}"));
    }
    let mode = match (bundle, exec_process) {
        (Some(b), None) => Mode::Init {
            bundle: absolute(b.into())?,
        },
        (None, Some(p)) => Mode::Exec {
            process: absolute(p.into())?,
        },
        _ => return Err("exactly one of --bundle and --exec-process is required".into()),
    };
    let runtime = PathBuf::from(need(runtime, "--runtime")?);
    // A bare program name is looked up in PATH; anything with a slash is made absolute.
    let runtime = if runtime.components().count() > 1 {
        absolute(runtime)?
    } else {
        runtime
    };
    Ok(Args {
        id,
        state_dir: absolute(need(state_dir, "--state-dir")?.into())?,
        runtime,
        runtime_root: absolute(need(runtime_root, "--runtime-root")?.into())?,
        mode,
        log_path: log_path.map(|p| absolute(p.into())).transpose()?,
        log_max_size: number(log_max_size, "--log-max-size")?.unwrap_or(0),
        log_max_files: number(log_max_files, "--log-max-files")?.unwrap_or(1) as u32,
        tty,
        stdin,
        cgroup: cgroup.and_then(|c| c.into_string().ok()),
    })
}

impl Args {
    /// A file in the state directory.
    pub fn state_file(&self, name: &str) -> PathBuf {
        self.state_dir.join(name)
    }

    /// Whether this shim supervises an exec session.
    pub fn is_exec(&self) -> bool {
        matches!(self.mode, Mode::Exec { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(OsString::from))
    }

    #[test]
    fn parses_init_and_exec() {
        let a =
            p("--id c1 --state-dir /s --runtime runc --runtime-root /r --bundle /b --tty").unwrap();
        assert_eq!(a.id, "c1");
        assert_eq!(
            a.mode,
            Mode::Init {
                bundle: "/b".into()
            }
        );
        assert_eq!(a.runtime, PathBuf::from("runc"));
        assert!(a.tty && !a.stdin && a.log_path.is_none());
        let a = p("--id c1 --state-dir /s --runtime /usr/bin/runc --runtime-root /r --exec-process /p.json --stdin --log-path /l")
            .unwrap();
        assert!(a.is_exec() && a.stdin);
        assert_eq!(a.log_path, Some("/l".into()));
        let a = p("--id c1 --state-dir s --runtime ./runc --runtime-root /r --bundle b").unwrap();
        assert!(a.state_dir.is_absolute() && a.runtime.is_absolute());
        assert!(matches!(a.mode, Mode::Init { bundle } if bundle.is_absolute()));
    }

    #[test]
    fn rejects_bad_command_lines() {
        assert!(p("--id c1 --state-dir /s --runtime runc --runtime-root /r").is_err());
        assert!(p(
            "--id c1 --state-dir /s --runtime runc --runtime-root /r --bundle /b --exec-process /p"
        )
        .is_err());
        assert!(p("--state-dir /s --runtime runc --runtime-root /r --bundle /b").is_err());
        assert!(p("--id c1 --state-dir /s --runtime runc --runtime-root /r --bundle").is_err());
        assert!(p("--id c1 --bogus x").is_err());
        assert!(p("--id a/b --state-dir /s --runtime runc --runtime-root /r --bundle /b").is_err());
    }
}
