//! `run`/`create` flags and their translation into a `ContainerCreateRequest`.
//!
//! This module owns `ContainerOpts` and `to_request`; `specs` parses the values of individual
//! flags (mounts, ports, ulimits, ...) and `resources` holds the flags `update` shares.

mod resources;
mod specs;

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use berth_api::{ContainerCreateRequest, HealthConfig, LogConfig, StrList};
use clap::{ArgAction, Args};

use crate::human::ram_in_bytes;
pub use resources::{memory_bytes, ResourceFlags};
pub use specs::parse_restart;
use specs::{
    parse_device, parse_mount, parse_port_spec, parse_publish, parse_security_opt, parse_ulimit,
};

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
    fn ulimit_flag() {
        let r = req(&["--ulimit", "nofile=10:20"]);
        assert_eq!(
            r["HostConfig"]["Ulimits"],
            serde_json::json!([{"Name": "nofile", "Soft": 10, "Hard": 20}])
        );
    }

    #[test]
    fn mount_flags() {
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
}
