//! berth's low-level primitives, shared by the engine, the image store and the builder so that
//! each exists once, with one meaning:
//!
//! - [`root`]: confined access to a directory tree that a container or an image controls. Every
//!   lookup goes through `openat2(RESOLVE_IN_ROOT)` on a descriptor of the root, so no symbolic
//!   link (absolute, `../..`, or swapped in while we work) can reach a host path.
//! - [`root::Root::read_regular`]: reading a file that a container controls (its `/etc/passwd`,
//!   say) as hostile input: never a FIFO, device or socket, never more than a cap.
//!
//! `unsafe` in berth lives in syscall modules; this crate is one of them, and each block says
//! why it is sound.

pub mod root;

pub use root::{ReadError, Root};
