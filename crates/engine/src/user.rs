//! Resolving `--user` (`name`, `uid`, `name:group`, `uid:gid`) against the container's own
//! `/etc/passwd` and `/etc/group`, as Docker does at start.
//!
//! Those files are the container's: hostile input to the daemon. [`lookup_in_root`] reads them
//! inside the container's root only (a link to a host path names the container's own path),
//! never opens a FIFO or device (a file that is not a regular one reads as absent, as a missing
//! one does), reads at most [`USER_DB_LIMIT`] bytes, and runs on a blocking thread under a
//! deadline ([`lookup_in_container`]), so a container can neither hang nor grow the daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_sys::root::{ReadError, Root};

use crate::error::EngineError;

/// The most of a container's `/etc/passwd` or `/etc/group` the daemon reads.
pub const USER_DB_LIMIT: u64 = 8 << 20;

/// How long a lookup in a container's files may take before the request fails.
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(10);

/// The process identity the runtime sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or("/"),
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || l.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (empty = root) with the container's passwd and group file contents.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let (uid, mut gid, name, home) = if let Ok(uid) = user.parse::<u32>() {
        match passwd_entries(passwd).find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, Some(e.name.to_string()), e.home.to_string()),
            None => (uid, 0, None, "/".to_string()),
        }
    } else {
        let e = passwd_entries(passwd)
            .find(|e| e.name == user)
            .ok_or_else(|| {
                format!("unable to find user {user}: no matching entries in passwd file")
            })?;
        (e.uid, e.gid, Some(e.name.to_string()), e.home.to_string())
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|(n, _, _)| *n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let Some(name) = &name {
        for (_, id, members) in group_entries(group) {
            if members.contains(&name.as_str()) && id != gid && !additional_gids.contains(&id) {
                additional_gids.push(id);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Adds `--group-add` entries (gids, or group names from the container's group file) to the
/// user's supplementary groups, as dockerd does for the container's process and its execs.
pub fn add_groups(
    mut u: ResolvedUser,
    add: &[String],
    group: &str,
) -> Result<ResolvedUser, String> {
    for g in add {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|(n, _, _)| n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| {
                    format!("Unable to find group {g}: no matching entries in group file")
                })?,
        };
        if !u.additional_gids.contains(&gid) {
            u.additional_gids.push(gid);
        }
    }
    Ok(u)
}

/// One user database file of the container (`/etc/passwd`, `/etc/group`): absent, or not a
/// regular file (a FIFO, a device, a directory), reads as empty, as a missing one does in
/// Docker; one over [`USER_DB_LIMIT`] is an error.
fn read_user_db(root: &Root, path: &str) -> Result<String, String> {
    match root.read_regular(path, USER_DB_LIMIT) {
        Ok(data) => Ok(String::from_utf8_lossy(&data).into_owned()),
        Err(ReadError::Missing(_)) => Ok(String::new()),
        Err(e @ ReadError::NotRegular { .. }) => {
            tracing::debug!("ignoring the container's {e}");
            Ok(String::new())
        }
        Err(e) => Err(format!("unable to read the container's user database: {e}")),
    }
}

/// Resolves `spec` against the passwd and group files inside `rootfs` (a directory on the
/// host holding the container's root), reading them confined to it. Blocking.
pub fn lookup_in_root(
    spec: &str,
    group_add: &[String],
    rootfs: &Path,
) -> Result<ResolvedUser, String> {
    let root = Root::open(rootfs)
        .map_err(|e| format!("opening the container's root {}: {e}", rootfs.display()))?;
    lookup(&root, spec, group_add)
}

/// Resolves `spec` (plus the `--group-add` groups) against the passwd and group files inside
/// an opened root. Blocking.
pub fn lookup(root: &Root, spec: &str, group_add: &[String]) -> Result<ResolvedUser, String> {
    let passwd = read_user_db(root, "/etc/passwd")?;
    let group = read_user_db(root, "/etc/group")?;
    add_groups(resolve(spec, &passwd, &group)?, group_add, &group)
}

/// [`lookup_in_root`] off the async workers, failing after [`LOOKUP_DEADLINE`].
pub async fn lookup_in_container(
    spec: &str,
    group_add: &[String],
    rootfs: PathBuf,
) -> Result<ResolvedUser, EngineError> {
    let spec = spec.to_string();
    let group_add = group_add.to_vec();
    off_workers(LOOKUP_DEADLINE, move || {
        lookup_in_root(&spec, &group_add, &rootfs)
    })
    .await
}

/// Runs `f` on a blocking thread; an error after `deadline` (the thread is left to finish).
async fn off_workers<T: Send + 'static>(
    deadline: Duration,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, EngineError> {
    match tokio::time::timeout(deadline, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r.map_err(EngineError::InvalidArgument),
        Ok(Err(e)) => Err(EngineError::Internal(format!("user lookup failed: {e}"))),
        Err(_) => Err(EngineError::Internal(format!(
            "reading the container's /etc/passwd and /etc/group took longer than {deadline:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n";

    fn rootfs(passwd: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(t.path().join("etc/group"), GROUP).unwrap();
        t
    }

    #[test]
    fn lookup_reads_the_containers_own_files() {
        let t = rootfs(PASSWD);
        let app = lookup_in_root("app", &[], t.path()).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1000, vec![10])
        );
    }

    #[test]
    fn a_link_to_a_host_file_never_reads_the_host_file() {
        let host = tempfile::tempdir().unwrap();
        let evil = host.path().join("passwd");
        std::fs::write(&evil, "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        let t = rootfs("");
        std::fs::remove_file(t.path().join("etc/passwd")).unwrap();
        symlink(&evil, t.path().join("etc/passwd")).unwrap();
        assert_eq!(
            lookup_in_root("evil", &[], t.path()).unwrap_err(),
            "unable to find user evil: no matching entries in passwd file"
        );
        // The same spelling inside the root is followed, as Docker's FollowSymlinkInScope.
        let inside = t.path().join(evil.strip_prefix("/").unwrap());
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        std::fs::write(&inside, "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        assert_eq!(lookup_in_root("evil", &[], t.path()).unwrap().uid, 4242);
    }

    #[test]
    fn fifos_and_devices_read_as_absent_and_do_not_block() {
        let t = rootfs("");
        std::fs::remove_file(t.path().join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &t.path().join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(lookup_in_root("nobody", &[], t.path())
            .unwrap_err()
            .contains("unable to find user nobody"));
        assert_eq!(lookup_in_root("0", &[], t.path()).unwrap().uid, 0);
        std::fs::remove_file(t.path().join("etc/passwd")).unwrap();
        symlink("/dev/zero", t.path().join("etc/passwd")).unwrap();
        std::fs::create_dir_all(t.path().join("dev")).unwrap();
        symlink("/proc/self/root/dev/zero", t.path().join("dev/zero")).unwrap();
        assert!(lookup_in_root("nobody", &[], t.path()).is_err());
        assert_eq!(lookup_in_root("", &[], t.path()).unwrap().uid, 0);
    }

    #[test]
    fn an_oversized_passwd_is_an_error_not_a_read() {
        let t = rootfs("");
        let f = std::fs::File::create(t.path().join("etc/passwd")).unwrap();
        f.set_len(USER_DB_LIMIT * 1024).unwrap();
        let e = lookup_in_root("", &[], t.path()).unwrap_err();
        assert!(
            e.contains("/etc/passwd is larger than 8388608 bytes"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_lookup_that_takes_too_long_fails_at_its_deadline() {
        let slow = || {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        };
        let started = std::time::Instant::now();
        let r = off_workers(Duration::from_millis(50), slow).await;
        assert!(matches!(r, Err(EngineError::Internal(m)) if m.contains("took longer")));
        assert!(started.elapsed() < Duration::from_secs(1));
        let t = rootfs(PASSWD);
        let ok = lookup_in_container("app", &[], t.path().to_path_buf()).await;
        assert_eq!(ok.unwrap().uid, 1000);
    }

    #[test]
    fn group_add_takes_ids_and_the_containers_group_names_once() {
        let app = resolve("app", PASSWD, GROUP).unwrap();
        let g = ["wheel", "4242", "nogroup", "4242"].map(String::from);
        let u = add_groups(app, &g, GROUP).unwrap();
        assert_eq!(u.additional_gids, vec![10, 4242, 65534]);
        let e = add_groups(u, &["nosuch".into()], GROUP).unwrap_err();
        assert_eq!(
            e,
            "Unable to find group nosuch: no matching entries in group file"
        );
    }

    #[test]
    fn resolves_names_ids_and_groups() {
        assert_eq!(
            resolve("", PASSWD, GROUP).unwrap(),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        let app = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1000, vec![10])
        );
        assert_eq!(resolve("65534", PASSWD, GROUP).unwrap().gid, 65534);
        assert_eq!(
            resolve("4242:4243", PASSWD, GROUP).unwrap(),
            ResolvedUser {
                uid: 4242,
                gid: 4243,
                additional_gids: vec![],
                home: "/".into()
            }
        );
        assert_eq!(resolve("nobody:wheel", PASSWD, GROUP).unwrap().gid, 10);
        assert!(resolve("ghost", PASSWD, GROUP)
            .unwrap_err()
            .contains("unable to find user ghost"));
        assert!(resolve("app:ghosts", PASSWD, GROUP).is_err());
    }
}
