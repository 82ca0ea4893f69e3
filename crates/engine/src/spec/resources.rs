//! Resources: sizes, cgroup limits (`linux.resources`), the device cgroup rules and device
//! nodes, and rlimits.

use berth_api::HostConfig;
use oci_spec::runtime::{
    LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxMemoryBuilder,
    LinuxPids, LinuxResources, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

use super::SpecInput;
use crate::defaults::DEFAULT_DEVICE_RULES;

/// Parses a size with binary units: `64m`, `1g`, `512k`, `100b`, `1024`
/// ([`berth_sys::units::binary_size`]).
pub use berth_sys::units::binary_size as parse_size;

/// `nofile` → `RLIMIT_NOFILE`; an unknown name is an error.
fn rlimit_name(name: &str) -> Result<String, String> {
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if NAMES.contains(&name) {
        Ok(format!("RLIMIT_{}", name.to_ascii_uppercase()))
    } else {
        Err(format!("invalid ulimit type: {name}"))
    }
}

/// The process's rlimits: the daemon's defaults, then the container's (a later one of the same
/// type replaces an earlier one), clamped to what the host allows.
pub(super) fn rlimits(inp: &SpecInput<'_>) -> Result<Vec<PosixRlimit>, String> {
    let mut rlimits: Vec<(String, u64, u64)> = Vec::new();
    for u in inp.default_ulimits.iter().chain(inp.host.ulimits.iter()) {
        let t = rlimit_name(&u.name)?;
        if u.soft > u.hard && u.hard >= 0 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            ));
        }
        let to_u = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        let (mut soft, mut hard) = (to_u(u.soft), to_u(u.hard));
        if let Some(max) = (inp.rlimit_hard)(&t) {
            hard = hard.min(max);
            soft = soft.min(hard);
        }
        rlimits.retain(|r| r.0 != t);
        rlimits.push((t, soft, hard));
    }
    rlimits
        .into_iter()
        .map(|(t, soft, hard)| {
            let typ: PosixRlimitType =
                t.parse().map_err(|_| format!("invalid ulimit type: {t}"))?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// A device cgroup rule.
fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

fn device_type(t: &str) -> LinuxDeviceType {
    match t {
        "b" => LinuxDeviceType::B,
        "u" => LinuxDeviceType::U,
        "p" => LinuxDeviceType::P,
        "a" => LinuxDeviceType::A,
        _ => LinuxDeviceType::C,
    }
}

/// The device cgroup rules (deny all, then Docker's defaults and `--device`s; allow all when
/// privileged) and the device nodes `--device` makes in the container.
pub(super) fn devices(
    h: &HostConfig,
) -> Result<(Vec<LinuxDeviceCgroup>, Vec<LinuxDevice>), String> {
    let mut rules = vec![rule(false, None, None, None, "rwm")];
    for (t, maj, min, acc) in DEFAULT_DEVICE_RULES {
        let (maj, min) = ((*maj >= 0).then_some(*maj), (*min >= 0).then_some(*min));
        rules.push(rule(true, Some(device_type(t)), maj, min, acc));
    }
    if h.privileged {
        rules = vec![rule(true, None, None, None, "rwm")];
    }
    let mut nodes = Vec::new();
    for d in &h.devices {
        let meta = std::fs::metadata(&d.path_on_host).map_err(|e| {
            format!(
                "error gathering device information while adding custom device \"{}\": {e}",
                d.path_on_host
            )
        })?;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let kind = if meta.file_type().is_char_device() {
            LinuxDeviceType::C
        } else if meta.file_type().is_block_device() {
            LinuxDeviceType::B
        } else {
            return Err(format!("error gathering device information while adding custom device \"{}\": not a device node", d.path_on_host));
        };
        let rdev = meta.rdev();
        let major = nix::sys::stat::major(rdev) as i64;
        let minor = nix::sys::stat::minor(rdev) as i64;
        let dest = if d.path_in_container.is_empty() {
            d.path_on_host.clone()
        } else {
            d.path_in_container.clone()
        };
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        let mut node = LinuxDevice::default();
        node.set_path(dest.into())
            .set_typ(kind)
            .set_major(major)
            .set_minor(minor)
            .set_file_mode(Some(meta.mode() & 0o7777))
            .set_uid(Some(0))
            .set_gid(Some(0));
        nodes.push(node);
        rules.push(rule(true, Some(kind), Some(major), Some(minor), perms));
    }
    Ok((rules, nodes))
}

/// The memory, CPU and pids limits of a host config as OCI `linux.resources` (`memory`, `cpu`,
/// `pids`; no device rules), with dockerd's checks.
pub fn limits(h: &HostConfig) -> Result<LinuxResources, String> {
    let mut resources = LinuxResources::default();
    let mut memory = LinuxMemoryBuilder::default();
    if h.memory > 0 && h.memory < 6 * 1024 * 1024 {
        return Err("Minimum memory limit allowed is 6MB".into());
    }
    if h.memory > 0 {
        memory = memory.limit(h.memory);
        let swap = match h.memory_swap {
            0 => h.memory * 2,
            -1 => -1,
            s if s < h.memory => {
                return Err(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                )
            }
            s => s,
        };
        memory = memory.swap(swap);
    } else if h.memory_swap > 0 {
        return Err(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if h.memory_reservation > 0 {
        memory = memory.reservation(h.memory_reservation);
    }
    if h.oom_kill_disable == Some(true) {
        memory = memory.disable_oom_killer(true);
    }
    match h.memory_swappiness {
        None | Some(-1) => {}
        Some(s @ 0..=100) => memory = memory.swappiness(s as u64),
        Some(s) => {
            return Err(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            ))
        }
    }
    if h.kernel_memory_tcp > 0 {
        memory = memory.kernel_tcp(h.kernel_memory_tcp);
    }
    let memory = memory.build().map_err(|e| e.to_string())?;
    if memory != LinuxMemory::default() {
        resources.set_memory(Some(memory));
    }
    let mut cpu = LinuxCpu::default();
    if h.nano_cpus > 0 {
        if h.cpu_quota > 0 || h.cpu_period > 0 {
            return Err(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            );
        }
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some(h.nano_cpus / 10_000));
    }
    if h.cpu_quota > 0 {
        cpu.set_quota(Some(h.cpu_quota));
    }
    if h.cpu_period > 0 {
        cpu.set_period(Some(h.cpu_period as u64));
    }
    if h.cpu_shares > 0 {
        cpu.set_shares(Some(h.cpu_shares as u64));
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(h.cpuset_cpus.clone()));
    }
    if !h.cpuset_mems.is_empty() {
        cpu.set_mems(Some(h.cpuset_mems.clone()));
    }
    if h.cpu_realtime_runtime > 0
        && h.cpu_realtime_period > 0
        && h.cpu_realtime_runtime > h.cpu_realtime_period
    {
        return Err("cpu-rt-runtime cannot be higher than cpu-rt-period".into());
    }
    if h.cpu_realtime_period > 0 {
        cpu.set_realtime_period(Some(h.cpu_realtime_period as u64));
    }
    if h.cpu_realtime_runtime > 0 {
        cpu.set_realtime_runtime(Some(h.cpu_realtime_runtime));
    }
    if cpu != LinuxCpu::default() {
        resources.set_cpu(Some(cpu));
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        resources.set_pids(Some(pids));
    }
    Ok(resources)
}
