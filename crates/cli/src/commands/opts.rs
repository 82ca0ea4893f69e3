//! `run`/`create` flags and their translation into a `ContainerCreateRequest`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use berth_api::{
    BindOptions, ContainerCreateRequest, DeviceMapping, HealthConfig, LogConfig, Mount,
    PortBinding, RestartPolicy, StrList, TmpfsOptions, Ulimit, VolumeDriverConfig, VolumeOptions,
};
use clap::{ArgAction, Args};

use crate::human::ram_in_bytes;

#[derive(Args, Debug, Default, Clone)]
pub struct ContainerOpts {
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long = "rm")]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint")]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long = "domainname")]
    pub domainname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip")]
    pub ip: Option<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Ulimit options
    #[arg(long = "ulimit")]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a host device to the container
    #[arg(long = "device")]
    pub device: Vec<String>,
    /// Run an init inside the container
    #[arg(long = "init")]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Runtime to use for this container
    #[arg(long = "runtime")]
    pub runtime: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart")]
    pub restart: Option<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// IPC mode to use
    #[arg(long = "ipc")]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long = "pid")]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts")]
    pub uts: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long = "expose")]
    pub expose: Vec<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull")]
    pub pull: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Print help
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// Expands `-e K` from the local environment; `-e K=V` as given.
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

fn read_kv_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
    Ok(text
        .lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.to_string())
        .collect())
}

pub fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let p = |v: &str| -> Result<i64> {
        v.parse::<i64>()
            .map_err(|_| anyhow!("invalid ulimit argument: {s}"))
    };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard && hard >= 0 {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

pub fn parse_mount(s: &str) -> Result<Mount> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let mut propagation = None;
    let mut size = None;
    let mut mode = None;
    let mut volume = VolumeOptions::default();
    let mut driver = VolumeDriverConfig::default();
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let val = || {
            v.clone()
                .ok_or_else(|| anyhow!("invalid field '{field}' must be a key=value pair"))
        };
        match k.as_str() {
            "type" => m.kind = val()?,
            "source" | "src" => m.source = val()?,
            "target" | "destination" | "dst" => m.target = val()?,
            "readonly" | "ro" => {
                m.read_only = match v.as_deref() {
                    None | Some("1") | Some("true") => true,
                    Some("0") | Some("false") => false,
                    Some(o) => bail!("invalid value for {k}: {o}"),
                }
            }
            "bind-propagation" => propagation = Some(val()?),
            "tmpfs-size" => size = Some(ram_in_bytes(&val()?)?),
            "tmpfs-mode" => {
                mode = Some(
                    u32::from_str_radix(&val()?, 8)
                        .map_err(|_| anyhow!("invalid value for {k}: {field}"))?,
                )
            }
            "volume-nocopy" => volume.no_copy = !matches!(v.as_deref(), Some("0") | Some("false")),
            "volume-driver" => driver.name = val()?,
            "volume-label" => {
                let l = val()?;
                let (a, b) = l.split_once('=').unwrap_or((&l, ""));
                volume.labels.insert(a.into(), b.into());
            }
            "volume-opt" => {
                let o = val()?;
                let (a, b) = o.split_once('=').unwrap_or((&o, ""));
                driver.options.insert(a.into(), b.into());
            }
            "volume-subpath" => volume.subpath = val()?,
            "consistency" | "bind-recursive" => {}
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if m.target.is_empty() {
        bail!("target is required");
    }
    if m.kind == "bind" && m.source.is_empty() {
        bail!("source is required when specifying bind mount");
    }
    if let Some(p) = propagation {
        m.bind_options = Some(BindOptions {
            propagation: Some(p),
        });
    }
    if m.kind == "volume" {
        if driver != VolumeDriverConfig::default() {
            volume.driver_config = Some(driver);
        }
        if volume != VolumeOptions::default() {
            m.volume_options = Some(volume);
        }
    }
    if size.is_some() || mode.is_some() {
        m.tmpfs_options = Some(TmpfsOptions {
            size_bytes: size,
            mode,
        });
    }
    Ok(m)
}

pub fn parse_device(s: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, cont, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c]
            if c.chars().all(|ch| "rwm".contains(ch)) && !c.is_empty() && !c.starts_with('/') =>
        {
            (*h, *h, *c)
        }
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("invalid device specification: {s}"),
    };
    Ok(DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: cont.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })?,
        ),
        None => (s, 0),
    };
    match name {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        _ => bail!("invalid restart policy format: unknown policy '{name}'"),
    }
    Ok(RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: count,
    })
}

fn parse_security_opt(s: &str) -> Result<String> {
    if let Some(path) = s
        .strip_prefix("seccomp=")
        .or_else(|| s.strip_prefix("seccomp:"))
    {
        if path != "unconfined" && path != "builtin" {
            let data = std::fs::read_to_string(path)
                .with_context(|| format!("opening seccomp profile ({path}) failed"))?;
            serde_json::from_str::<serde_json::Value>(&data)
                .with_context(|| format!("decoding seccomp profile ({path}) failed"))?;
            return Ok(format!("seccomp={}", crate::jsonfmt::compact(&data)));
        }
        return Ok(format!("seccomp={path}"));
    }
    if !s.contains(['=', ':']) && s != "no-new-privileges" {
        bail!("Invalid --security-opt: {s:?}");
    }
    Ok(s.to_string())
}

fn parse_port_range(s: &str, what: &str, spec: &str) -> Result<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a
        .parse()
        .map_err(|_| anyhow!("invalid {what} port in \"{spec}\""))?;
    let b: u16 = b
        .parse()
        .map_err(|_| anyhow!("invalid {what} port in \"{spec}\""))?;
    if b < a {
        bail!("invalid {what} port range in \"{spec}\"");
    }
    Ok((a, b))
}

/// Parses `-p [ip:][hostPort[-end]:]containerPort[-end][/proto]` into `("80/tcp", binding)` pairs.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>> {
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((a, b)) => (a, b.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        bail!("invalid proto: {proto}");
    }
    let parts: Vec<&str> = ports.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => bail!("invalid port format for --publish: {spec}"),
    };
    let (c0, c1) = parse_port_range(container, "container", spec)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_port_range(host, "host", spec)?)
    };
    if let Some((h0, h1)) = host_range {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            bail!("invalid ranges specified for container and host Ports: {container} and {host}");
        }
    }
    let mut out = Vec::new();
    for (i, cp) in (c0..=c1).enumerate() {
        let host_port = match host_range {
            None => String::new(),
            Some((h0, h1)) if h0 == h1 => h0.to_string(),
            Some((h0, _)) => (h0 + i as u16).to_string(),
        };
        out.push((
            format!("{cp}/{proto}"),
            PortBinding {
                host_ip: ip.to_string(),
                host_port,
            },
        ));
    }
    Ok(out)
}

fn parse_port_spec(p: &str) -> String {
    // [ip:][hostPort:]containerPort[/proto] → "containerPort/proto"
    let (ports, proto) = match p.rsplit_once('/') {
        Some((a, b)) => (a, b),
        None => (p, "tcp"),
    };
    let cport = ports.rsplit(':').next().unwrap_or(ports);
    format!("{cport}/{proto}")
}

impl ContainerOpts {
    /// Builds the create body for `image` and `cmd`; `detach` decides the attach flags.
    /// `--health-*` and `--no-healthcheck`, as the docker CLI turns them into `Healthcheck`.
    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
        let dur = |name: &str, v: &Option<String>| -> Result<Option<i64>> {
            match v {
                None => Ok(None),
                Some(s) => {
                    let nanos = crate::human::parse_go_duration_nanos(s).ok_or_else(|| {
                        anyhow!("invalid argument \"{s}\" for \"--{name}\" flag: time: invalid duration \"{s}\"")
                    })?;
                    if nanos < 0 {
                        bail!("--{name} cannot be negative");
                    }
                    Ok(Some(nanos).filter(|n| *n != 0))
                }
            }
        };
        let interval = dur("health-interval", &self.health_interval)?;
        let timeout = dur("health-timeout", &self.health_timeout)?;
        let start_period = dur("health-start-period", &self.health_start_period)?;
        let start_interval = dur("health-start-interval", &self.health_start_interval)?;
        if self.health_retries.is_some_and(|r| r < 0) {
            bail!("--health-retries cannot be negative");
        }
        let any = self.health_cmd.is_some()
            || interval.is_some()
            || timeout.is_some()
            || start_period.is_some()
            || start_interval.is_some()
            || self.health_retries.is_some();
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(HealthConfig {
            test: self
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
            interval,
            timeout,
            retries: self.health_retries.filter(|r| *r != 0),
            start_period,
            start_interval,
        }))
    }

    pub fn to_request(
        &self,
        image: &str,
        cmd: &[String],
        detach: bool,
    ) -> Result<ContainerCreateRequest> {
        let mut req = ContainerCreateRequest::default();
        let c = &mut req.config;
        let h = &mut req.host_config;
        c.image = image.to_string();
        c.cmd = StrList(cmd.to_vec());
        c.tty = self.tty;
        c.open_stdin = self.interactive;
        c.attach_stdin = self.interactive && !detach;
        c.stdin_once = self.interactive && !detach;
        c.attach_stdout = !detach;
        c.attach_stderr = !detach;
        c.hostname = self.hostname.clone().unwrap_or_default();
        c.domainname = self.domainname.clone().unwrap_or_default();
        c.user = self.user.clone().unwrap_or_default();
        c.working_dir = self.workdir.clone().unwrap_or_default();
        if let Some(ep) = &self.entrypoint {
            c.entrypoint = StrList(if ep.is_empty() {
                vec![String::new()]
            } else {
                vec![ep.clone()]
            });
        }
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(read_kv_file(f)?.iter().filter_map(|e| env_entry(e)));
        }
        env.extend(self.env.iter().filter_map(|e| env_entry(e)));
        c.env = env;
        let mut labels = BTreeMap::new();
        let mut all_labels = Vec::new();
        for f in &self.label_file {
            all_labels.extend(read_kv_file(f)?);
        }
        all_labels.extend(self.label.iter().cloned());
        for l in all_labels {
            let (k, v) = l.split_once('=').unwrap_or((&l, ""));
            labels.insert(k.to_string(), v.to_string());
        }
        c.labels = labels;
        c.stop_signal = self.stop_signal.clone();
        c.stop_timeout = self.stop_timeout;
        c.healthcheck = self.healthcheck()?;
        let mut exposed = BTreeMap::new();
        for p in &self.expose {
            exposed.insert(parse_port_spec(p), serde_json::json!({}));
        }
        for p in &self.publish {
            for (port, binding) in parse_publish(p)
                .map_err(|e| anyhow!("invalid argument \"{p}\" for \"-p, --publish\" flag: {e}"))?
            {
                exposed.insert(port.clone(), serde_json::json!({}));
                h.port_bindings
                    .entry(port)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(binding);
            }
        }
        if !exposed.is_empty() {
            c.exposed_ports = Some(exposed);
        }

        h.binds = self.volume.clone();
        h.volumes_from = self.volumes_from.clone();
        h.mounts = self
            .mount
            .iter()
            .map(|m| {
                parse_mount(m)
                    .map_err(|e| anyhow!("invalid argument \"{m}\" for \"--mount\" flag: {e}"))
            })
            .collect::<Result<_>>()?;
        for t in &self.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            h.tmpfs.insert(path.to_string(), opts.to_string());
        }
        h.readonly_rootfs = self.read_only;
        h.network_mode = self.network.clone().unwrap_or_else(|| "default".into());
        let mut networking = None;
        if !self.network_alias.is_empty() || self.ip.is_some() {
            let mut ep = berth_api::EndpointSettings {
                aliases: self.network_alias.clone(),
                ..Default::default()
            };
            if let Some(ip) = &self.ip {
                ep.ipam_config = Some(berth_api::EndpointIpamConfig {
                    ipv4_address: ip.clone(),
                });
            }
            let mut nc = berth_api::NetworkingConfig::default();
            nc.endpoints_config.insert(h.network_mode.clone(), ep);
            networking = Some(nc);
        }
        h.auto_remove = self.rm;
        let r = &self.resources;
        let mem = |v: &Option<String>, flag: &str| -> Result<i64> {
            v.as_deref().map_or(Ok(0), |s| memory_bytes(s, flag))
        };
        h.memory = mem(&r.memory, "-m, --memory")?;
        h.memory_swap = mem(&r.memory_swap, "--memory-swap")?;
        h.memory_reservation = mem(&r.memory_reservation, "--memory-reservation")?;
        h.nano_cpus = r.nano_cpus()?.unwrap_or(0);
        h.cpu_shares = r.cpu_shares.unwrap_or(0);
        h.cpu_period = r.cpu_period.unwrap_or(0);
        h.cpu_quota = r.cpu_quota.unwrap_or(0);
        h.cpuset_cpus = r.cpuset_cpus.clone().unwrap_or_default();
        h.cpuset_mems = r.cpuset_mems.clone().unwrap_or_default();
        h.pids_limit = r.pids_limit;
        h.ulimits = self
            .ulimit
            .iter()
            .map(|u| {
                parse_ulimit(u)
                    .map_err(|e| anyhow!("invalid argument \"{u}\" for \"--ulimit\" flag: {e}"))
            })
            .collect::<Result<_>>()?;
        h.cap_add = self.cap_add.clone();
        h.cap_drop = self.cap_drop.clone();
        h.privileged = self.privileged;
        h.security_opt = self
            .security_opt
            .iter()
            .map(|s| parse_security_opt(s))
            .collect::<Result<_>>()?;
        h.devices = self
            .device
            .iter()
            .map(|d| parse_device(d))
            .collect::<Result<_>>()?;
        if self.init {
            h.init = Some(true);
        }
        h.runtime = self.runtime.clone().unwrap_or_default();
        if let Some(r) = &self.restart {
            h.restart_policy = parse_restart(r)?;
            if self.rm && !matches!(h.restart_policy.name.as_str(), "" | "no") {
                bail!("Conflicting options: --restart and --rm");
            }
        }
        let mut log_cfg = BTreeMap::new();
        for o in &self.log_opt {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid key-value pair: {o}"))?;
            log_cfg.insert(k.to_string(), v.to_string());
        }
        h.log_config = LogConfig {
            kind: self.log_driver.clone().unwrap_or_default(),
            config: log_cfg,
        };
        if let Some(s) = &self.shm_size {
            h.shm_size = ram_in_bytes(s)?;
        }
        h.ipc_mode = self.ipc.clone().unwrap_or_default();
        h.pid_mode = self.pid.clone().unwrap_or_default();
        h.uts_mode = self.uts.clone().unwrap_or_default();
        h.extra_hosts = self.add_host.clone();
        h.dns = self.dns.clone();
        h.dns_search = self.dns_search.clone();
        h.dns_options = self.dns_option.clone();
        h.publish_all_ports = self.publish_all;
        if self.oom_kill_disable {
            h.oom_kill_disable = Some(true);
        }
        req.networking_config = networking;
        Ok(req)
    }
}

/// The resource flags `create`/`run` and `update` share.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceFlags {
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

impl ResourceFlags {
    /// `--cpus` as NanoCpus (rounded to the nanosecond, as Docker's exact rational parse).
    pub fn nano_cpus(&self) -> Result<Option<i64>> {
        self.cpus
            .as_deref()
            .map(|c| {
                let f: f64 = c.parse().map_err(|_| {
                    anyhow!("invalid argument \"{c}\" for \"--cpus\" flag: failed to parse {c} as a rational number")
                })?;
                Ok((f * 1e9).round() as i64)
            })
            .transpose()
    }
}

/// A memory size flag's value in bytes: `-1` (unlimited) or a size with a unit; `flag` names
/// the flag in the error, as Docker does.
pub fn memory_bytes(v: &str, flag: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(v).map_err(|e| anyhow!("invalid argument \"{v}\" for \"{flag}\" flag: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
    }

    fn req(args: &[&str]) -> serde_json::Value {
        let mut v = vec!["x"];
        v.extend_from_slice(args);
        let t = T::try_parse_from(v).unwrap();
        serde_json::to_value(t.o.to_request("busybox", &["sh".into()], false).unwrap()).unwrap()
    }

    #[test]
    fn resources() {
        let r = req(&[
            "-m",
            "64m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "10",
            "-c",
            "512",
        ]);
        assert_eq!(r["HostConfig"]["Memory"], 67108864);
        assert_eq!(r["HostConfig"]["NanoCpus"], 1500000000i64);
        assert_eq!(r["HostConfig"]["PidsLimit"], 10);
        assert_eq!(r["HostConfig"]["CpuShares"], 512);
        assert_eq!(r["Image"], "busybox");
        assert_eq!(r["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(r["HostConfig"]["NetworkMode"], "default");
        let r = req(&["--memory-swap", "-1", "--network", "none", "--rm", "-it"]);
        assert_eq!(r["HostConfig"]["MemorySwap"], -1);
        assert_eq!(r["HostConfig"]["NetworkMode"], "none");
        assert_eq!(r["HostConfig"]["AutoRemove"], true);
        assert_eq!(r["Tty"], true);
        assert_eq!(r["OpenStdin"], true);
        assert_eq!(r["AttachStdin"], true);
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = parse_ulimit("nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (10, 10));
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=2:1").is_err());
        let r = req(&["--ulimit", "nofile=10:20"]);
        assert_eq!(
            r["HostConfig"]["Ulimits"],
            serde_json::json!([{"Name": "nofile", "Soft": 10, "Hard": 20}])
        );
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,source=/src,target=/dst,readonly,bind-propagation=rshared")
            .unwrap();
        assert_eq!(m.kind, "bind");
        assert_eq!(m.source, "/src");
        assert_eq!(m.target, "/dst");
        assert!(m.read_only);
        assert_eq!(
            m.bind_options.unwrap().propagation.as_deref(),
            Some("rshared")
        );
        let m = parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m").unwrap();
        assert_eq!(m.kind, "tmpfs");
        assert_eq!(m.tmpfs_options.unwrap().size_bytes, Some(67108864));
        assert!(parse_mount("type=bind,target=/x").is_err());
        assert!(parse_mount("type=bind,source=/x").is_err());
        let r = req(&[
            "--tmpfs",
            "/run:size=1m",
            "--tmpfs",
            "/tmp",
            "-v",
            "/a:/b:ro",
            "--read-only",
        ]);
        assert_eq!(
            r["HostConfig"]["Tmpfs"],
            serde_json::json!({"/run": "size=1m", "/tmp": ""})
        );
        assert_eq!(r["HostConfig"]["Binds"], serde_json::json!(["/a:/b:ro"]));
        assert_eq!(r["HostConfig"]["ReadonlyRootfs"], true);
    }

    #[test]
    fn misc() {
        std::env::set_var("BERTH_TEST_ENV", "val");
        let r = req(&[
            "-e",
            "A=1",
            "-e",
            "BERTH_TEST_ENV",
            "-e",
            "BERTH_UNSET_XYZ",
            "--label",
            "a=b",
            "--device",
            "/dev/fuse",
            "--device",
            "/dev/a:/dev/b:r",
            "--restart",
            "on-failure:3",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "no-new-privileges",
            "--init",
            "--entrypoint",
            "/bin/sh",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "-h",
            "box",
        ]);
        assert_eq!(r["Env"], serde_json::json!(["A=1", "BERTH_TEST_ENV=val"]));
        assert_eq!(r["Labels"], serde_json::json!({"a": "b"}));
        assert_eq!(
            r["HostConfig"]["Devices"][0]["PathInContainer"],
            "/dev/fuse"
        );
        assert_eq!(r["HostConfig"]["Devices"][1]["CgroupPermissions"], "r");
        assert_eq!(r["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 3);
        assert_eq!(
            r["HostConfig"]["SecurityOpt"],
            serde_json::json!(["no-new-privileges"])
        );
        assert_eq!(r["HostConfig"]["Init"], true);
        assert_eq!(r["Entrypoint"], serde_json::json!(["/bin/sh"]));
        assert_eq!(r["WorkingDir"], "/tmp");
        assert_eq!(r["User"], "1000");
        assert_eq!(r["Hostname"], "box");
    }

    #[test]
    fn seccomp_file() {
        let dir = std::env::temp_dir().join(format!("berth-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("prof.json");
        std::fs::write(&p, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let s = parse_security_opt(&format!("seccomp={}", p.display())).unwrap();
        assert_eq!(s, r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#);
        assert_eq!(
            parse_security_opt("seccomp=unconfined").unwrap(),
            "seccomp=unconfined"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
