//! Docker's default security policy as data: capabilities, masked and read-only paths, and the
//! device cgroup rules every container starts with.

/// The capabilities Docker grants by default (CapEff 00000000a80425fb).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows, in number order (CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40).
pub const ALL_CAPS: &[&str] = berth_sys::caps::NAMES;

/// Paths Docker hides from containers (a /dev/null bind for files, an empty read-only tmpfs for dirs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only in containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default device cgroup rules after "deny all": (type, major, minor, access); -1 = any.
pub const DEFAULT_DEVICE_RULES: &[(&str, i64, i64, &str)] = &[
    ("c", -1, -1, "m"),
    ("b", -1, -1, "m"),
    ("c", 1, 3, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 5, 1, "rwm"),
    ("c", 5, 2, "rwm"),
    ("c", 136, -1, "rwm"),
    ("c", 10, 200, "rwm"),
];

/// Normalises a capability name: `net_admin` / `NET_ADMIN` / `CAP_NET_ADMIN` → `CAP_NET_ADMIN`.
pub fn normalize_cap(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set from Docker's defaults (or all, when privileged) with `--cap-add` and
/// `--cap-drop` applied (`ALL` allowed in both). Unknown names are an error.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>, String> {
    let add: Vec<String> = add.iter().map(|c| normalize_cap(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| normalize_cap(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(format!("invalid capability: {c}"));
        }
    }
    if privileged {
        return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect());
    }
    let mut set: Vec<String> = if add.iter().any(|c| c == "ALL") {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        set.clear();
    } else {
        set.retain(|c| !drop.contains(c));
    }
    for c in add.iter().filter(|c| *c != "ALL") {
        if !set.contains(c) {
            set.push(c.clone());
        }
    }
    Ok(set)
}

/// The capabilities whose bit is set in `bounding` (a `CapBnd` mask).
pub fn within_bounding(caps: Vec<String>, bounding: u64) -> Vec<String> {
    caps.into_iter()
        .filter(|c| {
            ALL_CAPS
                .iter()
                .position(|a| a == c)
                .is_some_and(|bit| bounding & (1u64 << bit) != 0)
        })
        .collect()
}

/// This process's capability bounding set (`CapBnd` in /proc/self/status); all bits if unreadable.
pub fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("CapBnd:")
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
        })
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(caps: &[String]) -> u64 {
        caps.iter()
            .map(|c| 1u64 << ALL_CAPS.iter().position(|a| a == c).unwrap())
            .sum()
    }

    #[test]
    fn default_set_matches_dockers_mask() {
        assert_eq!(mask(&capabilities(false, &[], &[]).unwrap()), 0xa80425fb);
    }

    #[test]
    fn add_drop_and_all() {
        let c = capabilities(false, &["net_admin".into()], &["CAP_CHOWN".into()]).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(capabilities(false, &[], &["ALL".into()])
            .unwrap()
            .is_empty());
        assert_eq!(capabilities(false, &[], &["all".into()]).unwrap().len(), 0);
        assert_eq!(
            capabilities(false, &["ALL".into()], &[]).unwrap().len(),
            ALL_CAPS.len()
        );
        assert_eq!(
            mask(&capabilities(true, &[], &[]).unwrap()),
            0x1ff_ffff_ffff
        );
        assert!(capabilities(false, &["CAP_BOGUS".into()], &[]).is_err());
        let all = capabilities(true, &[], &[]).unwrap();
        assert_eq!(
            mask(&within_bounding(all, 0x1ff_feff_ffff)),
            0x1ff_feff_ffff
        );
    }
}
