//! Reading a container's resource usage from its cgroup, on cgroup v1 (hybrid hosts included:
//! one directory per controller) and pure v2 (one directory), plus the host figures stats needs
//! (`/proc/stat`, `/proc/meminfo`, `/proc/<pid>/net/dev`). Everything reads under paths given
//! to it, so tests use fake trees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a container's cgroup lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDirs {
    /// Controller name → directory.
    V1(BTreeMap<String, PathBuf>),
    V2(PathBuf),
}

const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "pids", "blkio"];

/// Finds the directories of cgroup `rel` (e.g. `/berth/<id>`) from mountinfo text: v1 when any
/// v1 controller we read is mounted (hybrid), else the v2 mount.
pub fn locate(mountinfo: &str, rel: &str) -> Option<CgroupDirs> {
    let rel = rel.trim_start_matches('/');
    let mounts = berth_sys::mountinfo::cgroup_mounts(mountinfo);
    let mut v1 = BTreeMap::new();
    for (mount, options) in &mounts.v1 {
        for o in options {
            if V1_CONTROLLERS.contains(&o.as_str()) {
                v1.insert(o.clone(), mount.join(rel));
            }
        }
    }
    if !v1.is_empty() {
        Some(CgroupDirs::V1(v1))
    } else {
        mounts.v2.map(|m| CgroupDirs::V2(m.join(rel)))
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn read_u64(p: &Path) -> Option<u64> {
    read(p).trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat).
pub fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// One block I/O figure, as dockerd's `BlkioStatEntry`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// What one read of the cgroup gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupSample {
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_kernel_ns: u64,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
    pub mem_usage: u64,
    /// `None`: no limit.
    pub mem_limit: Option<u64>,
    pub mem_stats: BTreeMap<String, u64>,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    pub io_bytes: Vec<BlkioEntry>,
}

/// USER_HZ of cpuacct.stat.
const CLOCK_TICKS: u64 = 100;

impl CgroupDirs {
    fn v1(&self, ctrl: &str) -> Option<&Path> {
        match self {
            CgroupDirs::V1(m) => m.get(ctrl).map(PathBuf::as_path),
            CgroupDirs::V2(d) => Some(d),
        }
    }

    /// Whether the cgroup exists.
    pub fn exists(&self) -> bool {
        match self {
            CgroupDirs::V1(m) => m.values().any(|d| d.is_dir()),
            CgroupDirs::V2(d) => d.is_dir(),
        }
    }

    /// The pids in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let dirs: Vec<&Path> = match self {
            CgroupDirs::V1(m) => ["pids", "memory", "cpu", "cpuacct"]
                .iter()
                .filter_map(|c| m.get(*c).map(PathBuf::as_path))
                .collect(),
            CgroupDirs::V2(d) => vec![d.as_path()],
        };
        for d in dirs {
            let s = read(&d.join("cgroup.procs"));
            if !s.trim().is_empty() {
                return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
            }
        }
        Vec::new()
    }

    pub fn sample(&self) -> CgroupSample {
        match self {
            CgroupDirs::V1(_) => self.sample_v1(),
            CgroupDirs::V2(d) => sample_v2(d),
        }
    }

    fn sample_v1(&self) -> CgroupSample {
        let mut s = CgroupSample::default();
        if let Some(d) = self.v1("cpuacct") {
            s.cpu_total_ns = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
            let st = key_values(&read(&d.join("cpuacct.stat")));
            let ns = |t: u64| t * (1_000_000_000 / CLOCK_TICKS);
            s.cpu_user_ns = ns(st.get("user").copied().unwrap_or(0));
            s.cpu_kernel_ns = ns(st.get("system").copied().unwrap_or(0));
        }
        if let Some(d) = self.v1("cpu") {
            let st = key_values(&read(&d.join("cpu.stat")));
            s.periods = st.get("nr_periods").copied().unwrap_or(0);
            s.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
            s.throttled_ns = st.get("throttled_time").copied().unwrap_or(0);
        }
        if let Some(d) = self.v1("memory") {
            s.mem_usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            s.mem_limit = read_u64(&d.join("memory.limit_in_bytes"));
            s.mem_stats = key_values(&read(&d.join("memory.stat")));
        }
        if let Some(d) = self.v1("pids") {
            s.pids_current = read_u64(&d.join("pids.current")).unwrap_or(0);
            s.pids_limit = read_u64(&d.join("pids.max"));
        }
        if let Some(d) = self.v1("blkio") {
            let mut text = read(&d.join("blkio.throttle.io_service_bytes_recursive"));
            if text.trim().is_empty() {
                text = read(&d.join("blkio.throttle.io_service_bytes"));
            }
            for l in text.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() != 3 {
                    continue;
                }
                let Some((ma, mi)) = f[0].split_once(':') else {
                    continue;
                };
                if let (Ok(major), Ok(minor), Ok(value)) = (ma.parse(), mi.parse(), f[2].parse()) {
                    s.io_bytes.push(BlkioEntry {
                        major,
                        minor,
                        op: f[1].to_string(),
                        value,
                    });
                }
            }
        }
        s
    }
}

fn sample_v2(d: &Path) -> CgroupSample {
    let mut s = CgroupSample::default();
    let cpu = key_values(&read(&d.join("cpu.stat")));
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    s.cpu_total_ns = us("usage_usec");
    s.cpu_user_ns = us("user_usec");
    s.cpu_kernel_ns = us("system_usec");
    s.periods = cpu.get("nr_periods").copied().unwrap_or(0);
    s.throttled_periods = cpu.get("nr_throttled").copied().unwrap_or(0);
    s.throttled_ns = us("throttled_usec");
    s.mem_usage = read_u64(&d.join("memory.current")).unwrap_or(0);
    s.mem_limit = read_u64(&d.join("memory.max"));
    s.mem_stats = key_values(&read(&d.join("memory.stat")));
    s.pids_current = read_u64(&d.join("pids.current")).unwrap_or(0);
    s.pids_limit = read_u64(&d.join("pids.max"));
    for l in read(&d.join("io.stat")).lines() {
        let mut f = l.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let op = match k {
                "rbytes" => "read",
                "wbytes" => "write",
                _ => continue,
            };
            if let Ok(value) = v.parse() {
                s.io_bytes.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
    }
    s
}

/// The host's total CPU time in nanoseconds and its online CPUs, from `/proc/stat` text.
pub fn system_cpu(proc_stat: &str) -> (u64, u32) {
    let mut total = 0;
    let mut cpus = 0;
    for l in proc_stat.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("cpu") => {
                total = f.take(8).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>()
                    * (1_000_000_000 / CLOCK_TICKS);
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// `MemTotal` of `/proc/meminfo` text, in bytes.
pub fn mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .unwrap_or(0)
        * 1024
}

/// Interface counters of `/proc/<pid>/net/dev` text (loopback left out), as dockerd's
/// `NetworkStats`.
pub fn net_dev(text: &str) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            serde_json::json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_HYBRID: &str =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    #[test]
    fn locates_hybrid_and_v2() {
        let CgroupDirs::V1(m) = locate(MOUNTINFO_HYBRID, "/berth/abc").unwrap() else {
            panic!("expected v1")
        };
        assert_eq!(
            m["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/berth/abc")
        );
        assert_eq!(m["pids"], PathBuf::from("/sys/fs/cgroup/pids/berth/abc"));
        let v2 = "30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            locate(v2, "/berth/abc"),
            Some(CgroupDirs::V2(PathBuf::from("/sys/fs/cgroup/berth/abc")))
        );
    }

    fn write(d: &Path, f: &str, s: &str) {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join(f), s).unwrap();
    }

    #[test]
    fn v1_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        let dir = |c: &str| t.path().join(c).join("berth/x");
        write(&dir("cpuacct"), "cpuacct.usage", "5000000000\n");
        write(&dir("cpuacct"), "cpuacct.stat", "user 300\nsystem 100\n");
        write(
            &dir("cpu"),
            "cpu.stat",
            "nr_periods 4\nnr_throttled 2\nthrottled_time 77\n",
        );
        write(&dir("memory"), "memory.usage_in_bytes", "1048576\n");
        write(&dir("memory"), "memory.limit_in_bytes", "67108864\n");
        write(
            &dir("memory"),
            "memory.stat",
            "cache 4096\ntotal_inactive_file 4096\n",
        );
        write(&dir("pids"), "pids.current", "3\n");
        write(&dir("pids"), "pids.max", "max\n");
        write(&dir("pids"), "cgroup.procs", "10\n11\n");
        write(
            &dir("blkio"),
            "blkio.throttle.io_service_bytes",
            "8:0 Read 100\n8:0 Write 200\n8:0 Total 300\nTotal 300\n",
        );
        let m: BTreeMap<String, PathBuf> = ["cpu", "cpuacct", "memory", "pids", "blkio"]
            .iter()
            .map(|c| (c.to_string(), dir(c)))
            .collect();
        let dirs = CgroupDirs::V1(m);
        assert!(dirs.exists());
        assert_eq!(dirs.pids(), vec![10, 11]);
        let s = dirs.sample();
        assert_eq!(s.cpu_total_ns, 5_000_000_000);
        assert_eq!(
            (s.cpu_user_ns, s.cpu_kernel_ns),
            (3_000_000_000, 1_000_000_000)
        );
        assert_eq!((s.periods, s.throttled_periods, s.throttled_ns), (4, 2, 77));
        assert_eq!((s.mem_usage, s.mem_limit), (1_048_576, Some(67_108_864)));
        assert_eq!(s.mem_stats["total_inactive_file"], 4096);
        assert_eq!((s.pids_current, s.pids_limit), (3, None));
        assert_eq!(s.io_bytes.len(), 3);
        assert_eq!(s.io_bytes[0].op, "Read");
    }

    #[test]
    fn v2_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("berth/x");
        write(&d, "cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0\n");
        write(&d, "memory.current", "2097152\n");
        write(&d, "memory.max", "max\n");
        write(&d, "memory.stat", "anon 1024\ninactive_file 8192\n");
        write(&d, "pids.current", "1\n");
        write(&d, "pids.max", "100\n");
        write(
            &d,
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        write(&d, "cgroup.procs", "42\n");
        let dirs = CgroupDirs::V2(d);
        assert_eq!(dirs.pids(), vec![42]);
        let s = dirs.sample();
        assert_eq!(s.cpu_total_ns, 2_000_000);
        assert_eq!((s.cpu_user_ns, s.cpu_kernel_ns), (1_500_000, 500_000));
        assert_eq!((s.mem_usage, s.mem_limit), (2_097_152, None));
        assert_eq!(s.pids_limit, Some(100));
        assert_eq!(
            s.io_bytes,
            vec![
                BlkioEntry {
                    major: 8,
                    minor: 0,
                    op: "read".into(),
                    value: 4096
                },
                BlkioEntry {
                    major: 8,
                    minor: 0,
                    op: "write".into(),
                    value: 8192
                },
            ]
        );
    }

    #[test]
    fn host_figures() {
        let (total, cpus) = system_cpu("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0 0 0\nintr 1\n");
        assert_eq!((total, cpus), (1000 * 10_000_000, 2));
        assert_eq!(
            mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"),
            16384 * 1024
        );
        let nd = net_dev("Inter-|   Receive\n face |bytes\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 1296 16 0 0 0 0 0 0 726 9 0 0 0 0 0 0\n");
        assert_eq!(nd.len(), 1);
        assert_eq!(nd["eth0"]["rx_bytes"], 1296);
        assert_eq!(nd["eth0"]["tx_packets"], 9);
    }
}
