//! Writing `linux.resources` into a container's cgroup files: the v1 controllers (each in its
//! own hierarchy directory) or the single v2 directory.
//!
//! The project rule holds here: a setting berth cannot apply is an error that names it, never
//! a silent skip. A v1 controller that is not mounted, a v2 interface file that does not exist
//! (controller not enabled for the subtree, or not built into the kernel), a kernel that
//! accepts a write and keeps the old value (kernel memory limits on kernels ≥ 6.1): each fails
//! the create with the setting's path in the spec (`linux.resources.hugepageLimits`, …).
//!
//! Where runc differs, the module says so next to the setting (runc ignores `memory.kernel` and
//! `memory.kernelTCP` with a warning; berth applies what the kernel enforces and refuses the
//! rest).

use crate::{Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxMemory, LinuxResources, LinuxThrottleDevice};
use std::path::{Path, PathBuf};

/// `(controllers, directory)` for each hierarchy, as [`crate::cgroups::Manager`] holds them.
pub type Dirs = [(Vec<String>, PathBuf)];

/// Writes `val` to `dir/file` (the error names the file and the value).
pub fn write(dir: &Path, file: &str, val: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, val)
        .map_err(|e| Error::Cgroup(format!("write {:?} to {}: {e}", val, p.display())))
}

/// The trimmed contents of a cgroup file ("" when it can't be read).
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Writes a setting's file, which must already exist (cgroupfs makes every interface file
/// itself): a missing one, or a failed write, is an error naming `setting`.
fn set(dir: &Path, file: &str, val: &str, setting: &str) -> Result<()> {
    let p = dir.join(file);
    if !p.exists() {
        return Err(Error::Cgroup(format!(
            "{setting}: {} does not exist (controller not available or not enabled here)",
            p.display()
        )));
    }
    std::fs::write(&p, val)
        .map_err(|e| Error::Cgroup(format!("{setting}: write {val:?} to {}: {e}", p.display())))
}

/// runc's conversion of cpu shares (v1) to cpu.weight (v2).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.saturating_sub(2)) * 9999) / 262142
}

/// blkio weight (10..1000) to io.weight (1..10000), as runc does.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

fn dir_of<'a>(dirs: &'a Dirs, ctrl: &str) -> Option<&'a Path> {
    dirs.iter()
        .find(|(c, _)| c.iter().any(|x| x == ctrl))
        .map(|(_, d)| d.as_path())
}

/// The directory of a v1 controller, or an error naming the setting that needs it.
fn need<'a>(dirs: &'a Dirs, ctrl: &str, setting: &str) -> Result<&'a Path> {
    dir_of(dirs, ctrl).ok_or_else(|| {
        Error::Cgroup(format!(
            "{setting}: the {ctrl} controller is not mounted on this host"
        ))
    })
}

/// A hugepage size as the spec writes it ("2MB", "1GB"): part of a file name, so no `/`.
fn page_size(ps: &str) -> Result<&str> {
    if ps.is_empty() || ps.contains('/') || ps.starts_with('.') {
        return Err(Error::invalid(format!(
            "linux.resources.hugepageLimits: bad pageSize {ps:?}"
        )));
    }
    Ok(ps)
}

/// The `rdma.max` line of one device (same format on v1 and v2).
fn rdma_line(dev: &str, l: &oci_spec::runtime::LinuxRdma) -> Option<String> {
    let mut parts = vec![dev.to_string()];
    if let Some(h) = l.hca_handles() {
        parts.push(format!("hca_handle={h}"));
    }
    if let Some(o) = l.hca_objects() {
        parts.push(format!("hca_object={o}"));
    }
    (parts.len() > 1).then(|| parts.join(" "))
}

fn throttles(
    b: &LinuxBlockIo,
) -> [(
    &'static str,
    &'static str,
    &Option<Vec<LinuxThrottleDevice>>,
); 4] {
    [
        (
            "throttleReadBpsDevice",
            "read_bps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "write_bps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "read_iops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "write_iops",
            b.throttle_write_iops_device(),
        ),
    ]
}

/// Writes the resources into the v1 hierarchies (used by create and `update`).
pub fn apply_v1(dirs: &Dirs, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory_v1(need(dirs, "memory", "linux.resources.memory")?, m)?;
    }
    if let Some(c) = r.cpu() {
        let cpu = || need(dirs, "cpu", "linux.resources.cpu");
        if let Some(s) = c.shares() {
            write(cpu()?, "cpu.shares", &s.to_string())?;
        }
        if let Some(p) = c.period() {
            write(cpu()?, "cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(q) = c.quota() {
            write(cpu()?, "cpu.cfs_quota_us", &q.to_string())?;
        }
        // Realtime scheduling budgets exist only where the kernel has CONFIG_RT_GROUP_SCHED.
        if let Some(p) = c.realtime_period() {
            let s = "linux.resources.cpu.realtimePeriod";
            set(need(dirs, "cpu", s)?, "cpu.rt_period_us", &p.to_string(), s)?;
        }
        if let Some(r) = c.realtime_runtime() {
            let s = "linux.resources.cpu.realtimeRuntime";
            set(
                need(dirs, "cpu", s)?,
                "cpu.rt_runtime_us",
                &r.to_string(),
                s,
            )?;
        }
        let cpuset = || need(dirs, "cpuset", "linux.resources.cpu");
        if let Some(s) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            write(cpuset()?, "cpuset.cpus", s)?;
        }
        if let Some(s) = c.mems().as_ref().filter(|s| !s.is_empty()) {
            write(cpuset()?, "cpuset.mems", s)?;
        }
    }
    if let Some(p) = r.pids() {
        let l = p.limit();
        let v = if l <= 0 { "max".into() } else { l.to_string() };
        write(need(dirs, "pids", "linux.resources.pids")?, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        blkio_v1(dirs, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let s = "linux.resources.hugepageLimits";
        let d = need(dirs, "hugetlb", s)?;
        let ps = page_size(h.page_size())?;
        set(
            d,
            &format!("hugetlb.{ps}.limit_in_bytes"),
            &h.limit().to_string(),
            s,
        )?;
        let rsvd = format!("hugetlb.{ps}.rsvd.limit_in_bytes");
        if d.join(&rsvd).exists() {
            set(d, &rsvd, &h.limit().to_string(), s)?;
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            let s = "linux.resources.network.classID";
            set(
                need(dirs, "net_cls", s)?,
                "net_cls.classid",
                &id.to_string(),
                s,
            )?;
        }
        for p in n.priorities().iter().flatten() {
            let s = "linux.resources.network.priorities";
            let line = format!("{} {}", p.name(), p.priority());
            set(need(dirs, "net_prio", s)?, "net_prio.ifpriomap", &line, s)?;
        }
    }
    for (dev, l) in r.rdma().iter().flatten() {
        let s = format!("linux.resources.rdma[{dev:?}]");
        if let Some(line) = rdma_line(dev, l) {
            set(need(dirs, "rdma", &s)?, "rdma.max", &line, &s)?;
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        // runc: "invalid configuration: cannot use unified on cgroup v1" (hybrid included)
        return Err(Error::Cgroup(
            "linux.resources.unified: cgroup v2 settings cannot be used on a cgroup v1 host".into(),
        ));
    }
    if let Some(devs) = r.devices() {
        if let Some(d) = dir_of(dirs, "devices") {
            write(d, "devices.deny", "a")?;
            for rule in devs
                .iter()
                .chain(crate::devicefilter::allowed_devices().iter())
            {
                let t = rule
                    .typ()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or("a".into());
                let maj = rule.major().map(|m| m.to_string()).unwrap_or("*".into());
                let min = rule.minor().map(|m| m.to_string()).unwrap_or("*".into());
                let acc = rule.access().clone().unwrap_or_else(|| "rwm".into());
                let line = if t == "a" {
                    "a".to_string()
                } else {
                    format!("{t} {maj}:{min} {acc}")
                };
                let f = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(d, f, &line)?;
            }
        }
    }
    Ok(())
}

fn memory_v1(d: &Path, m: &LinuxMemory) -> Result<()> {
    if let Some(l) = m.limit() {
        write(d, "memory.limit_in_bytes", &l.to_string())?;
    }
    if let Some(l) = m.reservation() {
        write(d, "memory.soft_limit_in_bytes", &l.to_string())?;
    }
    if let Some(s) = m.swap() {
        if d.join("memory.memsw.limit_in_bytes").exists() {
            write(d, "memory.memsw.limit_in_bytes", &s.to_string())?;
        } else if s != -1 && Some(s) != m.limit() {
            return Err(Error::Cgroup(
                "linux.resources.memory.swap: swap accounting is not enabled on this host".into(),
            ));
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::invalid(format!(
                "linux.resources.memory.swappiness: {s} is not in 0..100"
            )));
        }
        write(d, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(d, "memory.oom_control", "1")?;
    }
    if let Some(u) = m.use_hierarchy() {
        let s = "linux.resources.memory.useHierarchy";
        set(d, "memory.use_hierarchy", if u { "1" } else { "0" }, s)?;
    }
    if let Some(k) = m.kernel() {
        // runc ignores it ("Kernel memory settings are ignored"); berth applies it, and
        // refuses it where the kernel keeps the file but no longer enforces it (≥ 6.1: the
        // write succeeds and the limit stays unlimited).
        let s = "linux.resources.memory.kernel";
        let f = "memory.kmem.limit_in_bytes";
        set(d, f, &k.to_string(), s)?;
        if k >= 0 {
            let want = (k as u64) & !4095;
            if read(&d.join(f)).parse::<u64>().ok() != Some(want) {
                return Err(Error::Cgroup(format!(
                    "{s}: this kernel does not enforce kernel memory limits ({f} kept its value)"
                )));
            }
        }
    }
    if let Some(k) = m.kernel_tcp() {
        // runc ignores it with a warning; the v1 memory controller still enforces it.
        let s = "linux.resources.memory.kernelTCP";
        set(d, "memory.kmem.tcp.limit_in_bytes", &k.to_string(), s)?;
    }
    Ok(())
}

fn blkio_v1(dirs: &Dirs, b: &LinuxBlockIo) -> Result<()> {
    let blkio = |s: &str| need(dirs, "blkio", s).map(Path::to_path_buf);
    if let Some(w) = b.weight().filter(|w| *w > 0) {
        let s = "linux.resources.blockIO.weight";
        let d = blkio(s)?;
        let f = match d.join("blkio.weight").exists() {
            true => "blkio.weight",
            false => "blkio.bfq.weight",
        };
        set(&d, f, &w.to_string(), s)?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w > 0) {
        let s = "linux.resources.blockIO.leafWeight";
        set(&blkio(s)?, "blkio.leaf_weight", &w.to_string(), s)?;
    }
    for wd in b.weight_device().iter().flatten() {
        let s = "linux.resources.blockIO.weightDevice";
        let d = blkio(s)?;
        if let Some(w) = wd.weight() {
            let f = ["blkio.weight_device", "blkio.bfq.weight_device"]
                .into_iter()
                .find(|f| d.join(f).exists())
                .ok_or_else(|| {
                    Error::Cgroup(format!(
                        "{s}: neither blkio.weight_device nor blkio.bfq.weight_device exists \
                         (no CFQ or BFQ I/O scheduler)"
                    ))
                })?;
            set(&d, f, &format!("{}:{} {w}", wd.major(), wd.minor()), s)?;
        }
        if let Some(w) = wd.leaf_weight() {
            let line = format!("{}:{} {w}", wd.major(), wd.minor());
            set(&d, "blkio.leaf_weight_device", &line, s)?;
        }
    }
    for (name, file, list) in throttles(b) {
        let s = format!("linux.resources.blockIO.{name}");
        for t in list.iter().flatten() {
            let line = format!("{}:{} {}", t.major(), t.minor(), t.rate());
            set(
                &blkio(&s)?,
                &format!("blkio.throttle.{file}_device"),
                &line,
                &s,
            )?;
        }
    }
    Ok(())
}

/// Writes the resources into the v2 directory `d` (used by create and `update`).
pub fn apply_v2(d: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit() {
            let v = if l < 0 { "max".into() } else { l.to_string() };
            write(d, "memory.max", &v)?;
        }
        if let Some(l) = m.reservation() {
            write(d, "memory.low", &l.to_string())?;
        }
        if let Some(s) = m.swap() {
            let v = match (s, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            write(d, "memory.swap.max", &v)?;
        }
        // v1-only knobs: v2 has no per-cgroup swappiness, no way to turn the OOM killer off
        // and no flat hierarchy.
        if m.swappiness().is_some() {
            return Err(Error::Cgroup(
                "linux.resources.memory.swappiness: cgroup v2 has no memory swappiness".into(),
            ));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(Error::Cgroup(
                "linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer"
                    .into(),
            ));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(Error::Cgroup(
                "linux.resources.memory.useHierarchy: cgroup v2 is always hierarchical".into(),
            ));
        }
        // runc ignores both with a warning; v2 has no separate kernel memory limit at all.
        for (set_, v) in [("kernel", m.kernel()), ("kernelTCP", m.kernel_tcp())] {
            if v.is_some() {
                return Err(Error::Cgroup(format!(
                    "linux.resources.memory.{set_}: cgroup v2 has no kernel memory limit \
                     (kernel memory is part of memory.max)"
                )));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
            return Err(Error::Cgroup(
                "linux.resources.cpu.realtimePeriod/realtimeRuntime: cgroup v2 has no realtime \
                 scheduling budgets"
                    .into(),
            ));
        }
        if let Some(s) = c.shares() {
            write(d, "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if c.quota().is_some() || c.period().is_some() {
            let q = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            let p = c.period().unwrap_or(100_000);
            write(d, "cpu.max", &format!("{q} {p}"))?;
        }
        if let Some(s) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            write(d, "cpuset.cpus", s)?;
        }
        if let Some(s) = c.mems().as_ref().filter(|s| !s.is_empty()) {
            write(d, "cpuset.mems", s)?;
        }
    }
    if let Some(p) = r.pids() {
        let l = p.limit();
        let v = if l <= 0 { "max".into() } else { l.to_string() };
        write(d, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        io_v2(d, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let s = "linux.resources.hugepageLimits";
        let ps = page_size(h.page_size())?;
        set(d, &format!("hugetlb.{ps}.max"), &h.limit().to_string(), s)?;
        let rsvd = format!("hugetlb.{ps}.rsvd.max");
        if d.join(&rsvd).exists() {
            set(d, &rsvd, &h.limit().to_string(), s)?;
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::Cgroup(
                "linux.resources.network: cgroup v2 has no net_cls/net_prio controllers".into(),
            ));
        }
    }
    for (dev, l) in r.rdma().iter().flatten() {
        if let Some(line) = rdma_line(dev, l) {
            set(
                d,
                "rdma.max",
                &line,
                &format!("linux.resources.rdma[{dev:?}]"),
            )?;
        }
    }
    if let Some(devs) = r.devices() {
        // no devices controller on v2: the same rules, with the defaults after them, as
        // an eBPF program (default deny, the last matching rule decides)
        let rules: Vec<_> = devs
            .iter()
            .cloned()
            .chain(crate::devicefilter::allowed_devices())
            .collect();
        crate::cgroup_devices::apply(d, &rules)?;
    }
    if let Some(u) = r.unified() {
        // last, so that a raw key overrides the typed setting that wrote the same file
        let mut keys: Vec<_> = u.keys().collect();
        keys.sort();
        for k in keys {
            let s = format!("linux.resources.unified[{k:?}]");
            if k.is_empty() || k.contains('/') || k.starts_with('.') {
                return Err(Error::invalid(format!("{s}: not a cgroup file name")));
            }
            set(d, k, &u[k], &s)?;
        }
    }
    Ok(())
}

fn io_v2(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight().filter(|w| *w > 0) {
        write(d, "io.weight", &blkio_to_io_weight(w).to_string())?;
    }
    if b.leaf_weight().is_some_and(|w| w > 0) {
        return Err(Error::Cgroup(
            "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight".into(),
        ));
    }
    for wd in b.weight_device().iter().flatten() {
        let s = "linux.resources.blockIO.weightDevice";
        if wd.leaf_weight().is_some() {
            return Err(Error::Cgroup(format!(
                "{s}: leafWeight: cgroup v2 has no leaf weight"
            )));
        }
        if let Some(w) = wd.weight() {
            let dev = format!("{}:{}", wd.major(), wd.minor());
            if d.join("io.bfq.weight").exists() {
                set(d, "io.bfq.weight", &format!("{dev} {w}"), s)?;
            } else {
                let line = format!("{dev} {}", blkio_to_io_weight(w));
                set(d, "io.weight", &line, s)?;
            }
        }
    }
    for (name, key, list) in throttles(b) {
        let key = match key {
            "read_bps" => "rbps",
            "write_bps" => "wbps",
            "read_iops" => "riops",
            _ => "wiops",
        };
        let s = format!("linux.resources.blockIO.{name}");
        for t in list.iter().flatten() {
            let line = format!("{}:{} {key}={}", t.major(), t.minor(), t.rate());
            set(d, "io.max", &line, &s)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: serde_json::Value) -> LinuxResources {
        let mut v = json;
        crate::spec::normalize_resources(&mut v);
        serde_json::from_value(v).unwrap()
    }

    /// v1 hierarchies in a tempdir, one per controller listed.
    fn v1_tree(t: &Path, ctrls: &[&str]) -> Vec<(Vec<String>, PathBuf)> {
        ctrls
            .iter()
            .map(|c| {
                std::fs::create_dir_all(t.join(c)).unwrap();
                (vec![c.to_string()], t.join(c))
            })
            .collect()
    }

    fn err(r: Result<()>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn v1_settings_without_their_controller_are_errors_naming_them() {
        let t = tempfile::tempdir().unwrap();
        let dirs = v1_tree(t.path(), &["memory", "blkio"]);
        for (json, name) in [
            (
                serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}),
                "linux.resources.hugepageLimits: the hugetlb controller is not mounted",
            ),
            (
                serde_json::json!({"network": {"classID": 7}}),
                "linux.resources.network.classID: the net_cls controller",
            ),
            (
                serde_json::json!({"network": {"priorities": [{"name": "lo", "priority": 1}]}}),
                "linux.resources.network.priorities: the net_prio controller",
            ),
            (
                serde_json::json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}),
                "linux.resources.rdma[\"mlx5_0\"]: the rdma controller",
            ),
            (
                serde_json::json!({"unified": {"memory.high": "1"}}),
                "linux.resources.unified: cgroup v2 settings cannot be used on a cgroup v1",
            ),
            (
                serde_json::json!({"cpu": {"realtimeRuntime": 950000}}),
                "linux.resources.cpu.realtimeRuntime: the cpu controller",
            ),
            (
                serde_json::json!({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}}),
                "linux.resources.blockIO.weightDevice: neither blkio.weight_device",
            ),
            (
                serde_json::json!({"blockIO": {"throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]}}),
                "linux.resources.blockIO.throttleReadIOPSDevice: ",
            ),
            (
                serde_json::json!({"memory": {"kernelTCP": 4096}}),
                "linux.resources.memory.kernelTCP: ",
            ),
            (
                serde_json::json!({"blockIO": {"weight": 500}}),
                "linux.resources.blockIO.weight: ",
            ),
        ] {
            let e = err(apply_v1(&dirs, &res(json)));
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn v1_settings_are_written_where_the_files_are() {
        let t = tempfile::tempdir().unwrap();
        let dirs = v1_tree(
            t.path(),
            &["hugetlb", "net_cls", "net_prio", "blkio", "memory"],
        );
        let files = [
            "hugetlb/hugetlb.2MB.limit_in_bytes",
            "net_cls/net_cls.classid",
            "net_prio/net_prio.ifpriomap",
            "blkio/blkio.weight_device",
            "blkio/blkio.throttle.write_iops_device",
            "memory/memory.kmem.tcp.limit_in_bytes",
        ];
        for f in files {
            std::fs::write(t.path().join(f), "").unwrap();
        }
        apply_v1(
            &dirs,
            &res(serde_json::json!({
                "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                "network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 5}]},
                "blockIO": {
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]
                },
                "memory": {"kernelTCP": 65536}
            })),
        )
        .unwrap();
        let got: Vec<String> = files.iter().map(|f| read(&t.path().join(f))).collect();
        assert_eq!(
            got,
            ["4194304", "1048577", "lo 5", "8:0 500", "8:0 200", "65536"]
        );
    }

    #[test]
    fn v2_settings_write_their_files_or_name_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for f in ["hugetlb.2MB.max", "io.max", "rdma.max", "memory.high"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        apply_v2(
            d,
            &res(serde_json::json!({
                "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}]},
                "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}},
                "unified": {"memory.high": "1000000"}
            })),
        )
        .unwrap();
        assert_eq!(read(&d.join("hugetlb.2MB.max")), "4194304");
        assert_eq!(read(&d.join("io.max")), "8:0 rbps=1024");
        assert_eq!(
            read(&d.join("rdma.max")),
            "mlx5_0 hca_handle=3 hca_object=100"
        );
        assert_eq!(read(&d.join("memory.high")), "1000000");
        for (json, name) in [
            (
                serde_json::json!({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}),
                "linux.resources.hugepageLimits: ",
            ),
            (
                serde_json::json!({"unified": {"pids.max": "3"}}),
                "linux.resources.unified[\"pids.max\"]: ",
            ),
            (
                serde_json::json!({"unified": {"../x": "3"}}),
                "linux.resources.unified[\"../x\"]: not a cgroup file name",
            ),
            (
                serde_json::json!({"network": {"classID": 7}}),
                "linux.resources.network: cgroup v2 has no net_cls",
            ),
            (
                serde_json::json!({"memory": {"kernel": 4096}}),
                "linux.resources.memory.kernel: cgroup v2 has no kernel memory limit",
            ),
            (
                serde_json::json!({"memory": {"kernelTCP": 4096}}),
                "linux.resources.memory.kernelTCP: ",
            ),
            (
                serde_json::json!({"blockIO": {"leafWeight": 10}}),
                "linux.resources.blockIO.leafWeight: ",
            ),
            (
                serde_json::json!({"memory": {"swappiness": 10}}),
                "linux.resources.memory.swappiness: cgroup v2 has no memory swappiness",
            ),
            (
                serde_json::json!({"memory": {"disableOOMKiller": true}}),
                "linux.resources.memory.disableOOMKiller: ",
            ),
            (
                serde_json::json!({"memory": {"useHierarchy": false}}),
                "linux.resources.memory.useHierarchy: ",
            ),
            (
                serde_json::json!({"cpu": {"realtimeRuntime": 1000}}),
                "linux.resources.cpu.realtimePeriod/realtimeRuntime: ",
            ),
        ] {
            let e = err(apply_v2(d, &res(json)));
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn kernel_memory_that_the_kernel_does_not_keep_is_refused() {
        // the check is a read-back: a kernel >= 6.1 takes the write and keeps "unlimited";
        // here a plain file keeps 65537 where the kernel would keep 65536 (whole pages)
        let t = tempfile::tempdir().unwrap();
        let dirs = v1_tree(t.path(), &["memory"]);
        std::fs::write(t.path().join("memory/memory.kmem.limit_in_bytes"), "").unwrap();
        apply_v1(
            &dirs,
            &res(serde_json::json!({"memory": {"kernel": 65536}})),
        )
        .unwrap();
        let e = err(apply_v1(
            &dirs,
            &res(serde_json::json!({"memory": {"kernel": 65537}})),
        ));
        assert!(
            e.contains("linux.resources.memory.kernel: this kernel does not enforce"),
            "{e}"
        );
    }
}
