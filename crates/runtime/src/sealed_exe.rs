//! CVE-2019-5736: a container whose command is `/proc/self/exe` would otherwise execute the
//! runtime's own binary inside the container, where another of its processes could reopen that
//! host file through `/proc/<pid>/exe` and overwrite it once the runtime exits. Before the
//! commands that put processes into a container (`create`, `run`, `exec`), the runtime
//! re-executes itself from a sealed memfd copy of its binary (as runc does), so
//! `/proc/self/exe` of everything it starts refers to that copy: read-only, never the host's
//! file.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use crate::{Error, Result};

/// The runtime commands that start processes inside a container.
pub fn needs_sealed_exe(cmd: &str) -> bool {
    matches!(cmd, "create" | "run" | "exec")
}

/// The seals a sealed copy carries: no writes, no size change, no seal removal.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// Whether the file behind `fd` is a memfd carrying every seal of [`seals`].
fn is_sealed(fd: &impl AsFd) -> bool {
    fcntl(fd.as_fd().as_raw_fd(), FcntlArg::F_GET_SEALS)
        .map(|s| SealFlag::from_bits_truncate(s).contains(seals()))
        .unwrap_or(false)
}

/// Whether this process already runs from a sealed copy.
pub fn running_sealed() -> bool {
    File::open("/proc/self/exe").is_ok_and(|f| is_sealed(&f))
}

/// A sealed, executable memfd holding a copy of this process's binary.
fn sealed_copy() -> Result<OwnedFd> {
    sealed_copy_of(std::path::Path::new("/proc/self/exe"))
}

/// A sealed, executable memfd holding a copy of the binary at `path`. The daemon makes one of
/// berth-runtime and has shims run the runtime from it: a runtime that finds itself running
/// sealed skips its own copy.
pub fn sealed_copy_of(path: &std::path::Path) -> Result<OwnedFd> {
    let name = c"berth-runtime";
    let base = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3+): hosts with vm.memfd_noexec=1 otherwise get a non-executable memfd;
    // older kernels refuse the flag, and their memfds are executable anyway.
    let exec = MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC);
    let fd = memfd_create(name, base | exec)
        .or_else(|_| memfd_create(name, base))
        .map_err(|e| Error::sys("memfd_create for the sealed runtime binary", e))?;
    let mut copy = File::from(fd);
    let mut exe = File::open(path).map_err(|e| Error::io(path, e))?;
    std::io::copy(&mut exe, &mut copy)
        .map_err(|e| Error::sys("copy the runtime binary into a memfd", e))?;
    fcntl(copy.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals()))
        .map_err(|e| Error::sys("seal the runtime binary copy", e))?;
    Ok(OwnedFd::from(copy))
}

/// Re-executes the process from a sealed copy of its binary with the same arguments and
/// environment, unless it already runs from one. Returns only on failure.
pub fn reexec_sealed() -> Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let fd = sealed_copy()?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid("an argument contains a NUL byte"))?;
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let e = nix::unistd::fexecve(fd.as_raw_fd(), &args, &env).unwrap_err();
    Err(Error::sys("re-execute from the sealed runtime binary", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commands_that_enter_a_container_reexec() {
        for c in ["create", "run", "exec"] {
            assert!(needs_sealed_exe(c), "{c}");
        }
        for c in [
            "start", "state", "kill", "delete", "list", "ps", "pause", "features",
        ] {
            assert!(!needs_sealed_exe(c), "{c}");
        }
    }

    #[test]
    fn the_copy_is_sealed_and_identical() {
        let fd = sealed_copy().unwrap();
        assert!(is_sealed(&fd));
        let mut f = File::from(fd);
        let mut copy = Vec::new();
        std::io::Seek::rewind(&mut f).unwrap();
        std::io::Read::read_to_end(&mut f, &mut copy).unwrap();
        let exe = std::fs::read("/proc/self/exe").unwrap();
        assert!(
            copy == exe,
            "copy of {} bytes, binary of {}",
            copy.len(),
            exe.len()
        );
        // writes are refused by the seal
        let err = std::io::Write::write_all(&mut f, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        // the test binary itself is a plain file
        assert!(!running_sealed());
    }
}
