//! `/proc/<pid>/mountinfo` and `/proc/<pid>/cgroup`: one parser for the runtime (which builds
//! its cgroup layout) and the engine (which finds a container's cgroup for stats and checks
//! mount points).

use std::path::PathBuf;

/// One line of mountinfo (only the fields berth reads; octal escapes are left as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountEntry<'a> {
    /// Field 5: where it is mounted.
    pub mount_point: &'a str,
    /// The filesystem type after the ` - ` separator.
    pub fstype: &'a str,
    /// The mount source.
    pub source: &'a str,
    /// The per-superblock options (for cgroup v1: the controllers).
    pub super_options: &'a str,
}

/// The well-formed lines of mountinfo text, in order; malformed lines are skipped.
pub fn entries(text: &str) -> impl Iterator<Item = MountEntry<'_>> {
    text.lines().filter_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let mount_point = pre.split(' ').nth(4)?;
        let mut post = post.split(' ');
        Some(MountEntry {
            mount_point,
            fstype: post.next()?,
            source: post.next()?,
            super_options: post.next()?,
        })
    })
}

/// Whether `target` is a mount point in mountinfo `text`.
pub fn is_mount_point(text: &str, target: &str) -> bool {
    entries(text).any(|e| e.mount_point == target)
}

/// The cgroup filesystems of a mountinfo, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// Each cgroup v1 mount: its mount point and super options (controllers and `name=`).
    pub v1: Vec<(PathBuf, Vec<String>)>,
    /// The (last) cgroup2 mount: the unified hierarchy, empty on a hybrid host.
    pub v2: Option<PathBuf>,
}

/// The cgroup v1 and v2 mounts in mountinfo `text`.
pub fn cgroup_mounts(text: &str) -> CgroupMounts {
    let mut out = CgroupMounts::default();
    for e in entries(text) {
        match e.fstype {
            "cgroup2" => out.v2 = Some(PathBuf::from(e.mount_point)),
            "cgroup" => out.v1.push((
                PathBuf::from(e.mount_point),
                e.super_options.split(',').map(String::from).collect(),
            )),
            _ => {}
        }
    }
    out
}

/// Parses /proc/<pid>/cgroup: (controllers, path) per line; v2's line has no controllers.
pub fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            let c: Vec<String> = ctrls
                .split(',')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect();
            Some((c, PathBuf::from(path)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
34 25 0:29 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
38 25 0:33 / /sys/fs/cgroup/cpu,cpuacct rw shared:15 - cgroup cgroup rw,cpu,cpuacct
bogus line
40 25 0:35 / /sys/fs/cgroup/memory rw shared:17 - cgroup cgroup rw,memory
";

    #[test]
    fn entries_and_mount_points() {
        let e: Vec<_> = entries(HYBRID).collect();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].fstype, "sysfs");
        assert_eq!(e[3].super_options, "rw,cpu,cpuacct");
        assert!(is_mount_point(HYBRID, "/sys/fs/cgroup/memory"));
        assert!(!is_mount_point(HYBRID, "/sys/fs"));
    }

    #[test]
    fn cgroup_layout() {
        let c = cgroup_mounts(HYBRID);
        assert_eq!(c.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(c.v1.len(), 3);
        assert_eq!(c.v1[1].0, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(c.v1[1].1, ["rw", "cpu", "cpuacct"]);
        let pure = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup_mounts(pure).v1.len(), 0);
    }

    #[test]
    fn proc_cgroup() {
        let p = parse_proc_cgroup("12:memory:/a\n4:cpu,cpuacct:/b\n0::/c\n");
        assert_eq!(p[0], (vec!["memory".to_string()], PathBuf::from("/a")));
        assert_eq!(p[1].0, ["cpu", "cpuacct"]);
        assert_eq!(p[2], (vec![], PathBuf::from("/c")));
    }
}
