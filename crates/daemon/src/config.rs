//! `berth daemon` flags and daemon.json, merged the way dockerd merges them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_api::Ulimit;
use berth_engine::EngineConfig;
use serde_json::{Map, Value};

/// Flags of `berth daemon` (dockerd's names).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// Root directory of persistent state [default: /var/lib/berth]
    #[arg(long = "data-root", value_name = "PATH")]
    pub data_root: Option<PathBuf>,
    /// Root directory for execution state files [default: /run/berth]
    #[arg(long = "exec-root", value_name = "PATH")]
    pub exec_root: Option<PathBuf>,
    /// Daemon socket(s) to connect to [default: unix:///run/berth/berth.sock]
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Vec<String>,
    /// Daemon configuration file
    #[arg(
        long = "config-file",
        value_name = "PATH",
        default_value = "/etc/berth/daemon.json"
    )]
    pub config_file: PathBuf,
    /// Set the logging level ("debug"|"info"|"warn"|"error"|"fatal") [default: info]
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Default OCI runtime for containers [default: runc]
    #[arg(long = "default-runtime", value_name = "NAME")]
    pub default_runtime: Option<String>,
    /// Register an additional OCI compatible runtime (name=path)
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    pub add_runtime: Vec<String>,
    /// Enable live restore of containers when the daemon stops
    #[arg(long = "live-restore", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub live_restore: Option<bool>,
    /// Default driver for container logs [default: json-file]
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Default log driver options for containers (k=v)
    #[arg(long = "log-opt", value_name = "K=V")]
    pub log_opt: Vec<String>,
    /// Default ulimits for containers (name=soft[:hard])
    #[arg(long = "default-ulimit", value_name = "ULIMIT")]
    pub default_ulimit: Vec<String>,
    /// Default bridge IP and prefix (e.g. 172.17.0.1/16)
    #[arg(long = "bip", value_name = "CIDR")]
    pub bip: Option<String>,
    /// Attach containers to a network bridge ("none" turns bridge networking off)
    #[arg(short = 'b', long = "bridge", value_name = "NAME")]
    pub bridge: Option<String>,
    /// Enable addition of iptables rules [default: true]
    #[arg(long = "iptables", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub iptables: Option<bool>,
    /// Enable inter-container communication on the default bridge [default: true]
    #[arg(long = "icc", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub icc: Option<bool>,
    /// The largest JSON request body accepted, in bytes or with a unit (e.g. 4MiB); larger ones
    /// get 413 [default: 4MiB]
    #[arg(long = "max-json-body", value_name = "SIZE")]
    pub max_json_body: Option<String>,
    /// The most one image layer may expand to when unpacked (bytes, or with a unit: 256g)
    /// [default: 256g]
    #[arg(long = "max-layer-size", value_name = "SIZE")]
    pub max_layer_size: Option<String>,
    /// The most a layer past 1 GiB may expand per compressed byte [default: 100]
    #[arg(long = "max-layer-ratio", value_name = "N")]
    pub max_layer_ratio: Option<u64>,
    /// The signature policy (containers-policy.json format); an absent file means no policy
    /// [default: /etc/berth/policy.json]
    #[arg(long = "signature-policy", value_name = "PATH")]
    pub signature_policy: Option<PathBuf>,
    /// Where signatures live, registries.d style (use-sigstore-attachments)
    /// [default: /etc/berth/registries.d]
    #[arg(long = "registries-d", value_name = "DIR")]
    pub registries_d: Option<PathBuf>,
    /// Group for the unix socket [default: berth]
    #[arg(short = 'G', long = "group", value_name = "GROUP")]
    pub group: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long = "tls", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls: Option<bool>,
    /// Use TLS and verify the remote (clients must present a certificate signed by the CA)
    #[arg(long = "tlsverify", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA [default: ~/.docker/ca.pem]
    #[arg(long = "tlscacert", value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file [default: ~/.docker/cert.pem]
    #[arg(long = "tlscert", value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file [default: ~/.docker/key.pem]
    #[arg(long = "tlskey", value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
}

pub use crate::hosts::{parse_host, Host};
use crate::tls::TlsSettings;

/// The merged configuration.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub engine: EngineConfig,
    pub hosts: Vec<Host>,
    pub log_level: tracing::Level,
    pub group: String,
    /// Registry settings (see `registry_config.rs`).
    pub registry: berth_engine::registry::RegistrySettings,
    /// The largest JSON request body accepted (bytes); data bodies (archives, build contexts,
    /// image loads) stream to disk and have no such cap.
    pub max_json_body: u64,
    /// TLS for tcp listeners (`--tls`/`--tlsverify`); `None` when off.
    pub tls: Option<TlsSettings>,
    /// The `authorization` section (roles per client identity); `None`: no checks.
    pub authz: Option<crate::authz::Policy>,
}

/// The default of `max-json-body`: far above any real create or update request.
pub const DEFAULT_MAX_JSON_BODY: u64 = 4 << 20;

const KNOWN_KEYS: &[&str] = &[
    "data-root",
    "exec-root",
    "hosts",
    "log-level",
    "default-runtime",
    "runtimes",
    "default-ulimits",
    "live-restore",
    "log-driver",
    "log-opts",
    "group",
    "bip",
    "bridge",
    "iptables",
    "icc",
    "insecure-registries",
    "registry-mirrors",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-json-body",
    "max-layer-size",
    "max-layer-ratio",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
    "authorization",
    "signature-policy",
    "registries-d",
];

/// Reads the config file (a missing file is no configuration) and merges it with the flags.
pub fn load(args: &DaemonArgs) -> Result<DaemonConfig, String> {
    let file = read_file(&args.config_file)?;
    merge(args, file.as_ref())
}

fn read_file(path: &Path) -> Result<Option<Map<String, Value>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "unable to read configuration file {}: {e}",
                path.display()
            ))
        }
    };
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(format!(
            "unable to configure the daemon with file {}: not a JSON object",
            path.display()
        )),
        Err(e) => Err(format!(
            "unable to configure the daemon with file {}: {e}",
            path.display()
        )),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Merges flags over the file's keys; a scalar key given both ways, or an unknown key, is an
/// error. Map-like settings (runtimes, log-opts, default-ulimits) merge, flags winning.
pub fn merge(args: &DaemonArgs, file: Option<&Map<String, Value>>) -> Result<DaemonConfig, String> {
    let empty = Map::new();
    let file = file.unwrap_or(&empty);

    let unknown: Vec<&str> = file
        .keys()
        .map(String::as_str)
        .filter(|k| !KNOWN_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the following directives don't match any configuration option: {}",
            unknown.join(", ")
        ));
    }

    let mut flag_set: Vec<(&str, String)> = Vec::new();
    let opt = |v: Option<String>, k: &'static str, set: &mut Vec<(&str, String)>| {
        if let Some(v) = v {
            set.push((k, v));
        }
    };
    opt(
        args.data_root.as_ref().map(|p| p.display().to_string()),
        "data-root",
        &mut flag_set,
    );
    opt(
        args.exec_root.as_ref().map(|p| p.display().to_string()),
        "exec-root",
        &mut flag_set,
    );
    if !args.host.is_empty() {
        flag_set.push(("hosts", args.host.join(", ")));
    }
    opt(args.log_level.clone(), "log-level", &mut flag_set);
    opt(
        args.default_runtime.clone(),
        "default-runtime",
        &mut flag_set,
    );
    opt(
        args.live_restore.map(|b| b.to_string()),
        "live-restore",
        &mut flag_set,
    );
    opt(args.log_driver.clone(), "log-driver", &mut flag_set);
    opt(args.group.clone(), "group", &mut flag_set);
    opt(args.bip.clone(), "bip", &mut flag_set);
    opt(args.bridge.clone(), "bridge", &mut flag_set);
    opt(
        args.iptables.map(|b| b.to_string()),
        "iptables",
        &mut flag_set,
    );
    opt(args.icc.map(|b| b.to_string()), "icc", &mut flag_set);
    opt(args.max_json_body.clone(), "max-json-body", &mut flag_set);
    opt(
        args.signature_policy
            .as_ref()
            .map(|p| p.display().to_string()),
        "signature-policy",
        &mut flag_set,
    );
    opt(
        args.registries_d.as_ref().map(|p| p.display().to_string()),
        "registries-d",
        &mut flag_set,
    );
    opt(args.max_layer_size.clone(), "max-layer-size", &mut flag_set);
    opt(
        args.max_layer_ratio.map(|n| n.to_string()),
        "max-layer-ratio",
        &mut flag_set,
    );

    opt(args.tls.map(|b| b.to_string()), "tls", &mut flag_set);
    opt(
        args.tlsverify.map(|b| b.to_string()),
        "tlsverify",
        &mut flag_set,
    );
    for (v, k) in [
        (&args.tlscacert, "tlscacert"),
        (&args.tlscert, "tlscert"),
        (&args.tlskey, "tlskey"),
    ] {
        opt(
            v.as_ref().map(|p| p.display().to_string()),
            k,
            &mut flag_set,
        );
    }

    let conflicts: Vec<String> = flag_set
        .iter()
        .filter_map(|(k, fv)| {
            file.get(*k)
                .map(|v| format!("{k}: (from flag: {fv}, from file: {})", show(v)))
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(format!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            conflicts.join(", ")
        ));
    }

    let fstr = |k: &str| -> Result<Option<String>, String> {
        match file.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "invalid value for \"{k}\" in the configuration file: {other} (want a string)"
            )),
        }
    };

    let data_root = args
        .data_root
        .clone()
        .or(fstr("data-root")?.map(PathBuf::from))
        .unwrap_or_else(|| "/var/lib/berth".into());
    let exec_root = args
        .exec_root
        .clone()
        .or(fstr("exec-root")?.map(PathBuf::from))
        .unwrap_or_else(|| "/run/berth".into());

    let host_strs: Vec<String> = if !args.host.is_empty() {
        args.host.clone()
    } else {
        match file.get("hosts") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("invalid \"hosts\" in the configuration file: {e}"))?,
        }
    };
    let tls = tls_settings(args, file, &|k| std::env::var(k).ok())?;
    let mut hosts = host_strs
        .iter()
        .map(|h| parse_host(h, tls.is_some()))
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        hosts.push(Host::Unix(PathBuf::from(crate::hosts::DEFAULT_UNIX_SOCKET)));
    }

    let level_str = args
        .log_level
        .clone()
        .or(fstr("log-level")?)
        .unwrap_or_else(|| "info".into());
    let log_level = parse_level(&level_str)?;

    let mut engine = EngineConfig::with_roots(data_root, exec_root);
    // berth's own runtime, installed next to berthd (and berth), is the default when present;
    // `runc` stays available by name.
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(own) = exe_dir
        .as_ref()
        .map(|d| d.join("berth-runtime"))
        .filter(|p| p.exists())
    {
        engine.runtimes.insert("berth".into(), own);
        engine.default_runtime = "berth".into();
    }
    if let Some(r) = args.default_runtime.clone().or(fstr("default-runtime")?) {
        engine.default_runtime = r;
    }
    if let Some(v) = file.get("runtimes") {
        let m: BTreeMap<String, FileRuntime> = serde_json::from_value(v.clone())
            .map_err(|e| format!("invalid \"runtimes\" in the configuration file: {e}"))?;
        for (name, rt) in m {
            if !rt.runtime_args.is_empty() {
                eprintln!(
                    "berth daemon: warning: runtime {name}: runtimeArgs are not supported, ignored"
                );
            }
            engine.runtimes.insert(name, PathBuf::from(rt.path));
        }
    }
    for spec in &args.add_runtime {
        let (name, path) =
            split_kv(spec).ok_or_else(|| format!("invalid runtime {spec:?}: want name=path"))?;
        engine
            .runtimes
            .insert(name.to_string(), PathBuf::from(path));
    }
    if !engine.runtimes.contains_key(&engine.default_runtime) {
        return Err(format!(
            "default runtime {:?} is not a configured runtime",
            engine.default_runtime
        ));
    }

    engine.live_restore = match (args.live_restore, file.get("live-restore")) {
        (Some(b), _) => b,
        (None, Some(Value::Bool(b))) => *b,
        // berth's default: running containers outlive a daemon stop.
        (None, None | Some(Value::Null)) => true,
        (None, Some(other)) => {
            return Err(format!(
                "invalid value for \"live-restore\" in the configuration file: {other}"
            ))
        }
    };
    let fbool = |flag: Option<bool>, key: &str, default: bool| -> Result<bool, String> {
        match (flag, file.get(key)) {
            (Some(b), _) => Ok(b),
            (None, Some(Value::Bool(b))) => Ok(*b),
            (None, None | Some(Value::Null)) => Ok(default),
            (None, Some(other)) => Err(format!(
                "invalid value for {key:?} in the configuration file: {other}"
            )),
        }
    };
    engine.iptables = fbool(args.iptables, "iptables", true)?;
    engine.icc = fbool(args.icc, "icc", true)?;
    engine.bip = args.bip.clone().or(fstr("bip")?);
    engine.networking = args.bridge.clone().or(fstr("bridge")?).as_deref() != Some("none");
    if let Some(d) = args.log_driver.clone().or(fstr("log-driver")?) {
        engine.log_driver = d;
    }
    if let Some(v) = file.get("log-opts") {
        let m: BTreeMap<String, String> = serde_json::from_value(v.clone())
            .map_err(|e| format!("invalid \"log-opts\" in the configuration file: {e}"))?;
        engine.log_opts.extend(m);
    }
    for kv in &args.log_opt {
        let (k, v) =
            split_kv(kv).ok_or_else(|| format!("invalid log-opt {kv:?}: want key=value"))?;
        engine.log_opts.insert(k.to_string(), v.to_string());
    }
    if let Some(v) = file.get("default-ulimits") {
        let m: BTreeMap<String, Ulimit> = serde_json::from_value(v.clone())
            .map_err(|e| format!("invalid \"default-ulimits\" in the configuration file: {e}"))?;
        for (name, mut u) in m {
            if u.name.is_empty() {
                u.name = name;
            }
            engine.default_ulimits.push(u);
        }
    }
    for u in &args.default_ulimit {
        let u = parse_ulimit(u)?;
        engine.default_ulimits.retain(|x| x.name != u.name);
        engine.default_ulimits.push(u);
    }
    engine.shim_path = exe_dir
        .map(|d| d.join("berth-shim"))
        .unwrap_or_else(|| PathBuf::from("berth-shim"));
    engine.init_path = if Path::new("/usr/bin/tini-static").exists() {
        PathBuf::from("/usr/bin/tini-static")
    } else {
        PathBuf::from("/sbin/docker-init")
    };

    let group = args
        .group
        .clone()
        .or(fstr("group")?)
        .unwrap_or_else(|| "berth".into());
    engine.layer_limits = layer_limits(args, file)?;
    if let Some(p) = args
        .signature_policy
        .clone()
        .or(fstr("signature-policy")?.map(PathBuf::from))
    {
        engine.trust.policy = p;
    }
    if let Some(p) = args
        .registries_d
        .clone()
        .or(fstr("registries-d")?.map(PathBuf::from))
    {
        engine.trust.registries_d = p;
    }
    let max_json_body = size_setting(args.max_json_body.as_ref(), file, "max-json-body", 1024)?
        .unwrap_or(DEFAULT_MAX_JSON_BODY);
    Ok(DaemonConfig {
        engine,
        hosts,
        log_level,
        group,
        registry: crate::registry_config::parse(file)?,
        max_json_body,
        tls,
        authz: match file.get("authorization") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let mut p = crate::authz::Policy::parse(v)?;
                p.resolve_paths(&crate::authz::resolve_host_path);
                Some(p)
            }
        },
    })
}

/// `tls`, `tlsverify` and the three paths, as dockerd takes them: `--tlsverify` (given at
/// all, or `DOCKER_TLS_VERIFY` set) turns TLS on; paths default to `ca.pem`, `cert.pem` and
/// `key.pem` in `$DOCKER_CERT_PATH` (else `~/.docker`).
fn tls_settings(
    args: &DaemonArgs,
    file: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TlsSettings>, String> {
    let fbool = |flag: Option<bool>, key: &str| -> Result<Option<bool>, String> {
        match (flag, file.get(key)) {
            (Some(b), _) => Ok(Some(b)),
            (None, Some(Value::Bool(b))) => Ok(Some(*b)),
            (None, None | Some(Value::Null)) => Ok(None),
            (None, Some(other)) => Err(format!(
                "invalid value for {key:?} in the configuration file: {other}"
            )),
        }
    };
    let fpath = |flag: &Option<PathBuf>, key: &str| -> Result<Option<PathBuf>, String> {
        match (flag, file.get(key)) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(Value::String(s))) => Ok(Some(PathBuf::from(s))),
            (None, None | Some(Value::Null)) => Ok(None),
            (None, Some(other)) => Err(format!(
                "invalid value for {key:?} in the configuration file: {other} (want a path)"
            )),
        }
    };
    let verify_set = fbool(args.tlsverify, "tlsverify")?;
    let env_verify = env("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
    let verify = verify_set.unwrap_or(env_verify);
    // As dockerd: giving --tlsverify at all (even =false) turns TLS on.
    let tls = fbool(args.tls, "tls")?.unwrap_or(false) || verify_set.is_some() || verify;
    if !tls {
        return Ok(None);
    }
    let dir = crate::tls::default_cert_dir(env);
    Ok(Some(TlsSettings {
        verify,
        ca: fpath(&args.tlscacert, "tlscacert")?
            .unwrap_or_else(|| dir.join(crate::tls::DEFAULT_CA_FILE)),
        cert: fpath(&args.tlscert, "tlscert")?
            .unwrap_or_else(|| dir.join(crate::tls::DEFAULT_CERT_FILE)),
        key: fpath(&args.tlskey, "tlskey")?
            .unwrap_or_else(|| dir.join(crate::tls::DEFAULT_KEY_FILE)),
    }))
}

/// `max-layer-size` and `max-layer-ratio`, from the flags or the file.
fn layer_limits(
    args: &DaemonArgs,
    file: &Map<String, Value>,
) -> Result<berth_engine::LayerLimits, String> {
    let mut limits = berth_engine::LayerLimits::default();
    if let Some(n) = size_setting(args.max_layer_size.as_ref(), file, "max-layer-size", 1)? {
        limits.max_size = n;
    }
    let ratio = match (args.max_layer_ratio, file.get("max-layer-ratio")) {
        (Some(n), _) => Some(n),
        (None, Some(Value::Number(n))) if n.as_u64().is_some() => n.as_u64(),
        (None, None | Some(Value::Null)) => None,
        (None, Some(other)) => {
            return Err(format!("invalid value for \"max-layer-ratio\": {other}"))
        }
    };
    if let Some(n) = ratio {
        if n == 0 {
            return Err("invalid value for \"max-layer-ratio\": 0".into());
        }
        limits.max_ratio = n;
    }
    Ok(limits)
}

/// A size setting (`max-json-body`, `max-layer-size`) from its flag or the file: bytes, or a
/// size with a unit (`4m`), at least `min` bytes; `None` when neither sets it.
fn size_setting(
    flag: Option<&String>,
    file: &Map<String, Value>,
    key: &str,
    min: u64,
) -> Result<Option<u64>, String> {
    let text = match (flag, file.get(key)) {
        (Some(s), _) | (None, Some(Value::String(s))) => s.clone(),
        (None, Some(Value::Number(n))) => n.to_string(),
        (None, None | Some(Value::Null)) => return Ok(None),
        (None, Some(other)) => return Err(format!("invalid value for {key:?}: {other}")),
    };
    let n = berth_engine::spec::parse_size(&text)
        .map_err(|e| format!("invalid value for {key:?}: {e}"))?;
    if n < 0 || (n as u64) < min {
        return Err(format!(
            "invalid value for {key:?}: {text} is less than {min} bytes"
        ));
    }
    Ok(Some(n as u64))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileRuntime {
    path: String,
    #[serde(default)]
    runtime_args: Vec<String>,
}

fn split_kv(s: &str) -> Option<(&str, &str)> {
    let (k, v) = s.split_once('=')?;
    (!k.is_empty()).then_some((k, v))
}

pub fn parse_level(s: &str) -> Result<tracing::Level, String> {
    match s.to_ascii_lowercase().as_str() {
        "debug" | "trace" => Ok(tracing::Level::DEBUG),
        "info" => Ok(tracing::Level::INFO),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "error" | "fatal" | "panic" => Ok(tracing::Level::ERROR),
        _ => Err(format!("unable to parse logging level: {s}")),
    }
}

/// `nofile=1024:2048` (hard defaults to soft).
pub fn parse_ulimit(s: &str) -> Result<Ulimit, String> {
    let bad = || format!("invalid ulimit argument: {s}");
    let (name, vals) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if name.is_empty() || soft > hard {
        return Err(bad());
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
