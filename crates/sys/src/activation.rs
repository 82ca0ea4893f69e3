//! systemd socket activation (`sd_listen_fds(3)`): the listening sockets systemd passed as
//! descriptors 3.. with `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`.
//!
//! [`take_listen_fds`] checks that the variables are meant for this process, that every
//! descriptor is open and is a listening stream socket, takes ownership of each (close-on-exec
//! set), and clears the variables so children do not inherit them.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// A descriptor passed by systemd, with its name (`FileDescriptorName=`, or systemd's default
/// for the unit, such as `berth.socket`).
#[derive(Debug)]
pub struct ActivatedSocket {
    pub fd: OwnedFd,
    pub number: RawFd,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivationError {
    #[error(
        "no sockets found via socket activation: make sure the service was started by systemd"
    )]
    NoSockets,
    #[error("LISTEN_PID={0} is not this process ({1})")]
    OtherProcess(String, u32),
    #[error("invalid LISTEN_FDS={0:?}")]
    BadCount(String),
    #[error("descriptor {0} passed by systemd is not a listening stream socket")]
    NotAListener(RawFd),
}

/// The variables as read from the environment.
pub struct ListenEnv {
    pub pid: Option<String>,
    pub fds: Option<String>,
    pub names: Option<String>,
}

impl ListenEnv {
    pub fn from_process() -> ListenEnv {
        ListenEnv {
            pid: std::env::var("LISTEN_PID").ok(),
            fds: std::env::var("LISTEN_FDS").ok(),
            names: std::env::var("LISTEN_FDNAMES").ok(),
        }
    }

    /// How many descriptors the variables promise this process (`own_pid`), checked.
    pub fn count(&self, own_pid: u32) -> Result<usize, ActivationError> {
        let (Some(pid), Some(fds)) = (&self.pid, &self.fds) else {
            return Err(ActivationError::NoSockets);
        };
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return Err(ActivationError::OtherProcess(pid.clone(), own_pid));
        }
        let n: usize = fds
            .trim()
            .parse()
            .map_err(|_| ActivationError::BadCount(fds.clone()))?;
        // A bound keeps a garbage value from making us claim every descriptor we have.
        if n == 0 {
            return Err(ActivationError::NoSockets);
        }
        if n > 1024 {
            return Err(ActivationError::BadCount(fds.clone()));
        }
        Ok(n)
    }

    /// The name of the `i`-th descriptor, when `LISTEN_FDNAMES` gives one.
    pub fn name(&self, i: usize) -> Option<String> {
        self.names
            .as_deref()
            .and_then(|n| n.split(':').nth(i))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

fn is_listening_stream_socket(fd: RawFd) -> bool {
    let mut val: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `val`, a c_int we own; an invalid
    // or non-socket descriptor only makes it fail.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            std::ptr::addr_of_mut!(val).cast(),
            &mut len,
        )
    };
    if rc != 0 || val == 0 {
        return false;
    }
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above, for SO_TYPE.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            std::ptr::addr_of_mut!(ty).cast(),
            &mut len,
        )
    };
    rc == 0 && ty == libc::SOCK_STREAM
}

/// Takes the descriptors systemd passed to this process and clears the variables. Each must be
/// a listening stream socket; nothing is taken when one is not.
pub fn take_listen_fds() -> Result<Vec<ActivatedSocket>, ActivationError> {
    let env = ListenEnv::from_process();
    let n = env.count(std::process::id())?;
    let numbers: Vec<RawFd> = (0..n).map(|i| LISTEN_FDS_START + i as RawFd).collect();
    if let Some(bad) = numbers
        .iter()
        .copied()
        .find(|fd| !is_listening_stream_socket(*fd))
    {
        return Err(ActivationError::NotAListener(bad));
    }
    let mut out = Vec::with_capacity(n);
    for (i, number) in numbers.into_iter().enumerate() {
        // SAFETY: systemd hands these descriptors to this process (LISTEN_PID checked above)
        // and nothing else in berth owns them; each was just checked to be an open listening
        // socket, and the variables are cleared below so they are taken only once.
        let fd = unsafe { OwnedFd::from_raw_fd(number) };
        // SAFETY: fcntl on a descriptor we own; F_SETFD with FD_CLOEXEC takes no pointer.
        unsafe { libc::fcntl(number, libc::F_SETFD, libc::FD_CLOEXEC) };
        out.push(ActivatedSocket {
            fd,
            number,
            name: env.name(i),
        });
    }
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pid: Option<&str>, fds: Option<&str>, names: Option<&str>) -> ListenEnv {
        ListenEnv {
            pid: pid.map(str::to_string),
            fds: fds.map(str::to_string),
            names: names.map(str::to_string),
        }
    }

    #[test]
    fn counts_are_checked() {
        assert_eq!(
            env(None, None, None).count(7),
            Err(ActivationError::NoSockets)
        );
        assert_eq!(env(Some("7"), Some("2"), None).count(7), Ok(2));
        assert!(matches!(
            env(Some("8"), Some("2"), None).count(7),
            Err(ActivationError::OtherProcess(_, 7))
        ));
        assert!(matches!(
            env(Some("7"), Some("x"), None).count(7),
            Err(ActivationError::BadCount(_))
        ));
        assert_eq!(
            env(Some("7"), Some("0"), None).count(7),
            Err(ActivationError::NoSockets)
        );
        assert!(env(Some("7"), Some("99999"), None).count(7).is_err());
    }

    #[test]
    fn names() {
        let e = env(Some("1"), Some("3"), Some("berth.socket::api"));
        assert_eq!(e.name(0).as_deref(), Some("berth.socket"));
        assert_eq!(e.name(1), None);
        assert_eq!(e.name(2).as_deref(), Some("api"));
        assert_eq!(e.name(3), None);
    }

    #[test]
    fn a_plain_file_is_not_a_listener() {
        let f = tempfile::tempfile().unwrap();
        use std::os::fd::AsRawFd;
        assert!(!is_listening_stream_socket(f.as_raw_fd()));
        let l =
            std::os::unix::net::UnixListener::bind(tempfile::tempdir().unwrap().path().join("s"))
                .unwrap();
        assert!(is_listening_stream_socket(l.as_raw_fd()));
    }
}
