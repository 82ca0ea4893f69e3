//! A container's configuration turned into an OCI runtime bundle's `config.json` (a typed
//! [`oci_spec::runtime::Spec`]), with Docker's defaults: namespaces, capabilities, seccomp, masked
//! and read-only paths, /dev, cgroup limits, rlimits, user, mounts (binds, tmpfs, the
//! per-container hosts/hostname/resolv.conf files); and an exec's process from the container's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_api::{ContainerConfig, HostConfig};
use oci_spec::runtime::{
    Box as ConsoleSize, BoxBuilder, Capability, Linux, LinuxCapabilities, LinuxNamespace,
    LinuxNamespaceType, LinuxSeccomp, Process, Root, Spec, User,
};
use serde_json::Value;

use crate::defaults::{self, MASKED_PATHS, READONLY_PATHS};
use crate::seccomp;
use crate::user::ResolvedUser;

mod exec;
#[cfg(test)]
mod golden;
mod host_options;
mod mounts;
mod resources;
#[cfg(test)]
mod tests;

pub use exec::{bundle_process, exec_process, ExecProcessInput};
pub use host_options::{cgroups_path, LEGACY_LINKS_ON_THE_DEFAULT_BRIDGE};
pub use mounts::{parse_bind, parse_volume_spec, Bind, VolumeSpec};
pub use resources::{limits, parse_size};

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

/// The process's environment: PATH, HOSTNAME, TERM with a terminal, the container's variables
/// (replacing those of the same name), and HOME unless set.
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

/// The container's hostname: `--hostname`, or the first 12 characters of its ID.
pub fn hostname(id: &str, config: &ContainerConfig) -> String {
    if config.hostname.is_empty() {
        id[..12.min(id.len())].to_string()
    } else {
        config.hostname.clone()
    }
}

/// The OCI user of a resolved user (`additionalGids` always written, empty or not).
fn oci_user(u: &ResolvedUser) -> User {
    let mut user = User::default();
    user.set_uid(u.uid)
        .set_gid(u.gid)
        .set_umask(None)
        .set_additional_gids(Some(u.additional_gids.clone()))
        .set_username(None);
    user
}

/// The console size of a process with a terminal: `size` (`[height, width]`, the client's
/// `ConsoleSize`) when the client sent one, else 80×24.
fn console_size(size: Option<[u64; 2]>) -> ConsoleSize {
    let [height, width] = match size {
        Some([hh, ww]) if hh > 0 && ww > 0 => [hh, ww],
        _ => [24, 80],
    };
    // Cannot fail: every field of the builder has a default.
    BoxBuilder::default()
        .height(height)
        .width(width)
        .build()
        .unwrap_or_default()
}

/// Bounding, effective and permitted sets of the named capabilities (`CAP_CHOWN`, …); no
/// inheritable or ambient ones.
fn capabilities(names: &[String]) -> Result<LinuxCapabilities, String> {
    let set = names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(Value::String(n.clone()))
                .map_err(|_| format!("invalid capability: {n}"))
        })
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()))
        .set_effective(Some(set.clone()))
        .set_permitted(Some(set))
        .set_inheritable(None)
        .set_ambient(None);
    Ok(caps)
}

/// A namespace to create (`path` None) or join.
fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ).set_path(path);
    ns
}

/// `--security-opt`: whether no-new-privileges is set, and the seccomp profile (JSON) to apply,
/// None for unconfined.
fn security_opts(h: &HostConfig) -> Result<(bool, Option<String>), String> {
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
    Ok((no_new_privs, seccomp_profile))
}

/// `linux.sysctl`: the `--sysctl`s, checked as dockerd checks them (namespaced parameters only,
/// none of a namespace shared with the host), over dockerd's defaults for a container with a
/// network namespace of its own (unprivileged low ports and ping sockets).
fn sysctls(h: &HostConfig, shared_netns: bool) -> Result<Option<HashMap<String, String>>, String> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let host_net = h.network_mode == "host";
    let own_netns = !host_net && !shared_netns && !h.network_mode.starts_with("container:");
    let mut out = HashMap::new();
    if own_netns {
        out.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        out.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
    }
    for (k, v) in &h.sysctls {
        let ipc = IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.");
        if ipc && h.ipc_mode == "host" {
            return Err(format!("sysctl {k:?} not allowed with --ipc host"));
        }
        if k.starts_with("net.") {
            if host_net {
                return Err(format!(
                    "sysctl {k:?} not allowed in host network namespace"
                ));
            }
        } else if !ipc {
            return Err(format!("sysctl '{k}' is not allowed"));
        }
        out.insert(k.clone(), v.clone());
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Builds `config.json`.
pub fn build(inp: &SpecInput<'_>) -> Result<Spec, String> {
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
    let (no_new_privs, seccomp_profile) = security_opts(h)?;
    host_options::refuse_unsupported(h)?;

    let mut args = inp.args.clone();
    let mounts = mounts::mounts(inp, &mut args)?;

    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None),
        namespace(LinuxNamespaceType::Ipc, None),
        namespace(LinuxNamespaceType::Uts, None),
        namespace(LinuxNamespaceType::Mount, None),
    ];
    match &inp.netns_path {
        Some(p) => namespaces.push(namespace(LinuxNamespaceType::Network, Some(p.clone()))),
        None if !host_net => namespaces.push(namespace(LinuxNamespaceType::Network, None)),
        None => {}
    }
    let host_modes = [
        (&h.pid_mode, LinuxNamespaceType::Pid),
        (&h.ipc_mode, LinuxNamespaceType::Ipc),
        (&h.uts_mode, LinuxNamespaceType::Uts),
    ];
    for (mode, typ) in host_modes {
        if mode == "host" {
            namespaces.retain(|n| n.typ() != typ);
        }
    }
    if host_options::private_cgroupns(h)? {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None));
    }

    let rlimits = resources::rlimits(inp)?;
    let (mut device_rules, device_nodes) = resources::devices(h)?;
    device_rules.extend(host_options::device_cgroup_rules(h)?);
    let mut cgroup = resources::limits(h)?;
    cgroup.set_devices(Some(device_rules));
    cgroup.set_block_io(host_options::block_io(h)?);

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
    let mut process = Process::default();
    process
        .set_terminal(Some(c.tty))
        .set_console_size(c.tty.then(|| console_size(h.console_size)))
        .set_user(oci_user(&inp.user))
        .set_args(Some(args))
        .set_command_line(None)
        .set_env(Some(env))
        .set_cwd(cwd.into())
        .set_capabilities(Some(capabilities(&caps)?))
        .set_rlimits(Some(rlimits))
        .set_no_new_privileges(Some(no_new_privs))
        .set_apparmor_profile(None)
        .set_oom_score_adj(Some(host_options::oom_score_adj(h)?))
        .set_selinux_label(None)
        .set_io_priority(None)
        .set_scheduler(None)
        .set_exec_cpu_affinity(None);

    let (masked, readonly) = if h.privileged {
        (None, None)
    } else {
        let mut masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        let mut ro: Vec<String> = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
        masked.extend(h.masked_paths.iter().cloned());
        ro.extend(h.readonly_paths.iter().cloned());
        (Some(masked), Some(ro))
    };
    let seccomp =
        match seccomp_profile {
            Some(profile) => {
                let target = seccomp::Target {
                    arch: seccomp::Target::host_arch(),
                    kernel: inp.kernel,
                    caps: &caps,
                };
                let v = seccomp::to_oci(&profile, &target)?;
                Some(serde_json::from_value::<LinuxSeccomp>(v).map_err(|e| {
                    format!("seccomp profile cannot be expressed in an OCI spec: {e}")
                })?)
            }
            None => None,
        };
    let mut linux = Linux::default();
    linux
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_sysctl(sysctls(h, inp.netns_path.is_some())?)
        .set_resources(Some(cgroup))
        .set_cgroups_path(Some(host_options::cgroups_path(h, inp.id)?))
        .set_namespaces(Some(namespaces))
        .set_devices(Some(device_nodes))
        .set_seccomp(seccomp)
        .set_rootfs_propagation(None)
        .set_masked_paths(masked)
        .set_readonly_paths(readonly)
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_personality(None)
        .set_time_offsets(None);

    let mut root = Root::default();
    root.set_path(inp.rootfs.to_path_buf())
        .set_readonly(Some(h.readonly_rootfs));

    let mut spec = Spec::default();
    spec.set_version("1.0.2".into())
        .set_root(Some(root))
        .set_mounts(Some(mounts))
        .set_process(Some(process))
        // Without its own UTS namespace a container has no hostname to set (runc refuses one),
        // as dockerd leaves it out.
        .set_hostname((h.uts_mode != "host").then_some(hostname))
        .set_domainname(None)
        .set_hooks(None)
        .set_annotations((!h.annotations.is_empty()).then(|| {
            h.annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }))
        .set_linux(Some(linux))
        .set_solaris(None)
        .set_windows(None)
        .set_vm(None)
        .set_uid_mappings(None)
        .set_gid_mappings(None);
    Ok(spec)
}

/// Capability sets in kernel number order (they are sets: oci_spec keeps them in a `HashSet`,
/// whose order changes from run to run).
fn sort_capabilities(process: &mut Value) {
    if let Some(caps) = process
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in caps.values_mut().filter_map(Value::as_array_mut) {
            set.sort_by_key(|c| {
                defaults::ALL_CAPS
                    .iter()
                    .position(|a| Some(*a) == c.as_str())
            });
        }
    }
}

/// `config.json` as berth writes it: compact JSON, keys in alphabetical order and capability
/// sets in kernel number order, so that the same spec always gives the same bytes.
pub fn to_json(spec: &Spec) -> Vec<u8> {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(p) = v.get_mut("process") {
        sort_capabilities(p);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// An exec's `process.json` as berth writes it (see [`to_json`]).
pub fn process_to_json(process: &Process) -> Vec<u8> {
    let mut v = serde_json::to_value(process).unwrap_or_default();
    sort_capabilities(&mut v);
    serde_json::to_vec(&v).unwrap_or_default()
}
