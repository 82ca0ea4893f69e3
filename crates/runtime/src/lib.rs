//! berth's own OCI runtime.
//!
//! `berth runtime …` (and the standalone `berth-runtime` binary) speaks runc's command line:
//! `create`, `start`, `state`, `kill`, `delete`, `list`, `exec`, `run`, `pause`, `resume`,
//! `features`. Underneath sits a synchronous library:
//!
//! - [`spec`]: loading and validating a bundle's `config.json` (typed by `oci-spec`);
//! - [`container`]: the runtime side of each verb (state dir, cgroups, the clone of the init);
//! - [`init`]: what the container's init does between clone and execve;
//! - [`rootfs`]: mounts, `/dev`, masked/read-only paths; [`jail`]: pivot_root or chroot, and
//!   the root's mount propagation;
//! - [`cgroups`]: v1, v2 and hybrid hierarchies, freezer; [`cgroup_resources`]: writing
//!   `linux.resources` (a setting that cannot be applied is an error naming it);
//! - [`devicefilter`], [`cgroup_devices`]: device rules as a cgroup v2 eBPF program;
//! - [`seccomp`]: the OCI seccomp profile compiled with libseccomp (programs cached);
//! - [`sealed_exe`]: re-execution from a sealed memfd copy of the binary (CVE-2019-5736);
//! - [`caps`]: capability names and the five capability sets;
//! - [`state`]: `state.json` and the container's status;
//! - [`timens`]: time namespaces and `linux.timeOffsets`;
//! - [`sys`]: the only module with `unsafe` (clone, capset, ioctls, prctl, bpf).
#![deny(unsafe_code)]

pub mod caps;
pub mod cgroup_devices;
pub mod cgroup_resources;
pub mod cgroups;
pub mod cli;
pub mod container;
pub mod devicefilter;
pub mod error;
pub mod hooks;
pub mod init;
pub mod jail;
pub mod msg;
pub mod rootfs;
pub mod sealed_exe;
pub mod seccomp;
pub mod spec;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
pub mod timens;

pub use error::{Error, Result};
