//! A container's configuration turned into an OCI runtime bundle's `config.json`, with Docker's
//! defaults: namespaces, capabilities, seccomp, masked and read-only paths, /dev, cgroup limits,
//! rlimits, user, mounts (binds, tmpfs, the per-container hosts/hostname/resolv.conf files).

use std::path::{Path, PathBuf};

use berth_api::{ContainerConfig, HostConfig};
use serde_json::{json, Value};

use crate::defaults::{self, DEFAULT_DEVICE_RULES, MASKED_PATHS, READONLY_PATHS};
use crate::seccomp;
use crate::user::ResolvedUser;

#[cfg(test)]
mod golden;

/// Everything [`build`] needs besides the container's own configuration.
#[derive(Clone)]
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// A network namespace to join (`--network container:NAME`).
    pub netns_path: Option<PathBuf>,
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    pub rootfs: &'a Path,
    /// Process arguments (entrypoint + cmd, resolved).
    pub args: Vec<String>,
    pub user: ResolvedUser,
    /// Per-container `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` to bind in.
    pub etc_files: Vec<(PathBuf, &'static str)>,
    /// Volumes resolved to host paths (named, anonymous, from `--volumes-from`).
    pub volumes: Vec<VolumeBind>,
    /// Binary bound at /sbin/docker-init for `--init`.
    pub init_path: Option<&'a Path>,
    pub default_ulimits: &'a [berth_api::Ulimit],
    /// The host's hard RLIMIT_NOFILE and friends clamp requested limits.
    pub rlimit_hard: &'a dyn Fn(&str) -> Option<u64>,
    pub kernel: (u32, u32),
    /// The host's capability bounding set (`CapBnd`).
    pub cap_bounding: u64,
}

/// A volume's host directory bound into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeBind {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

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

/// Parses a size with Docker's binary units: `64m`, `1g`, `512k`, `100b`, `1024`.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|x| x.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&t)
        .to_string();
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t.as_str(), 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    Ok((n * mul as f64) as i64)
}

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

fn signal_free_env(
    config: &ContainerConfig,
    host_tty: bool,
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    };
    set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    set(format!("HOSTNAME={hostname}"));
    if host_tty {
        set("TERM=xterm".into());
    }
    for e in &config.env {
        set(e.clone());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

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

/// The container's hostname: `--hostname`, or the first 12 characters of its ID.
pub fn hostname(id: &str, config: &ContainerConfig) -> String {
    if config.hostname.is_empty() {
        id[..12.min(id.len())].to_string()
    } else {
        config.hostname.clone()
    }
}

/// Builds `config.json`.
pub fn build(inp: &SpecInput<'_>) -> Result<Value, String> {
    let c = inp.config;
    let h = inp.host;
    let host_net = h.network_mode == "host";
    let hostname = if host_net && c.hostname.is_empty() {
        nix::unistd::gethostname()
            .ok()
            .and_then(|s| s.into_string().ok())
            .unwrap_or_default()
    } else {
        hostname(inp.id, c)
    };
    let mut caps = defaults::capabilities(h.privileged, &h.cap_add, &h.cap_drop)?;
    if h.privileged || h.cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        // "All" means all the host can grant: runc fails on a cap outside its bounding set.
        caps = defaults::within_bounding(caps, inp.cap_bounding);
    }
    let mut no_new_privs = false;
    let mut seccomp_profile: Option<String> = Some(seccomp::DEFAULT_PROFILE.to_string());
    for opt in &h.security_opt {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match k {
            "no-new-privileges" => no_new_privs = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => seccomp_profile = None,
            "seccomp" if v.trim_start().starts_with('{') => seccomp_profile = Some(v.to_string()),
            "seccomp" => {
                seccomp_profile = Some(
                    std::fs::read_to_string(v)
                        .map_err(|e| format!("opening seccomp profile ({v}) failed: {e}"))?,
                )
            }
            "apparmor" | "label" => {}
            _ => return Err(format!("Invalid --security-opt: {opt:?}")),
        }
    }
    if h.privileged {
        seccomp_profile = None;
    }

    let mut args = inp.args.clone();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if h.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if h.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", if h.shm_size > 0 { h.shm_size } else { 64 << 20 })]}),
    ];
    let mut user_dests: Vec<String> = Vec::new();
    let mut user_mounts: Vec<serde_json::Value> = Vec::new();
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
        user_mounts.push(json!({"destination": b.destination, "type": "bind", "source": b.source, "options": opts}));
    }
    for v in &inp.volumes {
        let opts = ["rbind", if v.read_only { "ro" } else { "rw" }, "rprivate"];
        user_dests.push(v.destination.clone());
        user_mounts.push(json!({"destination": v.destination, "type": "bind", "source": v.source, "options": opts}));
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
                user_mounts.push(json!({"destination": m.target, "type": "bind", "source": m.source, "options": opts}));
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
                user_mounts.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
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
        user_mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": tmpfs_options(opts)?}));
        user_dests.push(dest.clone());
    }
    // Parents before children, as dockerd sorts them.
    user_mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| d.split('/').filter(|p| !p.is_empty()).count())
            .unwrap_or(0)
    });
    mounts.extend(user_mounts);
    for (path, dest) in &inp.etc_files {
        if user_dests.iter().any(|d| d == dest) {
            continue;
        }
        mounts.push(json!({"destination": dest, "type": "bind", "source": path, "options": ["rbind", "rprivate"]}));
    }
    if let Some(init) = inp.init_path {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["bind", "ro"]}));
        let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        a.append(&mut args);
        args = a;
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &inp.netns_path {
        Some(p) => namespaces.push(json!({"type": "network", "path": p})),
        None if !host_net => namespaces.push(json!({"type": "network"})),
        None => {}
    }
    if h.pid_mode == "host" {
        namespaces.retain(|n| n["type"] != "pid");
    }
    if h.ipc_mode == "host" {
        namespaces.retain(|n| n["type"] != "ipc");
    }
    if h.uts_mode == "host" {
        namespaces.retain(|n| n["type"] != "uts");
    }
    namespaces.push(json!({"type": "cgroup"}));

    // rlimits: daemon defaults, then the container's; clamped to what the host allows.
    let mut rlimits: Vec<(String, u64, u64)> = Vec::new();
    for u in inp.default_ulimits.iter().chain(h.ulimits.iter()) {
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
    let rlimits: Vec<Value> = rlimits
        .into_iter()
        .map(|(t, s, hd)| json!({"type": t, "soft": s, "hard": hd}))
        .collect();

    // cgroup resources
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    for (t, maj, min, acc) in DEFAULT_DEVICE_RULES {
        let mut d = json!({"allow": true, "type": t, "access": acc});
        if *maj >= 0 {
            d["major"] = json!(maj);
        }
        if *min >= 0 {
            d["minor"] = json!(min);
        }
        devices.push(d);
    }
    if h.privileged {
        devices = vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut linux_devices = Vec::new();
    for d in &h.devices {
        let meta = std::fs::metadata(&d.path_on_host).map_err(|e| {
            format!(
                "error gathering device information while adding custom device \"{}\": {e}",
                d.path_on_host
            )
        })?;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let kind = if meta.file_type().is_char_device() {
            "c"
        } else if meta.file_type().is_block_device() {
            "b"
        } else {
            return Err(format!("error gathering device information while adding custom device \"{}\": not a device node", d.path_on_host));
        };
        let rdev = meta.rdev();
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        let dest = if d.path_in_container.is_empty() {
            d.path_on_host.clone()
        } else {
            d.path_in_container.clone()
        };
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm".to_string()
        } else {
            d.cgroup_permissions.clone()
        };
        linux_devices.push(json!({"path": dest, "type": kind, "major": major, "minor": minor, "fileMode": meta.mode() & 0o7777, "uid": 0, "gid": 0}));
        devices.push(
            json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
        );
    }
    let mut resources = json!({ "devices": devices });
    for (k, v) in limits(h)? {
        resources[k] = v;
    }

    let env = signal_free_env(c, c.tty, &hostname, &inp.user.home);
    let cwd = if c.working_dir.is_empty() {
        "/".to_string()
    } else {
        c.working_dir.clone()
    };
    if !cwd.starts_with('/') {
        return Err(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        ));
    }
    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid, "additionalGids": inp.user.additional_gids},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": no_new_privs,
        "oomScoreAdj": 0,
    });
    if c.tty {
        process["consoleSize"] = json!({"height": 24, "width": 80});
    }

    let mut linux = json!({
        "resources": resources,
        "cgroupsPath": format!("/berth/{}", inp.id),
        "namespaces": namespaces,
        "devices": linux_devices,
    });
    if !h.privileged {
        let mut masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        let mut ro: Vec<String> = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
        masked.extend(h.masked_paths.iter().cloned());
        ro.extend(h.readonly_paths.iter().cloned());
        linux["maskedPaths"] = json!(masked);
        linux["readonlyPaths"] = json!(ro);
    }
    if let Some(profile) = seccomp_profile {
        let target = seccomp::Target {
            arch: seccomp::Target::host_arch(),
            kernel: inp.kernel,
            caps: &caps,
        };
        linux["seccomp"] = seccomp::to_oci(&profile, &target)?;
    }

    Ok(json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": h.readonly_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

/// The memory, CPU and pids limits of a host config as OCI `linux.resources` sections
/// (`memory`, `cpu`, `pids`), with dockerd's checks.
pub fn limits(h: &HostConfig) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut resources = json!({});
    let mut memory = json!({});
    if h.memory > 0 && h.memory < 6 * 1024 * 1024 {
        return Err("Minimum memory limit allowed is 6MB".into());
    }
    if h.memory > 0 {
        memory["limit"] = json!(h.memory);
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
        memory["swap"] = json!(swap);
    } else if h.memory_swap > 0 {
        return Err(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if h.memory_reservation > 0 {
        memory["reservation"] = json!(h.memory_reservation);
    }
    if h.oom_kill_disable == Some(true) {
        memory["disableOOMKiller"] = json!(true);
    }
    if memory.as_object().is_some_and(|m| !m.is_empty()) {
        resources["memory"] = memory;
    }
    let mut cpu = json!({});
    if h.nano_cpus > 0 {
        if h.cpu_quota > 0 || h.cpu_period > 0 {
            return Err(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            );
        }
        cpu["period"] = json!(100_000u64);
        cpu["quota"] = json!(h.nano_cpus / 10_000);
    }
    if h.cpu_quota > 0 {
        cpu["quota"] = json!(h.cpu_quota);
    }
    if h.cpu_period > 0 {
        cpu["period"] = json!(h.cpu_period);
    }
    if h.cpu_shares > 0 {
        cpu["shares"] = json!(h.cpu_shares);
    }
    if !h.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(h.cpuset_cpus);
    }
    if !h.cpuset_mems.is_empty() {
        cpu["mems"] = json!(h.cpuset_mems);
    }
    if cpu.as_object().is_some_and(|m| !m.is_empty()) {
        resources["cpu"] = cpu;
    }
    if let Some(p) = h.pids_limit {
        if p > 0 {
            resources["pids"] = json!({"limit": p});
        }
    }
    Ok(resources.as_object().cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        c: &'a ContainerConfig,
        h: &'a HostConfig,
        hard: &'a dyn Fn(&str) -> Option<u64>,
    ) -> SpecInput<'a> {
        SpecInput {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            netns_path: None,
            config: c,
            host: h,
            rootfs: Path::new("/rootfs"),
            args: vec!["sh".into()],
            user: ResolvedUser {
                home: "/root".into(),
                ..Default::default()
            },
            etc_files: vec![],
            volumes: vec![],
            init_path: None,
            default_ulimits: &[],
            rlimit_hard: hard,
            kernel: (6, 1),
            cap_bounding: u64::MAX,
        }
    }

    #[test]
    fn defaults_are_dockers() {
        let (c, h) = (ContainerConfig::default(), HostConfig::default());
        let none = |_: &str| None;
        let s = build(&input(&c, &h, &none)).unwrap();
        assert_eq!(s["hostname"], "0123456789ab");
        assert_eq!(
            s["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(s["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
        assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        let ns: Vec<&str> = s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"pid") && ns.contains(&"network") && ns.contains(&"mount"));
        assert!(s["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "HOSTNAME=0123456789ab"));
    }

    #[test]
    fn limits_and_ulimit_clamping() {
        let c = ContainerConfig::default();
        let h = HostConfig {
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: Some(20),
            ulimits: vec![berth_api::Ulimit {
                name: "nofile".into(),
                soft: 1 << 30,
                hard: 1 << 30,
            }],
            ..Default::default()
        };
        let hard = |t: &str| {
            if t == "RLIMIT_NOFILE" {
                Some(20000)
            } else {
                None
            }
        };
        let s = build(&input(&c, &h, &hard)).unwrap();
        assert_eq!(s["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(s["linux"]["resources"]["memory"]["swap"], 128 << 20);
        assert_eq!(s["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(s["linux"]["resources"]["pids"]["limit"], 20);
        assert_eq!(
            s["process"]["rlimits"][0],
            json!({"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000})
        );
    }

    #[test]
    fn security_opts() {
        let c = ContainerConfig::default();
        let none = |_: &str| None;
        let h = HostConfig {
            security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges".into()],
            ..Default::default()
        };
        let s = build(&input(&c, &h, &none)).unwrap();
        assert!(s["linux"].get("seccomp").is_none());
        assert_eq!(s["process"]["noNewPrivileges"], true);
        let h = HostConfig {
            security_opt: vec!["bogus".into()],
            ..Default::default()
        };
        assert!(build(&input(&c, &h, &none)).is_err());
        let h = HostConfig {
            privileged: true,
            ..Default::default()
        };
        let s = build(&input(&c, &h, &none)).unwrap();
        assert!(s["linux"].get("maskedPaths").is_none());
        assert_eq!(
            s["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            41
        );
    }

    #[test]
    fn binds_and_sizes() {
        assert_eq!(
            parse_bind("/a:/b:ro,rshared").unwrap(),
            Bind {
                source: "/a".into(),
                destination: "/b".into(),
                read_only: true,
                propagation: Some("rshared".into())
            }
        );
        assert!(parse_bind("/a:b").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("10mb").unwrap(), 10 << 20);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn swap_rules() {
        let c = ContainerConfig::default();
        let none = |_: &str| None;
        let h = HostConfig {
            memory: 100,
            memory_swap: 50,
            ..Default::default()
        };
        assert!(build(&input(&c, &h, &none)).is_err());
        let h = HostConfig {
            memory_swap: 50,
            ..Default::default()
        };
        assert!(build(&input(&c, &h, &none)).is_err());
    }
}
