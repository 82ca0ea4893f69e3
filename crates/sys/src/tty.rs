//! Terminal queries on raw descriptors (stdin, stdout, stderr).

use std::os::fd::RawFd;

/// Whether `fd` is a terminal.
pub fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor number; an invalid one gives 0.
    unsafe { libc::isatty(fd) == 1 }
}

/// The terminal size (rows, columns) of `fd`, if it is a terminal with a non-zero size.
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which points at ours.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_not_a_terminal() {
        use std::os::fd::AsRawFd;
        let f = tempfile::tempfile().unwrap();
        assert!(!is_tty(f.as_raw_fd()));
        assert_eq!(window_size(f.as_raw_fd()), None);
        assert!(!is_tty(-1));
    }
}
