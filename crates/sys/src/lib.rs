//! berth's low-level primitives, shared by the engine, the image store, the volume store, the
//! network manager, the builder and the runtime so that each exists once, with one meaning:
//!
//! - [`root`]: confined access to a directory tree that a container or an image controls. Every
//!   lookup goes through `openat2(RESOLVE_IN_ROOT)` on a descriptor of the root, so no symbolic
//!   link (absolute, `../..`, or swapped in while we work) can reach a host path.
//!   [`root::Root::read_regular`] reads a file that a container controls (its `/etc/passwd`,
//!   say) as hostile input: never a FIFO, device or socket, never more than a cap.
//! - [`copy`]: a tree copied by descriptors, never following a link (Docker's volume copy-up).
//! - [`fs`]: atomic file replacement, each caller stating the [`fs::Durability`] it needs.
//! - [`at`]: single-name calls relative to a directory descriptor (`openat`, `readlinkat`,
//!   `mkdirat`, `symlinkat`, `linkat`, `mknodat`, `unlinkat`, owner, mode and times) that never
//!   follow a final link, and metadata changes on a pinned (`O_PATH`) descriptor.
//! - [`file`]: write-back, inode flags and extended attributes of one file.
//! - [`activation`]: the listening sockets systemd passes (`LISTEN_FDS`, socket activation).
//! - [`netns`]: bringing up the loopback interface in another process's network namespace.
//! - [`mountinfo`]: mount points and the cgroup layout from `/proc/<pid>/mountinfo`.
//! - [`caps`]: the capability table.
//! - [`tty`]: whether a descriptor is a terminal, and its size.
//! - [`detach`]: Docker's detach-key syntax and the scanner that finds the sequence in input.
//! - [`units`]: sizes (`64m`, `1.5GB`) and durations (`1m30s`) in each syntax berth accepts.
//! - [`ids`], [`names`], [`time`]: short IDs, the name rule and RFC 3339 timestamps as Docker
//!   has them.
//!
//! `unsafe` in berth lives in syscall modules; this crate is one of them, and each block says
//! why it is sound.

pub mod activation;
pub mod at;
pub mod caps;
pub mod copy;
pub mod detach;
pub mod file;
pub mod fs;
pub mod ids;
pub mod mountinfo;
pub mod names;
pub mod netns;
pub mod root;
pub mod time;
pub mod tty;
pub mod units;

pub use fs::{write_atomic, Durability};
pub use root::{ReadError, Root};
