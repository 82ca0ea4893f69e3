//! `docker cp` and `docker export` on the engine side: stat of a path in a container (`HEAD
//! /containers/{id}/archive`), a tar of it (`GET`), extracting a tar into a directory (`PUT`) and
//! the whole root filesystem as a tar (`GET /containers/{id}/export`).
//!
//! Running containers are read through their mounted root; a stopped one gets its overlay
//! mounted on a private directory that is detached at once (only our descriptor keeps it), while
//! the container's operation lock keeps it from starting meanwhile. Every path goes through
//! [`crate::inroot::Root`], so nothing outside the container's root is ever read or written.
//! For `cp`, a running container is seen through `/proc/<pid>/root`, so its volumes and bind
//! mounts are there as its processes see them. A created or stopped container is given them as
//! dockerd does for `cp`: its root is mounted on a private directory with its volumes and bind
//! mounts bound on it (each destination resolved inside the root, read-only ones read-only) for
//! the one operation, then unmounted; it is never started. `export` is always the container's
//! own filesystem (image layers and writable layer).

use std::fs::File;
use std::io::{BufReader, Seek};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::container::Container;
use crate::context::Context;
use crate::extract::{self, ExtractError, ExtractOptions};
use crate::inroot::{self, abs_path, base_name, fstat, lstat_at, split_dir_base, Root};
use crate::tarwrite::TreeWriter;
use crate::{EngineError, Result};

/// What `X-Docker-Container-Path-Stat` carries (base64 JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` of a `stat` mode.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    match st_mode & libc::S_IFMT {
        libc::S_IFDIR => m |= 1 << 31,
        libc::S_IFLNK => m |= 1 << 27,
        libc::S_IFBLK => m |= 1 << 26,
        libc::S_IFCHR => m |= (1 << 26) | (1 << 21),
        libc::S_IFIFO => m |= 1 << 25,
        libc::S_IFSOCK => m |= 1 << 24,
        _ => {}
    }
    if st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

fn rfc3339(secs: i64, nanos: i64) -> String {
    chrono::DateTime::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn internal(context: &str) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::Internal(format!("{context}: {e}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("task failed: {e}")))?
}

fn not_found(path: &str, key: &str) -> EngineError {
    EngineError::NotFound(format!("Could not find the file {path} in container {key}"))
}

/// A path from a request: no path on Linux can hold a NUL byte, so one that does is the
/// client's error (400), never an internal one.
fn checked_path(path: &str) -> Result<String> {
    if path.contains('\0') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid path {path:?}: it contains a NUL byte"
        )));
    }
    Ok(path.to_string())
}

/// An error from resolving or opening a path the client gave: one too long (ENAMETOOLONG), with
/// a symlink loop (ELOOP) or otherwise unusable (EINVAL) is the client's error (400); the rest
/// stay internal.
fn path_error(context: &str) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |e| match e.raw_os_error() {
        Some(libc::ENAMETOOLONG) | Some(libc::ELOOP) | Some(libc::EINVAL) => {
            EngineError::InvalidArgument(format!("{context}: {e}"))
        }
        _ => EngineError::Internal(format!("{context}: {e}")),
    }
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

/// The item a request path names: its stat, the resolved path, and where it lies.
struct Located {
    stat: PathStat,
    /// The resolved container path of the item (its last element not followed).
    resolved: String,
}

/// Docker's `ResolvePath` + `StatPath`: the directory part is resolved in scope, the last
/// element is not followed; `linkTarget` is the fully resolved path of a symlink.
fn locate(root: &Root, path: &str, key: &str) -> Result<Located> {
    let abs = abs_path(path);
    let (dir, base) = split_dir_base(&abs);
    let rdir = root.resolve(dir).map_err(path_error("resolving path"))?;
    let resolved = if base.is_empty() || base == "." {
        rdir
    } else {
        format!("{}/{base}", rdir.trim_end_matches('/'))
    };
    let fd = root
        .open_in(&resolved, libc::O_PATH | libc::O_NOFOLLOW)
        .map_err(|e| {
            if is_missing(&e) {
                not_found(path, key)
            } else {
                path_error(&format!("stat {path}"))(e)
            }
        })?;
    let st = fstat(fd.as_raw_fd()).map_err(internal("stat"))?;
    let link_target = if inroot::is_type(&st, libc::S_IFLNK) {
        root.resolve(&abs).map_err(path_error("resolving link"))?
    } else {
        String::new()
    };
    Ok(Located {
        stat: PathStat {
            name: base_name(&abs),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime: rfc3339(st.st_mtime, st.st_mtime_nsec),
            link_target,
        },
        resolved,
    })
}

/// The parent directory and the name within it of a resolved container path (`"."` for `/`).
fn parent_and_name(resolved: &str) -> (String, String) {
    let t = resolved.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((p, n)) if !n.is_empty() => {
            (if p.is_empty() { "/".into() } else { p.into() }, n.into())
        }
        _ => ("/".into(), ".".into()),
    }
}

fn write_tar(root: &Root, resolved: &str, tar_name: &str, out: File) -> Result<File> {
    let (parent, name) = parent_and_name(resolved);
    let pfd = root
        .open_in(&parent, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(internal("opening parent directory"))?;
    let mut w = TreeWriter::new(std::io::BufWriter::with_capacity(1 << 16, out));
    w.append(pfd.as_raw_fd(), &name, tar_name)
        .map_err(internal("writing archive"))?;
    let mut f = w
        .finish()
        .map_err(internal("writing archive"))?
        .into_inner()
        .map_err(|e| EngineError::Internal(format!("writing archive: {e}")))?;
    f.rewind().map_err(internal("rewinding archive"))?;
    Ok(f)
}

fn spool_file(ctx: &Arc<Context>) -> Result<File> {
    let dir = ctx.config.data_root.join("tmp");
    std::fs::create_dir_all(&dir).map_err(internal("creating tmp dir"))?;
    tempfile::tempfile_in(&dir).map_err(internal("creating a temporary file"))
}

/// Mounts the container's writable layer (the image store's own mount of it) on a new
/// directory in the container's directory, for a container whose root is not mounted.
fn mount_rw_layer(ctx: &Arc<Context>, c: &Container) -> Result<tempfile::TempDir> {
    let spec = ctx
        .images
        .rw_layer_mount(&c.id)
        .map_err(|_| EngineError::Internal(format!("no writable layer for container {}", c.id)))?;
    let dir = tempfile::Builder::new()
        .prefix("cp-")
        .tempdir_in(ctx.container_dir(&c.id))
        .map_err(internal("creating a mount point"))?;
    ctx.host
        .kernel
        .mount(&spec.fstype, &spec.source, dir.path(), &spec.options)
        .map_err(internal("mounting the container root"))?;
    Ok(dir)
}

/// Opens the container's root filesystem. The caller holds `c.op`.
pub(crate) fn open_rootfs(ctx: &Arc<Context>, c: &Container) -> Result<Root> {
    let mounted = ctx.container_dir(&c.id).join("rootfs");
    if c.running() && ctx.host.kernel.is_mounted(&mounted) {
        return Root::open(&mounted).map_err(internal("opening the container root"));
    }
    let tmp = mount_rw_layer(ctx, c)?;
    let root = Root::open(tmp.path());
    // Detached at once: only our descriptor keeps the mount alive.
    let _ = nix::mount::umount2(tmp.path(), nix::mount::MntFlags::MNT_DETACH);
    root.map_err(internal("opening the container root"))
}

/// A created or stopped container's root with its volumes and bind mounts on it, mounted on a
/// private directory of the container for one `cp` operation; everything is unmounted, and
/// the volumes released, when it is dropped. The container's operation lock keeps it from
/// starting meanwhile.
struct StoppedTree {
    dir: tempfile::TempDir,
    ctx: Arc<Context>,
    container: String,
    /// Volumes mounted for this (released on drop).
    volumes: Vec<String>,
}

impl Drop for StoppedTree {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
        for v in &self.volumes {
            if let Err(e) = self.ctx.volumes.unmount(v, &self.container) {
                tracing::warn!("releasing volume {v} after cp: {e}");
            }
        }
    }
}

/// One bind of a stopped container's tree: host source, container destination, read-only.
struct TreeBind {
    source: PathBuf,
    destination: String,
    read_only: bool,
}

/// The volumes and bind mounts a container has (parents before children); named volumes are
/// mounted (held) for `tree`. A bind source that does not exist yet (the start creates it)
/// has nothing to show and is left out.
fn tree_binds(ctx: &Arc<Context>, c: &Container, tree: &mut StoppedTree) -> Result<Vec<TreeBind>> {
    let rec = c.record();
    let mut binds = Vec::new();
    for b in &rec.host_config.binds {
        if let Ok(crate::spec::VolumeSpec::Bind(b)) = crate::spec::parse_volume_spec(b) {
            binds.push(TreeBind {
                source: PathBuf::from(&b.source),
                destination: b.destination.clone(),
                read_only: b.read_only,
            });
        }
    }
    for m in rec.host_config.mounts.iter().filter(|m| m.kind == "bind") {
        binds.push(TreeBind {
            source: PathBuf::from(&m.source),
            destination: m.target.clone(),
            read_only: m.read_only,
        });
    }
    for v in &rec.volumes {
        let source = if v.name.is_empty() {
            PathBuf::from(&v.source)
        } else {
            let p = ctx.volumes.mount(&v.name, &c.id)?;
            tree.volumes.push(v.name.clone());
            p
        };
        binds.push(TreeBind {
            source,
            destination: v.destination.clone(),
            read_only: v.read_only,
        });
    }
    binds.retain(|b| b.source.exists());
    binds.sort_by_key(|b| b.destination.split('/').filter(|p| !p.is_empty()).count());
    Ok(binds)
}

/// Mounts `b` on the tree at `root`: the destination is resolved (and made, as the runtime
/// would at start) inside the root, and the bind goes on that very inode (through
/// `/proc/self/fd`), so no link in the container's files can send it elsewhere.
fn bind_into(root: &Root, b: &TreeBind) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let fail = |what: &str| {
        let d = b.destination.clone();
        let what = what.to_string();
        move |e: std::io::Error| EngineError::Internal(format!("{what} {d} for cp: {e}"))
    };
    let dest = if b.source.is_dir() {
        root.mkdir_all(&b.destination).map_err(fail("making"))?
    } else {
        let resolved = root.resolve(&b.destination).map_err(fail("resolving"))?;
        let (parent, name) = parent_and_name(&resolved);
        let pfd = root
            .mkdir_all(&parent)
            .map_err(fail("making the parent of"))?;
        if lstat_at(pfd.as_raw_fd(), &name)
            .map_err(fail("inspecting"))?
            .is_none()
        {
            nix::sys::stat::mknodat(
                Some(pfd.as_raw_fd()),
                name.as_str(),
                nix::sys::stat::SFlag::S_IFREG,
                nix::sys::stat::Mode::from_bits_truncate(0o755),
                0,
            )
            .map_err(|e| fail("making")(e.into()))?;
        }
        root.open_in(&resolved, libc::O_PATH | libc::O_NOFOLLOW)
            .map_err(fail("opening"))?
    };
    let target = format!("/proc/self/fd/{}", dest.as_raw_fd());
    mount(
        Some(b.source.as_path()),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| fail("binding")(e.into()))?;
    if b.read_only {
        // The bind's own root, reached the same confined way.
        let top = root
            .open_in(&b.destination, libc::O_PATH)
            .map_err(fail("opening"))?;
        let target = format!("/proc/self/fd/{}", top.as_raw_fd());
        mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| fail("making read-only")(e.into()))?;
    }
    Ok(())
}

/// A created or stopped container's root with its volumes and bind mounts (see
/// [`StoppedTree`]). The caller holds `c.op`.
fn open_stopped_tree(ctx: &Arc<Context>, c: &Container) -> Result<(Root, StoppedTree)> {
    use nix::mount::{mount, MsFlags};
    let dir = mount_rw_layer(ctx, c)?;
    let mut tree = StoppedTree {
        dir,
        ctx: ctx.clone(),
        container: c.id.clone(),
        volumes: Vec::new(),
    };
    // Nothing bound here may show up in another mount namespace.
    mount(
        None::<&str>,
        tree.dir.path(),
        None::<&str>,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| EngineError::Internal(format!("making the cp mount private: {e}")))?;
    let root = Root::open(tree.dir.path()).map_err(internal("opening the container root"))?;
    for b in tree_binds(ctx, c, &mut tree)? {
        bind_into(&root, &b)?;
    }
    Ok((root, tree))
}

/// A running container's root as its own processes see it, with its volumes and bind
/// mounts (`/proc/<pid>/root`: lookups from there walk the container's mount namespace).
fn open_mounted_view(c: &Container) -> Option<Root> {
    let pid = c.rec.lock().unwrap().state.pid;
    if pid <= 0 || !c.running() {
        return None;
    }
    let root = Root::open(Path::new(&format!("/proc/{pid}/root"))).ok()?;
    // The pid must still be the container's after the open.
    (c.running() && c.rec.lock().unwrap().state.pid == pid).then_some(root)
}

/// Runs `f` on the container's root (blocking), holding its operation lock. With
/// `with_mounts`, a running container is seen with its volumes and bind mounts, as
/// `docker cp` sees it.
async fn with_rootfs<T: Send + 'static>(
    ctx: &Arc<Context>,
    key: &str,
    with_mounts: bool,
    f: impl FnOnce(&Root, &Container) -> Result<T> + Send + 'static,
) -> Result<T> {
    let c: Arc<Container> = ctx.lookup(key)?;
    let _op = c.op.lock().await;
    let mut tree = None;
    let root = match with_mounts.then(|| open_mounted_view(&c)).flatten() {
        Some(r) => r,
        None if with_mounts && !c.running() => {
            let (root, t) = open_stopped_tree(ctx, &c)?;
            tree = Some(t);
            root
        }
        None => open_rootfs(ctx, &c)?,
    };
    let c2 = c.clone();
    let out = blocking(move || f(&root, &c2)).await;
    drop(tree);
    out
}

/// `HEAD /containers/{id}/archive?path=`.
pub(crate) async fn container_stat_path(
    ctx: &Arc<Context>,
    key: &str,
    path: &str,
) -> Result<PathStat> {
    let (k, p) = (key.to_string(), checked_path(path)?);
    with_rootfs(
        ctx,
        key,
        true,
        move |root, _| Ok(locate(root, &p, &k)?.stat),
    )
    .await
}

/// `GET /containers/{id}/archive?path=`: the stat and a spooled tar of the path, its
/// entries named after the path's last element.
pub(crate) async fn container_archive(
    ctx: &Arc<Context>,
    key: &str,
    path: &str,
) -> Result<(PathStat, File)> {
    let (k, p) = (key.to_string(), checked_path(path)?);
    let out = spool_file(ctx)?;
    with_rootfs(ctx, key, true, move |root, _| {
        let loc = locate(root, &p, &k)?;
        let tar_name = if loc.stat.name == "/" {
            ".".to_string()
        } else {
            loc.stat.name.clone()
        };
        let f = write_tar(root, &loc.resolved, &tar_name, out)?;
        Ok((loc.stat, f))
    })
    .await
}

/// `PUT /containers/{id}/archive?path=`: extracts `archive` into the directory `path`
/// (a final symlink followed inside the container).
pub(crate) async fn container_extract(
    ctx: &Arc<Context>,
    key: &str,
    path: &str,
    archive: File,
    no_overwrite_dir_non_dir: bool,
    copy_uid_gid: bool,
) -> Result<()> {
    let (k, p) = (key.to_string(), checked_path(path)?);
    with_rootfs(ctx, key, true, move |root, c| {
        let abs = abs_path(&p);
        let resolved = root.resolve(&abs).map_err(path_error("resolving path"))?;
        let fd = root.open_in(&resolved, libc::O_PATH).map_err(|e| {
            if is_missing(&e) {
                not_found(&p, &k)
            } else {
                path_error(&format!("stat {p}"))(e)
            }
        })?;
        let st = fstat(fd.as_raw_fd()).map_err(internal("stat"))?;
        if !inroot::is_type(&st, libc::S_IFDIR) {
            return Err(EngineError::InvalidArgument(
                "extraction point is not a directory".into(),
            ));
        }
        let rec = c.record();
        if rec.host_config.readonly_rootfs {
            return Err(EngineError::Forbidden(
                "container rootfs is marked read-only".into(),
            ));
        }
        let owner = if copy_uid_gid {
            let u = crate::user::lookup(root, &rec.config.user, &[])
                .map_err(EngineError::InvalidArgument)?;
            Some((u.uid, u.gid))
        } else {
            None
        };
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir,
            owner,
        };
        extract::extract(
            root,
            &resolved,
            BufReader::with_capacity(1 << 16, archive),
            &opts,
        )
        .map_err(|e| match e {
            ExtractError::Invalid(m) => EngineError::InvalidArgument(m),
            e @ ExtractError::Io { .. } => EngineError::Internal(e.to_string()),
        })
    })
    .await
}

/// `GET /containers/{id}/export`: the container's flattened root filesystem as a tar.
pub(crate) async fn container_export(ctx: &Arc<Context>, key: &str) -> Result<File> {
    let out = spool_file(ctx)?;
    with_rootfs(ctx, key, false, move |root, _| {
        write_tar(root, "/", "", out)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_a_nul_byte_is_the_clients_error() {
        assert!(matches!(
            checked_path("/a\0b"),
            Err(EngineError::InvalidArgument(m)) if m.contains("NUL")
        ));
        assert_eq!(checked_path("/etc").unwrap(), "/etc");
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o4644), (1 << 23) | 0o644);
        assert_eq!(
            go_file_mode(libc::S_IFCHR | 0o666),
            (1 << 26) | (1 << 21) | 0o666
        );
    }

    #[test]
    fn stat_json_shape() {
        let s = PathStat {
            name: "f".into(),
            size: 3,
            mode: 0o644,
            mtime: rfc3339(0, 0),
            link_target: String::new(),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"f","size":3,"mode":420,"mtime":"1970-01-01T00:00:00Z","linkTarget":""})
        );
    }

    #[test]
    fn locate_follows_directory_links_not_the_last() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("r");
        std::fs::create_dir_all(r.join("real/sub")).unwrap();
        std::fs::write(r.join("real/sub/f"), "abc").unwrap();
        std::os::unix::fs::symlink("/real", r.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        let root = Root::open(&r).unwrap();
        let l = locate(&root, "/link/sub/f", "c").unwrap();
        assert_eq!((l.stat.name.as_str(), l.stat.size), ("f", 3));
        assert_eq!(l.resolved, "/real/sub/f");
        let l = locate(&root, "/link", "c").unwrap();
        assert_eq!(l.stat.link_target, "/real");
        assert_eq!(l.stat.mode & (1 << 27), 1 << 27);
        let l = locate(&root, "/up", "c").unwrap();
        assert_eq!(l.stat.link_target, "/");
        let l = locate(&root, "/link/.", "c").unwrap();
        assert_eq!((l.stat.name.as_str(), l.resolved.as_str()), (".", "/real"));
        match locate(&root, "/nope", "c") {
            Err(EngineError::NotFound(m)) => {
                assert_eq!(m, "Could not find the file /nope in container c")
            }
            other => panic!("{:?}", other.map(|l| l.stat)),
        }
        assert_eq!(parent_and_name("/"), ("/".into(), ".".into()));
        assert_eq!(parent_and_name("/a"), ("/".into(), "a".into()));
        assert_eq!(parent_and_name("/a/b"), ("/a".into(), "b".into()));
    }
}
