//! Volumes as containers use them: `-v NAME:/dst`, `-v /dst` (anonymous), `--mount
//! type=volume`, the image's `VOLUME`s and `--volumes-from`, resolved when a container is
//! created, mounted (with Docker's copy-up of the image's content into an empty volume) when
//! it starts, released when it stops, and the `/volumes` operations with Docker's in-use rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_api::{
    ContainerConfig, HostConfig, MountPoint, Volume, VolumeCreateRequest, VolumeListResponse,
    VolumePruneResponse, VolumeUsageData,
};
use berth_volume::{VolumeError, VolumeRecord};

use crate::container::{ContainerRecord, VolumeMount};
use crate::context::Context;
use crate::spec::{self, VolumeBind, VolumeSpec};
use crate::{EngineError, Filters, Result};
use std::sync::Arc;

/// What a new volume is made with: labels, driver, driver options.
type NewVolume = (BTreeMap<String, String>, String, BTreeMap<String, String>);

/// A volume the create will make, or reuse.
struct Planned {
    mount: VolumeMount,
    /// `Some` when the volume must be made.
    create: Option<NewVolume>,
}

impl From<VolumeError> for EngineError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::NotFound(_) => EngineError::NotFound(e.to_string()),
            VolumeError::InvalidArgument(m) => EngineError::InvalidArgument(m),
            VolumeError::Conflict(m) => EngineError::Conflict(m),
            e @ VolumeError::Io { .. } => EngineError::Internal(e.to_string()),
        }
    }
}

/// Resolves the volumes a new container asks for and makes the ones that do not exist
/// (answered second, for the caller to undo if the create fails later). On error nothing
/// is left made.
pub(crate) fn create_volumes(
    ctx: &Arc<Context>,
    cfg: &ContainerConfig,
    host: &HostConfig,
) -> Result<(Vec<VolumeMount>, Vec<String>)> {
    let planned = plan_volumes(ctx, cfg, host)?;
    let mut made: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for p in planned {
        let mut m = p.mount;
        if let Some((labels, driver, opts)) = p.create {
            let name = (!m.anonymous).then_some(m.name.as_str());
            match ctx.volumes.create(name, &driver, labels, opts) {
                Ok((rec, created)) => {
                    if created {
                        made.push(rec.name.clone());
                        ctx.event(
                            "volume",
                            "create",
                            &rec.name,
                            &[("driver", rec.driver.clone())],
                        );
                    }
                    m.name = rec.name;
                }
                Err(e) => {
                    remove_volumes_quietly(ctx, &made);
                    return Err(e.into());
                }
            }
        }
        out.push(m);
    }
    Ok((out, made))
}

/// Removes volumes a failed create made.
pub(crate) fn remove_volumes_quietly(ctx: &Arc<Context>, names: &[String]) {
    for n in names {
        if let Err(e) = ctx.volumes.remove(n) {
            tracing::warn!("removing volume {n}: {e}");
        }
    }
}

fn plan_volumes(
    ctx: &Arc<Context>,
    cfg: &ContainerConfig,
    host: &HostConfig,
) -> Result<Vec<Planned>> {
    let mut out: Vec<Planned> = Vec::new();
    let mut dests: BTreeSet<String> = BTreeSet::new();
    let mut claim = |d: &str| -> Result<()> {
        if !dests.insert(d.to_string()) {
            return Err(EngineError::InvalidArgument(format!(
                "Duplicate mount point: {d}"
            )));
        }
        Ok(())
    };
    let local = || (BTreeMap::new(), "local".to_string(), BTreeMap::new());
    for b in &host.binds {
        match spec::parse_volume_spec(b).map_err(EngineError::InvalidArgument)? {
            VolumeSpec::Bind(b) => claim(&b.destination)?,
            VolumeSpec::Named {
                name,
                destination,
                read_only,
                no_copy,
            } => {
                claim(&destination)?;
                berth_volume::validate_name(&name)?;
                let exists = ctx.volumes.get(&name).is_ok();
                out.push(Planned {
                    mount: VolumeMount {
                        name,
                        destination,
                        read_only,
                        no_copy,
                        mode: "z".into(),
                        ..Default::default()
                    },
                    create: (!exists).then(local),
                });
            }
            VolumeSpec::Anonymous { destination } => {
                claim(&destination)?;
                out.push(anonymous(destination, local()));
            }
        }
    }
    for m in &host.mounts {
        if m.kind != "volume" {
            claim(&m.target)?;
            continue;
        }
        if !m.target.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "invalid mount config for type \"volume\": invalid mount path: '{}' mount path must be absolute",
                m.target
            )));
        }
        claim(&m.target)?;
        let vo = m.volume_options.clone().unwrap_or_default();
        let (driver, opts) = vo
            .driver_config
            .map(|d| (d.name, d.options))
            .unwrap_or_default();
        let driver = if driver.is_empty() {
            "local".into()
        } else {
            driver
        };
        if m.source.is_empty() {
            let mut p = anonymous(m.target.clone(), (vo.labels, driver, opts));
            p.mount.read_only = m.read_only;
            p.mount.no_copy = vo.no_copy;
            out.push(p);
            continue;
        }
        berth_volume::validate_name(&m.source)?;
        let exists = ctx.volumes.get(&m.source).is_ok();
        out.push(Planned {
            mount: VolumeMount {
                name: m.source.clone(),
                destination: m.target.clone(),
                read_only: m.read_only,
                no_copy: vo.no_copy,
                ..Default::default()
            },
            create: (!exists).then_some((vo.labels, driver, opts)),
        });
    }
    for d in host.tmpfs.keys() {
        claim(d)?;
    }
    for from in &host.volumes_from {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m)) if ["ro", "rw", "z", "Z"].contains(&m) => (n, m),
            _ => (from.as_str(), ""),
        };
        // A missing source is bad input (400), not a missing object: a 404 would send
        // the docker CLI off to pull the image.
        let other = ctx.lookup(name).map_err(|e| match e {
            EngineError::NotFound(m) => EngineError::InvalidArgument(m),
            e => e,
        })?;
        let rec = other.record();
        for v in &rec.volumes {
            if dests.contains(&v.destination) {
                continue;
            }
            dests.insert(v.destination.clone());
            let mut m = v.clone();
            m.anonymous = false;
            if !mode.is_empty() && mode != "z" && mode != "Z" {
                m.read_only = mode == "ro";
            }
            out.push(Planned {
                mount: m,
                create: None,
            });
        }
        for b in &rec.host_config.binds {
            if let Ok(VolumeSpec::Bind(b)) = spec::parse_volume_spec(b) {
                if dests.insert(b.destination.clone()) {
                    out.push(Planned {
                        mount: VolumeMount {
                            source: b.source,
                            destination: b.destination,
                            read_only: if mode.is_empty() {
                                b.read_only
                            } else {
                                mode == "ro"
                            },
                            ..Default::default()
                        },
                        create: None,
                    });
                }
            }
        }
    }
    for d in cfg.volumes.iter().flat_map(|v| v.keys()) {
        let d = if d.starts_with('/') {
            d.clone()
        } else {
            format!("/{d}")
        };
        if dests.contains(&d) {
            continue;
        }
        dests.insert(d.clone());
        out.push(anonymous(d, local()));
    }
    Ok(out)
}

/// At start: each volume ready on the host, the image's content copied into an empty new
/// volume (Docker's copy-up); answers the binds for the runtime spec.
pub(crate) fn mount_volumes(
    ctx: &Arc<Context>,
    rec: &ContainerRecord,
    rootfs: &Path,
) -> Result<Vec<VolumeBind>> {
    let mut binds = Vec::new();
    for (i, v) in rec.volumes.iter().enumerate() {
        if v.name.is_empty() {
            binds.push(VolumeBind {
                source: PathBuf::from(&v.source),
                destination: v.destination.clone(),
                read_only: v.read_only,
            });
            continue;
        }
        let source = match ctx.volumes.mount(&v.name, &rec.id) {
            Ok(s) => s,
            Err(e) => {
                release_some(ctx, &rec.volumes[..i], &rec.id);
                return Err(e.into());
            }
        };
        if !v.no_copy {
            if let Err(e) = copy_up(rootfs, &v.destination, &source) {
                release_some(ctx, &rec.volumes[..=i], &rec.id);
                return Err(e);
            }
        }
        binds.push(VolumeBind {
            source,
            destination: v.destination.clone(),
            read_only: v.read_only,
        });
    }
    Ok(binds)
}

fn release_some(ctx: &Arc<Context>, mounts: &[VolumeMount], user: &str) {
    for v in mounts.iter().filter(|v| !v.name.is_empty()) {
        if let Err(e) = ctx.volumes.unmount(&v.name, user) {
            tracing::warn!("releasing volume {}: {e}", v.name);
        }
    }
}

/// After the container stops (or failed to start): device volumes it alone held are
/// unmounted.
pub(crate) fn release_volumes(ctx: &Arc<Context>, rec: &ContainerRecord) {
    release_some(ctx, &rec.volumes, &rec.id);
}

/// After a daemon restart: a running container's device volumes are still mounted.
pub(crate) fn adopt_volumes(ctx: &Arc<Context>, rec: &ContainerRecord) {
    for v in rec.volumes.iter().filter(|v| !v.name.is_empty()) {
        ctx.volumes.adopt(&v.name, &rec.id);
    }
}

/// `rm -v` / `--rm`: the container's anonymous volumes that no other container uses.
pub(crate) fn remove_anonymous_volumes(ctx: &Arc<Context>, rec: &ContainerRecord) {
    for v in rec.volumes.iter().filter(|v| v.anonymous) {
        if volume_users(ctx, &v.name).iter().any(|u| *u != rec.id) {
            continue;
        }
        match ctx.volumes.remove(&v.name) {
            Ok(()) => ctx.event("volume", "destroy", &v.name, &[("driver", "local".into())]),
            Err(e) => tracing::warn!("removing volume {}: {e}", v.name),
        }
    }
}

/// Ids of the containers (running or not) that mount the volume.
pub(crate) fn volume_users(ctx: &Arc<Context>, name: &str) -> Vec<String> {
    ctx.containers
        .lock()
        .unwrap()
        .values()
        .filter(|c| c.rec.lock().unwrap().volumes.iter().any(|v| v.name == name))
        .map(|c| c.id.clone())
        .collect()
}

/// `Mounts` entries for the container's volumes.
pub(crate) fn volume_mount_points(ctx: &Arc<Context>, rec: &ContainerRecord) -> Vec<MountPoint> {
    rec.volumes
        .iter()
        .map(|v| {
            if v.name.is_empty() {
                MountPoint {
                    kind: "bind".into(),
                    source: v.source.clone(),
                    destination: v.destination.clone(),
                    rw: !v.read_only,
                    propagation: "rprivate".into(),
                    ..Default::default()
                }
            } else {
                MountPoint {
                    kind: "volume".into(),
                    name: v.name.clone(),
                    source: ctx.volumes.data_path(&v.name).to_string_lossy().into(),
                    destination: v.destination.clone(),
                    driver: "local".into(),
                    mode: v.mode.clone(),
                    rw: !v.read_only,
                    propagation: String::new(),
                }
            }
        })
        .collect()
}

pub(crate) async fn volume_create(ctx: &Arc<Context>, req: VolumeCreateRequest) -> Result<Volume> {
    let store = ctx.volumes.clone();
    let rec = tokio::task::spawn_blocking(move || {
        let name = (!req.name.is_empty()).then_some(req.name.as_str());
        store.create(name, &req.driver, req.labels, req.driver_opts)
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))??
    .0;
    ctx.event(
        "volume",
        "create",
        &rec.name,
        &[("driver", rec.driver.clone())],
    );
    Ok(ctx.volumes.view(&rec))
}

pub(crate) fn volume_inspect(ctx: &Arc<Context>, name: &str) -> Result<Volume> {
    let rec = ctx.volumes.get(name)?;
    Ok(ctx.volumes.view(&rec))
}

pub(crate) fn volume_list(ctx: &Arc<Context>, filters: &Filters) -> Result<VolumeListResponse> {
    let used = used_volume_names(ctx);
    let mut volumes = Vec::new();
    for rec in ctx.volumes.list() {
        if volume_matches(&rec, filters, used.contains(&rec.name))? {
            volumes.push(ctx.volumes.view(&rec));
        }
    }
    Ok(VolumeListResponse {
        volumes,
        warnings: vec![],
    })
}

fn used_volume_names(ctx: &Arc<Context>) -> BTreeSet<String> {
    ctx.containers
        .lock()
        .unwrap()
        .values()
        .flat_map(|c| {
            c.rec
                .lock()
                .unwrap()
                .volumes
                .iter()
                .map(|v| v.name.clone())
                .collect::<Vec<_>>()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Refused while any container, running or not, uses it (unless `force`, which Docker
/// also refuses for a volume in use).
pub(crate) async fn volume_remove(ctx: &Arc<Context>, name: &str, force: bool) -> Result<()> {
    let rec = match ctx.volumes.get(name) {
        Ok(r) => r,
        Err(_) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let users = volume_users(ctx, &rec.name);
    if !users.is_empty() {
        return Err(EngineError::Conflict(format!(
            "remove {}: volume is in use - [{}]",
            rec.name,
            users.join(", ")
        )));
    }
    let store = ctx.volumes.clone();
    let n = rec.name.clone();
    tokio::task::spawn_blocking(move || store.remove(&n))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
    ctx.event(
        "volume",
        "destroy",
        &rec.name,
        &[("driver", rec.driver.clone())],
    );
    Ok(())
}

/// Unused volumes go: only anonymous ones unless `all=true` (Docker 23+); `label`
/// filters narrow it.
pub(crate) async fn volume_prune(
    ctx: &Arc<Context>,
    filters: &Filters,
) -> Result<VolumePruneResponse> {
    for k in filters.keys() {
        if !["label", "label!", "all"].contains(&k.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            )));
        }
    }
    let all = filters
        .get("all")
        .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
    let used = used_volume_names(ctx);
    let mut resp = VolumePruneResponse::default();
    for rec in ctx.volumes.list() {
        if used.contains(&rec.name) || (!all && !rec.anonymous()) {
            continue;
        }
        if !labels_match(&rec.labels, filters) {
            continue;
        }
        let size = ctx.volumes.size(&rec.name);
        let store = ctx.volumes.clone();
        let n = rec.name.clone();
        let removed = tokio::task::spawn_blocking(move || store.remove(&n))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        if removed.is_ok() {
            ctx.event(
                "volume",
                "destroy",
                &rec.name,
                &[("driver", rec.driver.clone())],
            );
            resp.space_reclaimed += size;
            resp.volumes_deleted.push(rec.name);
        }
    }
    Ok(resp)
}

/// Every volume with its size and reference count (`system df`).
pub(crate) fn volume_usage(ctx: &Arc<Context>) -> Vec<Volume> {
    let mut refs: BTreeMap<String, i64> = BTreeMap::new();
    for c in ctx.containers.lock().unwrap().values() {
        for v in &c.rec.lock().unwrap().volumes {
            *refs.entry(v.name.clone()).or_default() += 1;
        }
    }
    ctx.volumes
        .list()
        .iter()
        .map(|rec| {
            let mut v = ctx.volumes.view(rec);
            v.usage_data = Some(VolumeUsageData {
                size: ctx.volumes.size(&rec.name) as i64,
                ref_count: refs.get(&rec.name).copied().unwrap_or(0),
            });
            v
        })
        .collect()
}

fn anonymous(destination: String, create: NewVolume) -> Planned {
    Planned {
        mount: VolumeMount {
            destination,
            anonymous: true,
            ..Default::default()
        },
        create: Some(create),
    }
}

fn labels_match(labels: &BTreeMap<String, String>, filters: &Filters) -> bool {
    let has = |f: &str| match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f),
    };
    filters
        .get("label")
        .is_none_or(|fs| fs.iter().all(|f| has(f)))
        && filters
            .get("label!")
            .is_none_or(|fs| fs.iter().all(|f| !has(f)))
}

/// `GET /volumes` filters: `dangling`, `name` (substring), `label`, `driver`.
fn volume_matches(rec: &VolumeRecord, filters: &Filters, used: bool) -> Result<bool> {
    for (k, vals) in filters {
        let ok = match k.as_str() {
            "dangling" => {
                let want = match vals.first().map(String::as_str) {
                    Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(v) => {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid filter 'dangling={v}'"
                        )))
                    }
                    None => continue,
                };
                used != want
            }
            "name" => vals.iter().any(|v| rec.name.contains(v.as_str())),
            "driver" => vals.contains(&rec.driver),
            "label" | "label!" => {
                labels_match(&rec.labels, &Filters::from([(k.clone(), vals.clone())]))
            }
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{other}'"
                )))
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Docker's copy-up: an empty volume receives what the image has at the mount path (owners,
/// modes, times, links and hard links kept). The mount path is resolved inside the container's
/// root (`openat2(RESOLVE_IN_ROOT)`, so its symlinks never reach a host path) and the tree is
/// copied by descriptors, never following a link ([`berth_sys::copy`]). A mount path that is
/// missing or not a directory in the image copies nothing.
fn copy_up(rootfs: &Path, destination: &str, volume: &Path) -> Result<()> {
    let fail = |e: std::io::Error| {
        EngineError::Internal(format!("copying image content into volume: {e}"))
    };
    let root = berth_sys::Root::open(rootfs).map_err(fail)?;
    let src = match root.open_in(destination, libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(fail(e)),
    };
    let empty = std::fs::read_dir(volume)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let dst = std::fs::File::open(volume).map_err(fail)?;
    berth_sys::copy::copy_dir_contents(&src, &dst.into()).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_up_stays_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let (root, vol, host) = (
            d.path().join("root"),
            d.path().join("vol"),
            d.path().join("host"),
        );
        std::fs::create_dir_all(root.join("real/data")).unwrap();
        std::fs::create_dir_all(host.join("data")).unwrap();
        std::fs::create_dir(&vol).unwrap();
        std::fs::write(root.join("real/data/inside"), "i").unwrap();
        std::fs::write(host.join("data/outside"), "o").unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink(&host, root.join("hostlink")).unwrap();
        // An absolute link resolves inside the root.
        copy_up(&root, "/abs/data", &vol).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("inside")).unwrap(), "i");
        // `..` cannot climb out: /up/<host>/data is looked up inside the root, and missing.
        let vol2 = d.path().join("vol2");
        std::fs::create_dir(&vol2).unwrap();
        let via_up = format!("/up{}/data", host.display());
        copy_up(&root, &via_up, &vol2).unwrap();
        copy_up(&root, "/hostlink/data", &vol2).unwrap();
        assert_eq!(std::fs::read_dir(&vol2).unwrap().count(), 0);
        // A volume that is not empty is left alone; a file mount path copies nothing.
        std::fs::write(root.join("real/file"), "f").unwrap();
        copy_up(&root, "/real/file", &vol2).unwrap();
        copy_up(&root, "/real/data", &vol).unwrap();
        assert_eq!(std::fs::read_dir(&vol).unwrap().count(), 1);
    }

    #[test]
    fn volume_filters() {
        let rec = VolumeRecord {
            name: "data-1".into(),
            driver: "local".into(),
            created_at: String::new(),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            options: BTreeMap::new(),
        };
        let f = |k: &str, v: &str| Filters::from([(k.to_string(), vec![v.to_string()])]);
        assert!(volume_matches(&rec, &f("name", "data"), false).unwrap());
        assert!(!volume_matches(&rec, &f("name", "zzz"), false).unwrap());
        assert!(volume_matches(&rec, &f("dangling", "true"), false).unwrap());
        assert!(!volume_matches(&rec, &f("dangling", "true"), true).unwrap());
        assert!(volume_matches(&rec, &f("label", "a=b"), true).unwrap());
        assert!(!volume_matches(&rec, &f("label", "a=c"), true).unwrap());
        assert!(volume_matches(&rec, &f("bogus", "x"), true).is_err());
        assert!(volume_matches(&rec, &f("dangling", "maybe"), true).is_err());
    }
}
