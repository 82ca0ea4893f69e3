//! Terminal handling: raw mode (restored on drop / exit), size, SIGWINCH.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;

use nix::sys::termios::{self, SetArg, Termios};

static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

pub use berth_sys::tty::is_tty;

pub fn stdin_is_tty() -> bool {
    is_tty(0)
}

pub fn stdout_is_tty() -> bool {
    is_tty(1)
}

/// Puts stdin in raw mode; the original settings come back with [`restore`].
pub fn make_raw() {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    if let Ok(orig) = termios::tcgetattr(fd) {
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(fd, SetArg::TCSANOW, &raw).is_ok() {
            if let Ok(mut g) = SAVED.lock() {
                *g = Some(orig);
            }
        }
    }
}

/// Restores the terminal settings saved by [`make_raw`] (idempotent).
pub fn restore() {
    if let Ok(mut g) = SAVED.lock() {
        if let Some(orig) = g.take() {
            let stdin = std::io::stdin();
            let fd: BorrowedFd<'_> = stdin.as_fd();
            let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &orig);
        }
    }
}

/// Terminal size (rows, cols) of stdout, else stdin.
pub fn size() -> Option<(u16, u16)> {
    [1, 0, 2].into_iter().find_map(berth_sys::tty::window_size)
}

/// Keeps the remote terminal size in sync: now and on every SIGWINCH.
/// `path` is the resize endpoint (`/containers/{id}/resize` or `/exec/{id}/resize`).
pub fn monitor_size(client: crate::client::Client, path: String) {
    tokio::spawn(async move {
        let send = |client: crate::client::Client, path: String| async move {
            if let Some((h, w)) = size() {
                let _ = client
                    .post(&path, &[("h", h.to_string()), ("w", w.to_string())])
                    .await;
            }
        };
        send(client.clone(), path.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            send(client.clone(), path.clone()).await;
        }
    });
}
