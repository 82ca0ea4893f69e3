//! berth-runtime re-executes itself from a sealed memfd copy of its binary before it starts
//! container processes (CVE-2019-5736), which costs a copy of the binary at every container
//! start and exec. The daemon makes that copy once, at start-up, and has shims run the runtime
//! from it (`/proc/<daemon pid>/fd/<n>`, which a shim opens and keeps): the runtime finds it
//! already runs sealed and skips its own copy. A runtime binary replaced on disk is picked up
//! when the daemon restarts.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use berth_engine::EngineConfig;

/// Makes sealed copies of berth's own runtime and records them in
/// `EngineConfig::shim_runtime_paths`. The returned descriptors must stay open while shims may
/// be started. A copy that cannot be made is logged and skipped: the runtime then copies itself.
pub fn seal_own_runtime(cfg: &mut EngineConfig) -> Vec<OwnedFd> {
    let own: Vec<PathBuf> = cfg
        .runtimes
        .values()
        .filter(|p| p.file_name().is_some_and(|n| n == "berth-runtime") && p.is_absolute())
        .cloned()
        .collect();
    let mut held = Vec::new();
    for path in own {
        match berth_runtime::sealed_exe::sealed_copy_of(&path) {
            Ok(fd) => {
                let via = PathBuf::from(format!(
                    "/proc/{}/fd/{}",
                    std::process::id(),
                    fd.as_raw_fd()
                ));
                tracing::debug!(
                    "shims run {} from its sealed copy {}",
                    path.display(),
                    via.display()
                );
                cfg.shim_runtime_paths.insert(path, via);
                held.push(fd);
            }
            Err(e) => tracing::warn!("no sealed copy of {}: {e}", path.display()),
        }
    }
    held
}
