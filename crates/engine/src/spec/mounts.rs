//! Mounts: parsing `-v` entries, and the OCI `mounts` of a container (Docker's defaults, binds,
//! volumes, tmpfs, the per-container /etc files and `--init`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::{parse_size, SpecInput, VolumeBind};

/// A bind mount parsed from `-v SRC:DST[:OPTS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation: Option<String>,
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// One `-v` / `HostConfig.Binds` entry: a host path, a named volume or an anonymous volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSpec {
    Bind(Bind),
    /// `NAME:/dest[:opts]`.
    Named {
        name: String,
        destination: String,
        read_only: bool,
        no_copy: bool,
    },
    /// `/dest`.
    Anonymous {
        destination: String,
    },
}

/// Parses a `-v` / `HostConfig.Binds` entry, as dockerd does on Linux.
pub fn parse_volume_spec(spec: &str) -> Result<VolumeSpec, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        [d] if !d.is_empty() => {
            if !d.starts_with('/') {
                return Err(format!("invalid volume specification: '{spec}': invalid mount config for type \"volume\": invalid mount path: '{d}' mount path must be absolute"));
            }
            return Ok(VolumeSpec::Anonymous {
                destination: clean_dest(d),
            });
        }
        _ => return Err(format!("invalid volume specification: '{spec}'")),
    };
    if source.is_empty() {
        return Err(format!("invalid volume specification: '{spec}'"));
    }
    let kind = if source.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    if !destination.starts_with('/') {
        return Err(format!("invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": invalid mount path: '{destination}' mount path must be absolute"));
    }
    if destination == "/" {
        return Err(format!("invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'"));
    }
    let (mut read_only, mut propagation, mut no_copy) = (false, None, false);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" if kind == "volume" => no_copy = true,
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) && kind == "bind" => propagation = Some(p.to_string()),
            other => {
                return Err(format!(
                    "invalid volume specification: '{spec}': invalid mode: {other}"
                ))
            }
        }
    }
    if kind == "volume" {
        return Ok(VolumeSpec::Named {
            name: source.into(),
            destination: clean_dest(destination),
            read_only,
            no_copy,
        });
    }
    Ok(VolumeSpec::Bind(Bind {
        source: source.into(),
        destination: clean_dest(destination),
        read_only,
        propagation,
    }))
}

/// `/a//b/` → `/a/b`.
fn clean_dest(d: &str) -> String {
    let parts: Vec<&str> = d
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Parses a `-v` entry that must be a bind mount of a host path.
pub fn parse_bind(spec: &str) -> Result<Bind, String> {
    match parse_volume_spec(spec)? {
        VolumeSpec::Bind(b) => Ok(b),
        _ => Err(format!("not a bind mount: '{spec}'")),
    }
}

/// The mount options of `--tmpfs DEST:OPTS`: `nosuid,nodev,noexec` unless the options say
/// otherwise, sizes in bytes.
fn tmpfs_options(opts: &str) -> Result<Vec<String>, String> {
    let mut out = vec![
        "nosuid".to_string(),
        "nodev".to_string(),
        "noexec".to_string(),
    ];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(v) = o.strip_prefix("size=") {
            out.push(format!("size={}", parse_size(v)?));
        } else if o == "exec" {
            out.retain(|x| x != "noexec");
        } else if o == "suid" {
            out.retain(|x| x != "nosuid");
        } else if o == "dev" {
            out.retain(|x| x != "nodev");
        } else {
            out.push(o.to_string());
        }
    }
    Ok(out)
}

/// An OCI mount with a type, a source and options.
fn mount(
    destination: impl Into<PathBuf>,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[&str],
) -> Mount {
    owned_mount(
        destination,
        typ,
        source,
        options.iter().map(|o| o.to_string()).collect(),
    )
}

fn owned_mount(
    destination: impl Into<PathBuf>,
    typ: &str,
    source: impl Into<PathBuf>,
    options: Vec<String>,
) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into())
        .set_typ(Some(typ.to_string()))
        .set_source(Some(source.into()))
        .set_options(Some(options));
    m
}

/// The container's mounts, in order: Docker's defaults, the user's (binds, volumes, `--mount`,
/// `--tmpfs`; parents before children), the /etc files the user did not mount over, and
/// `--init`'s binary (whose path is then put before `args`).
pub(super) fn mounts(inp: &SpecInput<'_>, args: &mut Vec<String>) -> Result<Vec<Mount>, String> {
    let h = inp.host;
    let rw = if h.privileged { "rw" } else { "ro" };
    let shm_size = format!(
        "size={}",
        if h.shm_size > 0 { h.shm_size } else { 64 << 20 }
    );
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", rw]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", rw],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        // As dockerd: `--ipc host` shares the host's /dev/shm; otherwise a private one.
        if h.ipc_mode == "host" {
            mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate"])
        } else {
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", shm_size.as_str()],
            )
        },
    ];
    let mut user_dests: Vec<String> = Vec::new();
    let mut user_mounts: Vec<Mount> = Vec::new();
    for b in &h.binds {
        let VolumeSpec::Bind(b) = parse_volume_spec(b)? else {
            continue; // volumes come resolved in `inp.volumes`
        };
        let mut opts = vec![
            "rbind".to_string(),
            if b.read_only { "ro" } else { "rw" }.to_string(),
        ];
        opts.push(b.propagation.clone().unwrap_or_else(|| "rprivate".into()));
        user_dests.push(b.destination.clone());
        user_mounts.push(owned_mount(&b.destination, "bind", &b.source, opts));
    }
    for VolumeBind {
        source,
        destination,
        read_only,
    } in &inp.volumes
    {
        let opts = ["rbind", if *read_only { "ro" } else { "rw" }, "rprivate"];
        user_dests.push(destination.clone());
        user_mounts.push(mount(destination, "bind", source, &opts));
    }
    for m in &h.mounts {
        if !m.target.starts_with('/') {
            return Err(format!(
                "invalid mount config: mount path must be absolute: {}",
                m.target
            ));
        }
        match m.kind.as_str() {
            "bind" => {
                if !m.source.starts_with('/') {
                    return Err(format!("invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute", m.source));
                }
                if !Path::new(&m.source).exists() {
                    return Err(format!("invalid mount config for type \"bind\": bind source path does not exist: {}", m.source));
                }
                let prop = m
                    .bind_options
                    .as_ref()
                    .and_then(|b| b.propagation.clone())
                    .unwrap_or_else(|| "rprivate".into());
                let opts = vec![
                    "rbind".to_string(),
                    if m.read_only { "ro" } else { "rw" }.to_string(),
                    prop,
                ];
                user_mounts.push(owned_mount(&m.target, "bind", &m.source, opts));
            }
            "tmpfs" => {
                let mut opts = tmpfs_options("")?;
                if let Some(t) = &m.tmpfs_options {
                    if let Some(sz) = t.size_bytes {
                        opts.push(format!("size={sz}"));
                    }
                    if let Some(mode) = t.mode {
                        opts.push(format!("mode={mode:o}"));
                    }
                }
                if m.read_only {
                    opts.push("ro".into());
                }
                user_mounts.push(owned_mount(&m.target, "tmpfs", "tmpfs", opts));
            }
            // Resolved by the engine and passed in `inp.volumes`.
            "volume" => continue,
            other => {
                return Err(format!(
                    "invalid mount config: mount type unknown: {other:?}"
                ))
            }
        }
        user_dests.push(m.target.clone());
    }
    for (dest, opts) in &h.tmpfs {
        if !dest.starts_with('/') {
            return Err(format!(
                "invalid tmpfs mount: {dest}: mount path must be absolute"
            ));
        }
        user_mounts.push(owned_mount(dest, "tmpfs", "tmpfs", tmpfs_options(opts)?));
        user_dests.push(dest.clone());
    }
    // Parents before children, as dockerd sorts them.
    user_mounts.sort_by_key(|m| {
        m.destination()
            .to_string_lossy()
            .split('/')
            .filter(|p| !p.is_empty())
            .count()
    });
    mounts.extend(user_mounts);
    for (path, dest) in &inp.etc_files {
        if user_dests.iter().any(|d| d == dest) {
            continue;
        }
        // As dockerd: read-only with the root filesystem (`--read-only`).
        let opts: &[&str] = if inp.host.readonly_rootfs {
            &["rbind", "rprivate", "ro"]
        } else {
            &["rbind", "rprivate"]
        };
        mounts.push(mount(*dest, "bind", path, opts));
    }
    if let Some(init) = inp.init_path {
        mounts.push(mount("/sbin/docker-init", "bind", init, &["bind", "ro"]));
        let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        a.append(args);
        *args = a;
    }
    Ok(mounts)
}
