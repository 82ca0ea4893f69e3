//! Authorization (beyond Docker, where reaching the socket is root-equivalent): the
//! daemon.json `authorization` section maps client identities to roles, and [`authorize`]
//! decides one request from its method, route, query and JSON body. Pure logic: the caller
//! supplies the identity (`listeners::Peer`) and a path resolver for bind sources.
//!
//! Roles: `admin` (everything), `operator` (everything except what grants root on the host:
//! privileged containers, capabilities beyond Docker's default set, host namespaces, bind
//! mounts outside `allowed-bind-paths`, devices, seccomp/AppArmor/SELinux confinement
//! turned off, unmasked system paths, privileged exec, volumes that mount host devices,
//! builds on the host's network), `viewer` (GET and HEAD only, no attach, no exec).
//!
//! ```json
//! "authorization": {
//!   "identities": {"uid:1000": "operator", "gid:50": "viewer", "cn:alice": "admin",
//!                  "san:ci.example.com": "operator"},
//!   "default": "viewer",
//!   "allowed-bind-paths": ["/srv"]
//! }
//! ```
//! An identity matched by nothing gets `default`, and with no `default` nothing at all. Root
//! on the unix socket (uid 0) is `admin` unless `uid:0` is mapped: it owns the daemon's
//! configuration and state anyway.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use hyper::Method;
use serde_json::Value;

use crate::peer::Peer;
use crate::router::Route;

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    fn parse(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            _ => Err(format!(
                "authorization: unknown role {s:?} (admin, operator or viewer)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// The `authorization` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `uid:N`, `gid:N`, `cn:NAME`, `san:NAME` → role.
    identities: BTreeMap<String, Role>,
    default: Option<Role>,
    /// Where operators may bind-mount from (resolved, absolute).
    allowed_bind_paths: Vec<PathBuf>,
}

/// A refusal: the rule that refused and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: &'static str,
    pub reason: String,
}

fn deny(rule: &'static str, reason: impl Into<String>) -> Result<(), Denial> {
    Err(Denial {
        rule,
        reason: reason.into(),
    })
}

impl Policy {
    /// Parses the section; unknown keys, roles or identity forms are errors.
    pub fn parse(v: &Value) -> Result<Policy, String> {
        let obj = v
            .as_object()
            .ok_or("authorization: want an object with \"identities\"")?;
        let mut p = Policy::default();
        for (k, v) in obj {
            match k.as_str() {
                "identities" => {
                    let m = v
                        .as_object()
                        .ok_or("authorization: \"identities\" must map identities to roles")?;
                    for (id, role) in m {
                        check_identity(id)?;
                        let role = role.as_str().ok_or_else(|| {
                            format!("authorization: the role of {id:?} must be a string")
                        })?;
                        p.identities.insert(id.clone(), Role::parse(role)?);
                    }
                }
                "default" => {
                    let s = v
                        .as_str()
                        .ok_or("authorization: \"default\" must be a role name")?;
                    p.default = Some(Role::parse(s)?);
                }
                "allowed-bind-paths" => {
                    let list: Vec<String> = serde_json::from_value(v.clone()).map_err(|_| {
                        "authorization: \"allowed-bind-paths\" must be a list of paths"
                    })?;
                    for s in list {
                        if !s.starts_with('/') {
                            return Err(format!(
                                "authorization: allowed bind path {s:?} is not absolute"
                            ));
                        }
                        p.allowed_bind_paths.push(normalize(Path::new(&s)));
                    }
                }
                other => {
                    return Err(format!(
                        "authorization: unknown key {other:?} (identities, default, \
                         allowed-bind-paths)"
                    ))
                }
            }
        }
        Ok(p)
    }

    /// Resolves the allowed bind paths through `resolve` (symbolic links), once at start.
    pub fn resolve_paths(&mut self, resolve: &dyn Fn(&Path) -> PathBuf) {
        for p in &mut self.allowed_bind_paths {
            *p = resolve(p);
        }
    }

    /// The identity shown in refusals and the role it has.
    pub fn role_of(&self, peer: &Peer) -> (String, Option<Role>) {
        let get = |k: &str| self.identities.get(k).copied();
        match peer {
            Peer::Unix { uid, gid } => {
                let shown = format!("uid:{uid}");
                let role = get(&shown)
                    .or_else(|| get(&format!("gid:{gid}")))
                    .or((*uid == 0).then_some(Role::Admin))
                    .or(self.default);
                (shown, role)
            }
            Peer::Tls {
                cert: Some(cert), ..
            } => {
                let by_cn = cert
                    .common_name
                    .as_ref()
                    .and_then(|cn| get(&format!("cn:{cn}")));
                let by_san = cert.sans.iter().find_map(|s| get(&format!("san:{s}")));
                let shown = match &cert.common_name {
                    Some(cn) => format!("cn:{cn}"),
                    None => format!("san:{}", cert.sans.first().map_or("", String::as_str)),
                };
                (shown, by_cn.or(by_san).or(self.default))
            }
            Peer::Tls { addr, cert: None } => (format!("tls:{addr}"), self.default),
            Peer::Tcp { addr } => (format!("tcp:{addr}"), self.default),
        }
    }

    /// Whether deciding `route` for `role` needs the JSON body.
    pub fn needs_body(role: Option<Role>, route: &Route) -> bool {
        role == Some(Role::Operator)
            && matches!(
                route,
                Route::ContainerCreate | Route::ExecCreate(_) | Route::VolumeCreate
            )
    }

    /// Decides one request. `query` looks up a query parameter; `body` is the parsed JSON body
    /// when [`Policy::needs_body`] asked for it; `resolve` resolves a host path's links.
    pub fn authorize(
        &self,
        role: Option<Role>,
        method: &Method,
        route: &Route,
        query: &dyn Fn(&str) -> Option<String>,
        body: Option<&Value>,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(), Denial> {
        let Some(role) = role else {
            return deny("no-role", "this client has no role");
        };
        match role {
            Role::Admin => Ok(()),
            Role::Viewer => viewer(method, route),
            Role::Operator => self.operator(route, query, body, resolve),
        }
    }

    fn operator(
        &self,
        route: &Route,
        query: &dyn Fn(&str) -> Option<String>,
        body: Option<&Value>,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(), Denial> {
        let empty = Value::Null;
        let body = body.unwrap_or(&empty);
        match route {
            Route::ContainerCreate => self.container_create(body, resolve),
            Route::ExecCreate(_) => {
                if body.get("Privileged").and_then(Value::as_bool) == Some(true) {
                    return deny("privileged-exec", "privileged exec is for admins");
                }
                Ok(())
            }
            Route::VolumeCreate => {
                let opts = body.get("DriverOpts").unwrap_or(&empty);
                self.volume_options(opts, resolve)
            }
            Route::Build => {
                if query("networkmode").as_deref() == Some("host") {
                    return deny(
                        "host-namespace",
                        "builds on the host's network are for admins",
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn container_create(
        &self,
        body: &Value,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(), Denial> {
        let Some(hc) = body.get("HostConfig").filter(|v| !v.is_null()) else {
            return Ok(());
        };
        let s = |k: &str| hc.get(k).and_then(Value::as_str).unwrap_or("");
        let list = |k: &str| -> Vec<Value> {
            hc.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        if hc.get("Privileged").and_then(Value::as_bool) == Some(true) {
            return deny("privileged", "privileged containers are for admins");
        }
        for cap in list("CapAdd") {
            let name = cap.as_str().unwrap_or("").to_ascii_uppercase();
            let full = if name.starts_with("CAP_") {
                name.clone()
            } else {
                format!("CAP_{name}")
            };
            if !berth_engine::defaults::DEFAULT_CAPS.contains(&full.as_str()) {
                return deny(
                    "cap-add",
                    format!("adding {name} (beyond Docker's default capabilities) is for admins"),
                );
            }
        }
        for (key, what) in [
            ("PidMode", "pid"),
            ("NetworkMode", "network"),
            ("IpcMode", "ipc"),
            ("UTSMode", "uts"),
            ("UsernsMode", "userns"),
            ("CgroupnsMode", "cgroupns"),
        ] {
            if s(key) == "host" {
                return deny(
                    "host-namespace",
                    format!("the host's {what} namespace is for admins"),
                );
            }
        }
        if !list("Devices").is_empty()
            || !list("DeviceRequests").is_empty()
            || !list("DeviceCgroupRules").is_empty()
        {
            return deny("devices", "host devices are for admins");
        }
        for opt in list("SecurityOpt") {
            let opt = opt.as_str().unwrap_or("");
            let (k, v) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .unwrap_or((opt, ""));
            let refused = match k {
                "seccomp" | "apparmor" | "systempaths" => true,
                "label" => v == "disable",
                _ => false,
            };
            if refused {
                return deny(
                    "security-opt",
                    format!("--security-opt {k}=… (confinement changed) is for admins"),
                );
            }
        }
        for k in ["MaskedPaths", "ReadonlyPaths"] {
            if hc.get(k).is_some_and(|v| !v.is_null()) {
                return deny("security-opt", format!("{k} (system paths) is for admins"));
            }
        }
        for b in list("Binds") {
            let b = b.as_str().unwrap_or("");
            let src = b.split(':').next().unwrap_or("");
            if src.starts_with('/') {
                self.bind_source(src, resolve)?;
            }
        }
        for m in list("Mounts") {
            match m.get("Type").and_then(Value::as_str).unwrap_or("volume") {
                "bind" => {
                    let src = m.get("Source").and_then(Value::as_str).unwrap_or("");
                    self.bind_source(src, resolve)?;
                }
                "volume" => {
                    if let Some(opts) = m
                        .get("VolumeOptions")
                        .and_then(|o| o.get("DriverConfig"))
                        .and_then(|d| d.get("Options"))
                    {
                        self.volume_options(opts, resolve)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn bind_source(&self, src: &str, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<(), Denial> {
        if !src.starts_with('/') {
            return deny("bind-mount", format!("bind source {src:?} is not absolute"));
        }
        let real = resolve(&normalize(Path::new(src)));
        if self.allowed_bind_paths.iter().any(|a| real.starts_with(a)) {
            return Ok(());
        }
        deny(
            "bind-mount",
            format!(
                "bind mounts from {src} are for admins (allowed-bind-paths: {})",
                if self.allowed_bind_paths.is_empty() {
                    "none".to_string()
                } else {
                    self.allowed_bind_paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        )
    }

    /// The local driver's options: a bind of an allowed path, or tmpfs; any other device
    /// mount (a host disk, NFS) is for admins.
    fn volume_options(
        &self,
        opts: &Value,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(), Denial> {
        let get = |k: &str| opts.get(k).and_then(Value::as_str).unwrap_or("");
        let device = get("device");
        if device.is_empty() {
            return Ok(());
        }
        let bind = get("o").split(',').any(|o| o == "bind" || o == "rbind");
        if bind {
            return self.bind_source(device, resolve);
        }
        if get("type") == "tmpfs" {
            return Ok(());
        }
        deny(
            "volume-device",
            format!("volumes that mount {device} are for admins"),
        )
    }
}

fn viewer(method: &Method, route: &Route) -> Result<(), Denial> {
    if *method != Method::GET && *method != Method::HEAD {
        return deny(
            "read-only",
            format!("a viewer may only read ({method} refused)"),
        );
    }
    if matches!(route, Route::ContainerAttach(_) | Route::ExecStart(_)) {
        return deny("read-only", "a viewer may not attach or exec");
    }
    Ok(())
}

fn check_identity(id: &str) -> Result<(), String> {
    let bad = || format!("authorization: identity {id:?} is not uid:N, gid:N, cn:NAME or san:NAME");
    let (kind, v) = id.split_once(':').ok_or_else(bad)?;
    match kind {
        "uid" | "gid" if v.parse::<u32>().is_ok() => Ok(()),
        "cn" | "san" if !v.is_empty() => Ok(()),
        _ => Err(bad()),
    }
}

/// `..` and `.` folded without touching the file system (`/a/../../b` is `/b`).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Resolves links in the longest existing prefix of `p` (the rest kept as written).
pub fn resolve_host_path(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

#[cfg(test)]
#[path = "authz_tests.rs"]
mod tests;
