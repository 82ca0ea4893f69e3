//! The container's filesystem: the rootfs bind, every OCI mount (targets resolved inside the
//! rootfs without following symlinks out of it), `/dev`; after [`crate::jail`] has entered the
//! rootfs, sysctls, read-only and masked paths and a read-only root.
//!
//! Runs in the init, in its own mount namespace (or, when the spec lists none, the host's: see
//! [`crate::jail`]), before the container's process is exec'd.

use crate::{Error, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Parsed mount options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    /// Flags for the mount itself.
    pub flags: MsFlags,
    /// Flags cleared by the options (`rw`, `suid`...).
    pub clear: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options joined with commas.
    pub data: String,
}

/// Parses OCI/fstab mount options.
pub fn parse_options(opts: &[String]) -> MountOpts {
    let mut o = MountOpts {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for opt in opts {
        let (set, clear, prop) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), None),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, None),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), None),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, None),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), None),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, None),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), None),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, None),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), None),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, None),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), None),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty(), None),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty(), None),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK, None),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, None),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), None),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME, None),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), None),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), None),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty(), None),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), None),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME, None),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), None),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME, None),
            "private" => (
                MsFlags::empty(),
                MsFlags::empty(),
                Some(MsFlags::MS_PRIVATE),
            ),
            "rprivate" => (
                MsFlags::empty(),
                MsFlags::empty(),
                Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            ),
            "shared" => (MsFlags::empty(), MsFlags::empty(), Some(MsFlags::MS_SHARED)),
            "rshared" => (
                MsFlags::empty(),
                MsFlags::empty(),
                Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
            ),
            "slave" => (MsFlags::empty(), MsFlags::empty(), Some(MsFlags::MS_SLAVE)),
            "rslave" => (
                MsFlags::empty(),
                MsFlags::empty(),
                Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            ),
            "unbindable" => (
                MsFlags::empty(),
                MsFlags::empty(),
                Some(MsFlags::MS_UNBINDABLE),
            ),
            "runbindable" => (
                MsFlags::empty(),
                MsFlags::empty(),
                Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            ),
            "tmpcopyup" | "defaults" => continue,
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.clear.insert(clear);
        if let Some(p) = prop {
            o.propagation.push(p);
        }
    }
    o.data = data.join(",");
    o
}

/// Resolves `path` inside `root` as if `root` were `/`: symlinks (absolute or relative) and
/// `..` never lead out of `root`. Missing components are kept as they are.
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut cur = PathBuf::new();
    let mut queue: VecDeque<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        let full = root.join(&next);
        match std::fs::symlink_metadata(&full) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::invalid(format!(
                        "{}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                let target = std::fs::read_link(&full).map_err(|e| Error::io(&full, e))?;
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                for (i, tc) in target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(s.to_os_string()),
                        Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .enumerate()
                {
                    queue.insert(i, tc);
                }
            }
            _ => cur = next,
        }
    }
    Ok(root.join(cur))
}

fn mnt(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mnt_shown(src, target, target, fstype, flags, data)
}

/// [`mnt`] onto `target`, naming `shown` in the error (the destination behind a
/// `/proc/self/fd/N` target).
fn mnt_shown(
    src: Option<&Path>,
    target: &Path,
    shown: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        Error::sys(
            format!(
                "mount {} to {} (type {}, flags {:#x})",
                src.map(|s| s.display().to_string()).unwrap_or_default(),
                shown.display(),
                fstype.unwrap_or(""),
                flags.bits()
            ),
            e,
        )
    })
}

fn mkdir_all(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))
}

fn touch(p: &Path) -> Result<()> {
    if let Some(d) = p.parent() {
        mkdir_all(d)?;
    }
    if std::fs::symlink_metadata(p).is_err() {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
            .map_err(|e| Error::io(p, e))?;
    }
    Ok(())
}

/// What the rootfs set-up needs beside the spec.
pub struct Ctx<'a> {
    /// The rootfs directory (host path).
    pub rootfs: &'a Path,
    /// The bundle directory (relative bind sources are taken from it).
    pub bundle: &'a Path,
    /// Inside a new user namespace (devices are bind-mounted, not created).
    pub userns: bool,
    /// The container's cgroup directories (for `cgroup` mounts).
    pub cgroup_paths: &'a [PathBuf],
    /// The init has a mount namespace of its own (new or joined); false: the host's.
    pub mntns: bool,
}

/// `linux.rootfsPropagation` as mount flags (`None` when absent or empty).
pub fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(None),
        Some(p) => {
            let o = parse_options(&[p.to_string()]);
            o.propagation.first().copied().map(Some).ok_or_else(|| {
                Error::invalid(format!(
                    "linux.rootfsPropagation: unknown propagation {p:?}"
                ))
            })
        }
    }
}

/// Everything before pivot_root: propagation, the rootfs bind, the mounts and `/dev`. Without
/// a mount namespace of its own (`c.mntns` false) the host's propagation is left alone and
/// the rootfs is not bound onto itself: only the spec's mounts are made, under the rootfs.
pub fn prepare(spec: &Spec, c: &Ctx) -> Result<()> {
    if c.mntns {
        let prop = root_propagation(spec)?;
        mnt(
            None,
            Path::new("/"),
            None,
            prop.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            None,
        )?;
        crate::jail::parent_mount_propagation(c.rootfs, prop)?;
        mnt(
            Some(c.rootfs),
            c.rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
    }
    let mut dev_bound = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination() == Path::new("/dev") && is_bind(m) {
            dev_bound = true;
        }
        mount_one(m, c).map_err(|e| {
            Error::invalid(format!("mounts[{i}] ({}): {e}", m.destination().display()))
        })?;
    }
    if !dev_bound {
        setup_dev(spec, c)?;
    }
    Ok(())
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// A mount target pinned by an `O_PATH` descriptor opened with openat2(`RESOLVE_IN_ROOT`)
/// below the rootfs: mounts go to `/proc/self/fd/N`, the very inode that was resolved inside the
/// rootfs, so a symlink swapped in after [`secure_join`] (by another container sharing a
/// volume: CVE-2021-30465) cannot redirect them. Kernels without openat2 (before 5.6) mount by
/// the resolved path, as before.
struct PinnedTarget {
    _fd: Option<std::os::fd::OwnedFd>,
    path: PathBuf,
    dest: PathBuf,
}

impl PinnedTarget {
    /// Mounts onto the pinned target; errors name the destination.
    fn mount(
        &self,
        src: Option<&Path>,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        mnt_shown(src, &self.path, &self.dest, fstype, flags, data)
    }
}

fn pin_target(rootfs: &Path, dest: &Path) -> Result<PinnedTarget> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let rel = match dest.strip_prefix(rootfs) {
        Ok(r) if r.as_os_str().is_empty() => Path::new("."),
        Ok(r) => r,
        Err(_) => {
            return Err(Error::invalid(format!(
                "mount target {} is not inside the rootfs {}",
                dest.display(),
                rootfs.display()
            )))
        }
    };
    let root = std::fs::File::open(rootfs).map_err(|e| Error::io(rootfs, e))?;
    let rel = std::ffi::CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(format!("mount target {}: NUL byte", dest.display())))?;
    match crate::sys::openat2_in_root(root.as_raw_fd(), &rel, libc::O_PATH) {
        Ok(fd) => Ok(PinnedTarget {
            path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            dest: dest.to_path_buf(),
            _fd: Some(fd),
        }),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(PinnedTarget {
            _fd: None,
            path: dest.to_path_buf(),
            dest: dest.to_path_buf(),
        }),
        Err(e) => Err(Error::io(dest, e)),
    }
}

fn mount_one(m: &Mount, c: &Ctx) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let dest = secure_join(c.rootfs, m.destination())?;
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(&dest, &opts, c);
    }
    if is_bind(m) {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::invalid("bind mount without a source"))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            c.bundle.join(src)
        };
        let md = std::fs::metadata(&src).map_err(|e| Error::io(&src, e))?;
        if md.is_dir() {
            mkdir_all(&dest)?;
        } else {
            touch(&dest)?;
        }
        let target = pin_target(c.rootfs, &dest)?;
        let base = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        target.mount(Some(&src), None, base, None)?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            // pinned again: now the root of the new mount, not the directory under it
            let mounted = pin_target(c.rootfs, &dest)?;
            mounted.mount(
                None,
                None,
                extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | (opts.flags & MsFlags::MS_REC),
                None,
            )?;
        }
    } else {
        mkdir_all(&dest)?;
        let target = pin_target(c.rootfs, &dest)?;
        let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        match target.mount(Some(&src), Some(typ), opts.flags, data) {
            Ok(()) => {}
            // sysfs can't be mounted in a user namespace without a new net namespace: bind it
            Err(_) if typ == "sysfs" && c.userns => {
                target.mount(
                    Some(Path::new("/sys")),
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
            }
            Err(e) => return Err(e),
        }
    }
    if !opts.propagation.is_empty() {
        let mounted = pin_target(c.rootfs, &dest)?;
        for p in &opts.propagation {
            mounted.mount(None, None, *p, None)?;
        }
    }
    Ok(())
}

fn mount_cgroup(dest: &Path, opts: &MountOpts, c: &Ctx) -> Result<()> {
    mkdir_all(dest)?;
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let v2 = c.cgroup_paths.len() == 1 && !c.cgroup_paths[0].join("tasks").exists();
    if v2 {
        let flags = opts.flags;
        if mnt(
            Some(Path::new("cgroup2")),
            dest,
            Some("cgroup2"),
            flags,
            None,
        )
        .is_ok()
        {
            return Ok(());
        }
        mnt(
            Some(&c.cgroup_paths[0]),
            dest,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        if ro {
            mnt(
                None,
                dest,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None,
            )?;
        }
        return Ok(());
    }
    // v1: a tmpfs with one bind of the container's own directory per hierarchy
    let tflags = opts.flags & !MsFlags::MS_RDONLY;
    mnt(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        tflags,
        Some("mode=755"),
    )?;
    for d in c.cgroup_paths {
        // the hierarchy's mount dir name ("cpu,cpuacct", "memory", "unified", "systemd")
        let name = hierarchy_name(d);
        // hybrid: the (empty) v2 hierarchy is not shown, as with runc
        let Some(name) = name.filter(|n| n != "unified") else {
            continue;
        };
        let target = dest.join(&name);
        mkdir_all(&target)?;
        mnt(
            Some(d),
            &target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        let mut f = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_REC
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        if ro {
            f |= MsFlags::MS_RDONLY;
        }
        mnt(None, &target, None, f, None)?;
        if name.contains(',') {
            for part in name.split(',') {
                let _ = std::os::unix::fs::symlink(&name, dest.join(part));
            }
        }
    }
    // like runc, the tmpfs itself stays writable; the hierarchies in it are read-only
    Ok(())
}

/// The name of the hierarchy a cgroup directory lives in: the path component right below
/// /sys/fs/cgroup (or below the hierarchy's mount point).
fn hierarchy_name(dir: &Path) -> Option<String> {
    let s = dir.strip_prefix("/sys/fs/cgroup").ok()?;
    s.components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
}

/// The default devices every container gets: (name, major, minor).
pub const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn setup_dev(spec: &Spec, c: &Ctx) -> Result<()> {
    let dev = secure_join(c.rootfs, Path::new("/dev"))?;
    mkdir_all(&dev)?;
    let mut devs: Vec<(PathBuf, SFlag, u64, u64, u32, u32, u32)> = DEFAULT_DEVICES
        .iter()
        .map(|(n, ma, mi)| {
            (
                PathBuf::from(format!("/dev/{n}")),
                SFlag::S_IFCHR,
                *ma,
                *mi,
                0o666,
                0,
                0,
            )
        })
        .collect();
    for (i, d) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::invalid(format!(
                    "linux.devices[{i}].type: \"a\" is not a device type"
                )))
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(Error::invalid(format!(
                "linux.devices[{i}].path: {} is not under /dev",
                d.path().display()
            )));
        }
        devs.retain(|x| x.0 != *d.path());
        devs.push((
            d.path().clone(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        ));
    }
    for (path, kind, ma, mi, mode, uid, gid) in devs {
        let target = secure_join(c.rootfs, &path)?;
        if let Some(p) = target.parent() {
            mkdir_all(p)?;
        }
        let _ = std::fs::remove_file(&target);
        if c.userns {
            touch(&target)?;
            mnt(Some(&path), &target, None, MsFlags::MS_BIND, None)?;
        } else {
            mknod(
                &target,
                kind,
                Mode::from_bits_truncate(mode & 0o7777),
                makedev(ma, mi),
            )
            .map_err(|e| Error::sys(format!("mknod {}", path.display()), e))?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| Error::io(&target, e))?;
            std::os::unix::fs::chown(&target, Some(uid), Some(gid))
                .map_err(|e| Error::io(&target, e))?;
        }
    }
    let links: &[(&str, &str)] = &[
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    for (src, name) in links {
        let p = dev.join(name);
        if std::fs::symlink_metadata(&p).is_err() {
            std::os::unix::fs::symlink(src, &p).map_err(|e| Error::io(&p, e))?;
        }
    }
    if Path::new("/proc/kcore").exists() {
        let _ = std::os::unix::fs::symlink("/proc/kcore", dev.join("core"));
    }
    let ptmx = dev.join("ptmx");
    let _ = std::fs::remove_file(&ptmx);
    std::os::unix::fs::symlink("pts/ptmx", &ptmx).map_err(|e| Error::io(&ptmx, e))?;
    Ok(())
}

/// After pivot_root: sysctls, read-only paths, masked paths, read-only root.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        let mut keys: Vec<_> = sysctl.keys().collect();
        keys.sort();
        for k in keys {
            if k.contains("..") || k.starts_with('/') {
                return Err(Error::invalid(format!("linux.sysctl: invalid key {k:?}")));
            }
            let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
            std::fs::write(&p, &sysctl[k])
                .map_err(|e| Error::invalid(format!("linux.sysctl: {k}={}: {e}", sysctl[k])))?;
        }
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly(Path::new(p))?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(Path::new(p))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let cur = statvfs_flags(Path::new("/"));
        mnt(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | cur,
            None,
        )?;
    }
    Ok(())
}

fn statvfs_flags(p: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let mut f = MsFlags::empty();
    if let Ok(s) = statvfs(p) {
        let fl = s.flags();
        if fl.contains(FsFlags::ST_NOSUID) {
            f |= MsFlags::MS_NOSUID;
        }
        if fl.contains(FsFlags::ST_NODEV) {
            f |= MsFlags::MS_NODEV;
        }
        if fl.contains(FsFlags::ST_NOEXEC) {
            f |= MsFlags::MS_NOEXEC;
        }
    }
    f
}

fn readonly(p: &Path) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("bind readonly path {}", p.display()), e)),
        Ok(()) => {}
    }
    let cur = statvfs_flags(p);
    mnt(
        None,
        p,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | cur,
        None,
    )
}

fn mask(p: &Path) -> Result<()> {
    let md = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if md.is_dir() {
        mnt(
            Some(Path::new("tmpfs")),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        )
    } else {
        mnt(
            Some(Path::new("/dev/null")),
            p,
            None,
            MsFlags::MS_BIND,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = parse_options(
            &[
                "nosuid",
                "noexec",
                "rbind",
                "ro",
                "rslave",
                "mode=755",
                "size=65536k",
            ]
            .map(String::from),
        );
        assert!(o.flags.contains(
            MsFlags::MS_NOSUID
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_BIND
                | MsFlags::MS_REC
                | MsFlags::MS_RDONLY
        ));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = parse_options(&["ro", "rw"].map(String::from));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", r.join("a/rel")).unwrap();
        assert_eq!(
            secure_join(r, Path::new("/abs/passwd")).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            secure_join(r, Path::new("/a/up/etc")).unwrap(),
            r.join("etc")
        );
        assert_eq!(
            secure_join(r, Path::new("/a/rel/x")).unwrap(),
            r.join("a/b/x")
        );
        assert_eq!(secure_join(r, Path::new("/../../x")).unwrap(), r.join("x"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(secure_join(r, Path::new("/loop")).is_err());
    }
}
