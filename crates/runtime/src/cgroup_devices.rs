//! Device control on cgroup v2: loads the program [`crate::devicefilter`] compiles and
//! attaches it to a cgroup directory (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`), replacing the
//! programs attached there before. The new program is attached first and the old ones are
//! detached after, so the cgroup is never without a filter. The program's descriptor is
//! closed once attached: the attachment keeps the program alive.

use crate::{devicefilter, sys, Error, Result};
use oci_spec::runtime::LinuxDeviceCgroup;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The name the program carries (`bpftool prog` shows it).
const PROG_NAME: &str = "berth_devices";
/// Verifier log size for the second, diagnostic load.
const LOG_SIZE: usize = 256 * 1024;
/// How many of the log's last lines go into the error.
const LOG_LINES: usize = 8;

fn bpf_error(what: &str, e: &std::io::Error) -> Error {
    let hint = match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            " (device control on cgroup v2 needs a kernel with CONFIG_CGROUP_BPF)"
        }
        _ => "",
    };
    Error::Cgroup(format!("{what} the device filter: {e}{hint}"))
}

/// The last lines of a verifier log (where it says why), on one line.
fn log_tail(log: &[u8]) -> String {
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(LOG_LINES)..].join(" | ")
}

/// Loads a device program (`insns` as [`devicefilter::encode`] makes them); when the kernel
/// refuses it, loads it again with the verifier log so the error says why.
pub fn load(insns: &[u64]) -> Result<OwnedFd> {
    let license = CString::new(devicefilter::LICENSE).expect("license has no NUL");
    match sys::bpf_load_cgroup_device_prog(insns, &license, PROG_NAME, None) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut log = vec![0u8; LOG_SIZE];
            let retry =
                sys::bpf_load_cgroup_device_prog(insns, &license, PROG_NAME, Some(&mut log));
            let text = log_tail(&log);
            match retry {
                Ok(fd) => Ok(fd),
                Err(e) if text.is_empty() => Err(bpf_error("load", &e)),
                Err(e) => Err(Error::Cgroup(format!(
                    "load the device filter: {e} (first try: {first}); verifier log: {text}"
                ))),
            }
        }
    }
}

/// Makes `rules` (in v1 order: the last matching rule decides, default deny) the device
/// policy of the v2 cgroup directory `dir`. Bad rules change nothing; so does a kernel that
/// refuses the program.
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let program = devicefilter::encode(&devicefilter::compile(rules)?);
    let cgroup: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| Error::io(dir, e))?
        .into();
    replace(cgroup, &program).map_err(|e| match e {
        Error::Cgroup(m) => Error::Cgroup(format!("{}: {m}", dir.display())),
        e => e,
    })
}

/// Attaches the program to the cgroup, then detaches the programs attached before it.
fn replace(cgroup: OwnedFd, program: &[u64]) -> Result<()> {
    let prog = load(program)?;
    let old = sys::bpf_prog_query(cgroup.as_fd(), sys::bpf::CGROUP_DEVICE)
        .map_err(|e| bpf_error("query", &e))?;
    sys::bpf_prog_attach(
        cgroup.as_fd(),
        prog.as_fd(),
        sys::bpf::CGROUP_DEVICE,
        sys::bpf::F_ALLOW_MULTI,
    )
    .map_err(|e| bpf_error("attach", &e))?;
    drop(prog);
    for id in old {
        let old_prog = match sys::bpf_prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            // detached and freed meanwhile
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_error("find an old program of", &e)),
        };
        match sys::bpf_prog_detach(cgroup.as_fd(), old_prog.as_fd(), sys::bpf::CGROUP_DEVICE) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_error("detach an old program of", &e)),
        }
    }
    Ok(())
}

/// The ids of the device programs attached to the cgroup directory `dir` itself.
pub fn attached(dir: &Path) -> Result<Vec<u32>> {
    let cgroup = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    sys::bpf_prog_query(cgroup.as_fd(), sys::bpf::CGROUP_DEVICE).map_err(|e| bpf_error("query", &e))
}
