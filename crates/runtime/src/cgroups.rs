//! Control groups: v1, v2 and hybrid hierarchies found in /proc/self/mountinfo; creating the
//! container's cgroup, writing its resources, joining it, freezing and removing it.
//!
//! All paths come from the [`Layout`], so tests point a [`Manager`] at a temporary directory.
//! Device rules (`linux.resources.devices`, then [`allowed_devices`]): on v1 (hybrid included)
//! the devices controller gets them (deny all, then the rules in order); on pure v2 they
//! become a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the container's cgroup
//! ([`crate::devicefilter`], [`crate::cgroup_devices`]), and a kernel that refuses it fails
//! the create rather than running the container without device control.

use crate::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};

/// One v1 hierarchy: where it is mounted and its controllers (or `name=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Mount point.
    pub mount: PathBuf,
    /// Controllers of the hierarchy.
    pub controllers: Vec<String>,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies (maybe with an empty v2 at `unified`: hybrid).
    V1 {
        /// The v1 hierarchies.
        hierarchies: Vec<Hierarchy>,
        /// The v2 mount of a hybrid layout.
        unified: Option<PathBuf>,
    },
    /// Pure v2 at this mount point.
    V2(PathBuf),
}

const V1_KNOWN: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "name=systemd",
];

/// Parses /proc/self/mountinfo text into a layout: the v1 hierarchies with a controller we
/// know (the first mount of each), else pure v2 (the first cgroup2 mount). Later mounts of a
/// hierarchy are left out: a container without a mount namespace has its cgroup mounts
/// (under its rootfs) in the host's table while it runs.
pub fn parse_mountinfo(text: &str) -> Layout {
    let mut mounts = berth_sys::mountinfo::cgroup_mounts(text);
    if let Some(first) = berth_sys::mountinfo::entries(text).find(|e| e.fstype == "cgroup2") {
        mounts.v2 = Some(PathBuf::from(first.mount_point));
    }
    let mut hier: Vec<Hierarchy> = Vec::new();
    for (mount, options) in mounts.v1 {
        let controllers: Vec<String> = options
            .into_iter()
            .filter(|o| V1_KNOWN.contains(&o.as_str()))
            .collect();
        let seen = hier
            .iter()
            .any(|h| h.mount == mount || h.controllers.iter().any(|c| controllers.contains(c)));
        if !controllers.is_empty() && !seen {
            hier.push(Hierarchy { mount, controllers });
        }
    }
    if hier.is_empty() {
        Layout::V2(mounts.v2.unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup")))
    } else {
        Layout::V1 {
            hierarchies: hier,
            unified: mounts.v2,
        }
    }
}

/// Parses /proc/<pid>/cgroup: (controllers, path) per line; v2's line has no controllers.
pub use berth_sys::mountinfo::parse_proc_cgroup;

/// The runtime's own cgroups.
pub fn own() -> Vec<(Vec<String>, PathBuf)> {
    parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default())
}

/// The host's layout.
pub fn detect() -> Layout {
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

use crate::cgroup_resources as resources;
pub use crate::cgroup_resources::{blkio_to_io_weight, shares_to_weight};
pub use crate::devicefilter::allowed_devices;
use resources::{read, write};

/// The container's cgroup in every hierarchy.
#[derive(Debug, Clone)]
pub struct Manager {
    /// (controllers, directory) for each v1 hierarchy, or one ("", dir) on v2.
    pub dirs: Vec<(Vec<String>, PathBuf)>,
    /// Whether the layout is pure v2.
    pub v2: bool,
}

impl Manager {
    /// The manager for `cgroups_path`: an absolute path is taken from the root of each
    /// hierarchy, a relative one from the runtime's own cgroup in it (`own`, the parsed
    /// /proc/self/cgroup), as runc does.
    pub fn new(layout: &Layout, cgroups_path: &Path, own: &[(Vec<String>, PathBuf)]) -> Manager {
        let relative = !cgroups_path.is_absolute();
        let rel: PathBuf = cgroups_path
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        let under = |ctrls: &[String]| -> PathBuf {
            if !relative {
                return rel.clone();
            }
            let base = own
                .iter()
                .find(|(c, _)| {
                    if ctrls.is_empty() {
                        c.is_empty()
                    } else {
                        c.iter().any(|x| ctrls.contains(x))
                    }
                })
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            let base: PathBuf = base
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .collect();
            base.join(&rel)
        };
        match layout {
            Layout::V2(m) => Manager {
                dirs: vec![(vec![], m.join(under(&[])))],
                v2: true,
            },
            Layout::V1 {
                hierarchies,
                unified,
            } => {
                let mut dirs: Vec<(Vec<String>, PathBuf)> = hierarchies
                    .iter()
                    .map(|h| (h.controllers.clone(), h.mount.join(under(&h.controllers))))
                    .collect();
                if let Some(u) = unified {
                    dirs.push((vec!["unified".into()], u.join(under(&[]))));
                }
                Manager { dirs, v2: false }
            }
        }
    }

    /// The manager of directories recorded in state.json.
    pub fn from_paths(layout: &Layout, paths: &[PathBuf]) -> Manager {
        match layout {
            Layout::V2(_) => Manager {
                dirs: paths.iter().map(|p| (vec![], p.clone())).collect(),
                v2: true,
            },
            Layout::V1 { hierarchies, .. } => Manager {
                dirs: paths
                    .iter()
                    .map(|p| {
                        let c = hierarchies
                            .iter()
                            .find(|h| p.starts_with(&h.mount))
                            .map(|h| h.controllers.clone())
                            .unwrap_or_else(|| vec!["unified".into()]);
                        (c, p.clone())
                    })
                    .collect(),
                v2: false,
            },
        }
    }

    /// The directories, for state.json.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    /// Creates the directories (cpuset ones get their parent's cpus/mems) and writes
    /// `resources`. On error everything created is removed again.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let mut made: Vec<PathBuf> = Vec::new();
        let r = self.create_inner(resources, &mut made);
        if r.is_err() {
            for d in made.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
        r
    }

    fn create_inner(&self, res: Option<&LinuxResources>, made: &mut Vec<PathBuf>) -> Result<()> {
        for (ctrls, dir) in &self.dirs {
            let mut missing = Vec::new();
            let mut p = dir.as_path();
            while !p.exists() {
                missing.push(p.to_path_buf());
                match p.parent() {
                    Some(q) => p = q,
                    None => break,
                }
            }
            for d in missing.iter().rev() {
                std::fs::create_dir(d)
                    .map_err(|e| Error::Cgroup(format!("create {}: {e}", d.display())))?;
                made.push(d.clone());
                if ctrls.iter().any(|c| c == "cpuset") {
                    if let Some(parent) = d.parent() {
                        for f in ["cpuset.cpus", "cpuset.mems"] {
                            let v = read(&parent.join(f));
                            if read(&d.join(f)).is_empty() && !v.is_empty() {
                                write(d, f, &v)?;
                            }
                        }
                    }
                }
            }
        }
        if self.v2 {
            self.enable_v2_controllers()?;
        }
        if let Some(r) = res {
            self.apply(r)?;
        }
        Ok(())
    }

    fn enable_v2_controllers(&self) -> Result<()> {
        let leaf = &self.dirs[0].1;
        let mut chain = Vec::new();
        let mut p = leaf.parent();
        while let Some(d) = p {
            if !d.join("cgroup.subtree_control").exists() {
                break;
            }
            chain.push(d.to_path_buf());
            p = d.parent();
        }
        for d in chain.iter().rev() {
            let avail = read(&d.join("cgroup.controllers"));
            for c in avail.split_whitespace() {
                // a controller that can't be enabled (threaded, busy root) is skipped
                let _ = std::fs::write(d.join("cgroup.subtree_control"), format!("+{c}"));
            }
        }
        Ok(())
    }

    /// Writes resources (also used by `update`).
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        if self.v2 {
            resources::apply_v2(&self.dirs[0].1, r)
        } else {
            resources::apply_v1(&self.dirs, r)
        }
    }

    /// Puts `pid` into every directory.
    pub fn add(&self, pid: i32) -> Result<()> {
        for (_, d) in &self.dirs {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }
}

/// Splits a container's cgroup directories into v1 hierarchies (they have a `tasks` file) and
/// the v2 one (pure v2, or the unified hierarchy of a hybrid host).
pub fn split_v1_v2(paths: &[PathBuf]) -> (Vec<PathBuf>, Option<PathBuf>) {
    let (v1, v2): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .iter()
        .cloned()
        .partition(|d| d.join("tasks").exists());
    (v1, v2.into_iter().next())
}

/// Moves the calling single-threaded process into each v1 directory by writing `0` to its
/// `tasks` file. That is a single-thread migration of the caller, which the kernel does without
/// the global threadgroup lock that a write of a pid to `cgroup.procs` takes (its write side
/// waits for an RCU grace period: 10 to 25 ms per container start on an idle host).
pub fn join_self_v1(dirs: &[PathBuf]) -> Result<()> {
    for d in dirs {
        write(d, "tasks", "0")?;
    }
    Ok(())
}

/// Puts `pid` into the directories recorded in a container's state.
pub fn join(paths: &[PathBuf], pid: i32) -> Result<()> {
    for d in paths {
        if d.exists() {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
    }
    Ok(())
}

/// All pids in the container's cgroup (from the first directory that lists any).
pub fn pids(paths: &[PathBuf]) -> Vec<i32> {
    for d in paths {
        let s = read(&d.join("cgroup.procs"));
        if !s.is_empty() {
            return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
}

/// Freezes or thaws: the v1 freezer when there is one (hybrid included), else v2's
/// cgroup.freeze.
pub fn freeze(paths: &[PathBuf], on: bool) -> Result<()> {
    if let Some(d) = paths.iter().find(|d| d.join("freezer.state").exists()) {
        write(d, "freezer.state", if on { "FROZEN" } else { "THAWED" })?;
        for _ in 0..2000 {
            let s = read(&d.join("freezer.state"));
            if (on && s == "FROZEN") || (!on && s == "THAWED") {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        return Err(Error::Cgroup(format!(
            "{}: the freezer did not settle",
            d.display()
        )));
    }
    if let Some(d) = paths.iter().find(|d| d.join("cgroup.freeze").exists()) {
        return write(d, "cgroup.freeze", if on { "1" } else { "0" });
    }
    Err(Error::Cgroup("no freezer for this container".into()))
}

/// Whether the container's cgroup is frozen.
pub fn is_frozen(paths: &[PathBuf]) -> bool {
    paths.iter().any(|d| {
        read(&d.join("freezer.state")) == "FROZEN"
            || read(&d.join("cgroup.events"))
                .lines()
                .any(|l| l == "frozen 1")
    })
}

/// Removes the directories (retrying while the kernel still counts exiting tasks).
pub fn remove(paths: &[PathBuf]) -> Result<()> {
    let mut last = None;
    for d in paths {
        if !d.exists() {
            continue;
        }
        let mut ok = false;
        for _ in 0..5000 {
            match std::fs::remove_dir(d) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    ok = true;
                    break;
                }
                Err(e) => {
                    last = Some(format!("remove {}: {e}", d.display()));
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        if !ok {
            return Err(Error::Cgroup(last.unwrap_or_default()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
        LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    const HYBRID: &str = "\
25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
31 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn layouts() {
        match parse_mountinfo(HYBRID) {
            Layout::V1 {
                hierarchies,
                unified,
            } => {
                assert_eq!(hierarchies.len(), 3);
                assert_eq!(hierarchies[2].controllers, vec!["cpu", "cpuacct"]);
                assert_eq!(unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
            }
            l => panic!("{l:?}"),
        }
        let v2 = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
                  90 80 0:26 /c /b/rootfs/sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
        assert_eq!(parse_mountinfo(v2), Layout::V2("/sys/fs/cgroup".into()));
        // a container's mounts of the same hierarchies (no mount namespace) come later
        let leaked = format!(
            "{HYBRID}90 80 0:28 /c /b/rootfs/sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
        );
        assert_eq!(parse_mountinfo(&leaked), parse_mountinfo(HYBRID));
    }

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }

    fn res() -> LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50000i64)
                    .period(100000u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
            .devices(vec![LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rwm")
                .build()
                .unwrap()])
            .build()
            .unwrap()
    }

    #[test]
    fn v1_writes_files_in_a_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::V1 {
            hierarchies: ["memory", "cpu", "pids", "devices"]
                .iter()
                .map(|c| Hierarchy {
                    mount: t.path().join(c),
                    controllers: vec![c.to_string()],
                })
                .collect(),
            unified: None,
        };
        for c in ["memory", "cpu", "pids", "devices"] {
            std::fs::create_dir(t.path().join(c)).unwrap();
        }
        let m = Manager::new(&layout, Path::new("/berth/c1"), &[]);
        m.create(Some(&res())).unwrap();
        let r = |p: &str| read(&t.path().join(p));
        assert_eq!(r("memory/berth/c1/memory.limit_in_bytes"), "67108864");
        assert_eq!(r("cpu/berth/c1/cpu.shares"), "512");
        assert_eq!(r("cpu/berth/c1/cpu.cfs_quota_us"), "50000");
        assert_eq!(r("pids/berth/c1/pids.max"), "64");
        // plain files: the last write wins, so "c 1:3 rwm" follows the deny-all
        assert_eq!(r("devices/berth/c1/devices.allow"), "c 10:200 rwm");
        assert_eq!(r("devices/berth/c1/devices.deny"), "a");
    }

    #[test]
    fn freezer_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let v1 = t.path().join("freezer");
        let v2 = t.path().join("unified");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v1.join("freezer.state"), "THAWED").unwrap();
        std::fs::write(v2.join("cgroup.freeze"), "0").unwrap();
        freeze(&[v2.clone(), v1.clone()], true).unwrap();
        assert_eq!(read(&v1.join("freezer.state")), "FROZEN");
        assert_eq!(read(&v2.join("cgroup.freeze")), "0");
        assert!(is_frozen(std::slice::from_ref(&v1)));
        freeze(std::slice::from_ref(&v2), true).unwrap();
        assert_eq!(read(&v2.join("cgroup.freeze")), "1");
        assert!(freeze(&[t.path().join("none")], true).is_err());
    }

    #[test]
    fn v2_writes_files_and_failures_leave_nothing() {
        let t = tempfile::tempdir().unwrap();
        let m = Manager::new(
            &Layout::V2(t.path().into()),
            Path::new("berth/c2"),
            &parse_proc_cgroup("0::/user.slice\n"),
        );
        let mut without_devices = res();
        without_devices.set_devices(None);
        m.create(Some(&without_devices)).unwrap();
        let d = t.path().join("user.slice/berth/c2");
        assert_eq!(read(&d.join("memory.max")), "67108864");
        assert_eq!(read(&d.join("cpu.weight")), "20");
        assert_eq!(read(&d.join("cpu.max")), "50000 100000");
        assert_eq!(read(&d.join("pids.max")), "64");
        // a v1 manager without a pids hierarchy fails and removes what it made
        let layout = Layout::V1 {
            hierarchies: vec![Hierarchy {
                mount: t.path().join("mem"),
                controllers: vec!["memory".into()],
            }],
            unified: None,
        };
        std::fs::create_dir(t.path().join("mem")).unwrap();
        let m = Manager::new(&layout, Path::new("/x/y"), &[]);
        let only_pids = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
            .build()
            .unwrap();
        let e = m.create(Some(&only_pids)).unwrap_err();
        assert!(
            e.to_string().contains("pids controller is not mounted"),
            "{e}"
        );
        assert!(!t.path().join("mem/x").exists());
    }

    #[test]
    fn v2_devices_without_a_device_filter_fail_the_create() {
        // a plain directory is no cgroup: the program cannot be attached (or, unprivileged,
        // not even loaded), so the create fails and leaves nothing
        let t = tempfile::tempdir().unwrap();
        let m = Manager::new(&Layout::V2(t.path().into()), Path::new("/berth/c3"), &[]);
        let only_devices = LinuxResourcesBuilder::default()
            .devices(res().devices().clone().unwrap())
            .build()
            .unwrap();
        let e = m.create(Some(&only_devices)).unwrap_err();
        assert!(e.to_string().contains("device filter"), "{e}");
        assert!(!t.path().join("berth").exists());
    }
}
