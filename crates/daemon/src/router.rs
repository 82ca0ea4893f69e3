//! Request paths → typed routes; the version prefix; query-string values.

use berth_engine::{EngineError, Filters};
use hyper::Method;
use percent_encoding::percent_decode_str;

use crate::error::{bad_request, not_a_swarm_manager, page_not_found};

/// `(major, minor)`.
pub type ApiVersion = (u32, u32);

pub const MIN_VERSION: ApiVersion = (1, 24);
pub const MAX_VERSION: ApiVersion = (1, 50);

/// Strips an optional `/vX.Y` prefix, refusing versions outside 1.24..=1.50.
pub fn split_version(path: &str) -> Result<(Option<ApiVersion>, &str), EngineError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok((None, path));
    }
    let mut parts = ver.split('.');
    let major: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(page_not_found)?;
    let minor: u32 = match parts.next() {
        Some(p) => p.parse().map_err(|_| page_not_found())?,
        None => 0,
    };
    let v = (major, minor);
    if v < MIN_VERSION {
        return Err(bad_request(format!(
            "client version {ver} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            berth_api::MIN_API_VERSION
        )));
    }
    if v > MAX_VERSION {
        return Err(bad_request(format!(
            "client version {ver} is too new. Maximum supported API version is {}",
            berth_api::API_VERSION
        )));
    }
    Ok((Some(v), tail))
}

/// Every route the daemon serves, with its path parameters (URL-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    /// `GET /plugins`: berth has no managed plugins, so always `[]` (as a dockerd without any).
    PluginList,
    ContainerCreate,
    ContainerList,
    ContainerPrune,
    ContainerInspect(String),
    ContainerStart(String),
    ContainerStop(String),
    ContainerRestart(String),
    ContainerKill(String),
    ContainerRemove(String),
    ContainerWait(String),
    ContainerAttach(String),
    ContainerResize(String),
    ContainerLogs(String),
    ContainerPause(String),
    ContainerRename(String),
    ContainerUpdate(String),
    ContainerUnpause(String),
    /// `GET`, `HEAD` and `PUT /containers/{id}/archive`.
    ContainerArchive(String),
    ContainerExport(String),
    ContainerChanges(String),
    ContainerTop(String),
    ContainerStats(String),
    ContainerCommit,
    Build,
    BuildPrune,
    ExecCreate(String),
    ExecStart(String),
    ExecInspect(String),
    ExecResize(String),
    ImageList,
    ImagePrune,
    ImageLoad,
    ImageCreate,
    /// `GET /images/get?names=…` or `GET /images/{name}/get`.
    ImageSave(Option<String>),
    ImageInspect(String),
    ImageHistory(String),
    ImageTag(String),
    ImageRemove(String),
    /// `POST /images/{name}/push`.
    ImagePush(String),
    /// `GET /images/{name}/log` (berth's own: the tag's past images).
    ImageTagLog(String),
    /// `POST /images/{name}/rollback` (berth's own: the tag back to its previous image).
    ImageRollback(String),
    /// `POST /images/{name}/signatures` (berth's own: store a client-made signature).
    ImageSignatures(String),
    /// `POST /auth`.
    Auth,
    /// `GET /distribution/{name}/json`.
    DistributionInspect(String),
    NetworkList,
    NetworkCreate,
    NetworkPrune,
    NetworkInspect(String),
    NetworkRemove(String),
    NetworkConnect(String),
    NetworkDisconnect(String),
    Events,
    SystemDf,
    VolumeList,
    VolumeCreate,
    VolumePrune,
    VolumeInspect(String),
    VolumeRemove(String),
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Routes a version-less path.
pub fn route(method: &Method, path: &str) -> Result<Route, EngineError> {
    use Route::*;
    let m = method.as_str();
    if let Some(rest) = path.strip_prefix("/images/") {
        return route_image(m, rest);
    }
    if let Some(rest) = path.strip_prefix("/distribution/") {
        return match (m, rest.strip_suffix("/json").map(decode)) {
            ("GET", Some(name)) if !name.is_empty() => Ok(DistributionInspect(name)),
            _ => Err(page_not_found()),
        };
    }
    if m == "POST" && path == "/auth" {
        return Ok(Auth);
    }
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let r = match (m, s.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Ping,
        ("GET", ["version"]) => Version,
        ("GET", ["info"]) => Info,
        ("GET", ["plugins"]) => PluginList,
        ("GET", ["system", "df"]) => SystemDf,
        ("POST", ["containers", "create"]) => ContainerCreate,
        ("GET", ["containers", "json"]) => ContainerList,
        ("POST", ["containers", "prune"]) => ContainerPrune,
        ("GET", ["containers", id, "json"]) => ContainerInspect(id.to_string()),
        ("POST", ["containers", id, "start"]) => ContainerStart(id.to_string()),
        ("POST", ["containers", id, "stop"]) => ContainerStop(id.to_string()),
        ("POST", ["containers", id, "restart"]) => ContainerRestart(id.to_string()),
        ("POST", ["containers", id, "kill"]) => ContainerKill(id.to_string()),
        ("DELETE", ["containers", id]) => ContainerRemove(id.to_string()),
        ("POST", ["containers", id, "wait"]) => ContainerWait(id.to_string()),
        ("POST", ["containers", id, "attach"]) => ContainerAttach(id.to_string()),
        ("POST", ["containers", id, "resize"]) => ContainerResize(id.to_string()),
        ("GET", ["containers", id, "logs"]) => ContainerLogs(id.to_string()),
        ("POST", ["containers", id, "pause"]) if !id.is_empty() => ContainerPause(id.to_string()),
        ("POST", ["containers", id, "rename"]) if !id.is_empty() => ContainerRename(id.to_string()),
        ("POST", ["containers", id, "update"]) if !id.is_empty() => ContainerUpdate(id.to_string()),
        ("POST", ["containers", id, "unpause"]) if !id.is_empty() => {
            ContainerUnpause(id.to_string())
        }
        ("GET" | "HEAD" | "PUT", ["containers", id, "archive"]) if !id.is_empty() => {
            ContainerArchive(id.to_string())
        }
        ("GET", ["containers", id, "export"]) if !id.is_empty() => ContainerExport(id.to_string()),
        ("GET", ["containers", id, "changes"]) if !id.is_empty() => {
            ContainerChanges(id.to_string())
        }
        ("GET", ["containers", id, "top"]) if !id.is_empty() => ContainerTop(id.to_string()),
        ("GET", ["containers", id, "stats"]) if !id.is_empty() => ContainerStats(id.to_string()),
        ("POST", ["containers", id, "exec"]) => ExecCreate(id.to_string()),
        ("POST", ["exec", id, "start"]) => ExecStart(id.to_string()),
        ("GET", ["exec", id, "json"]) => ExecInspect(id.to_string()),
        ("POST", ["exec", id, "resize"]) => ExecResize(id.to_string()),
        ("GET", ["images", "json"]) => ImageList,
        ("GET", ["events"]) => Events,
        ("GET", ["volumes"]) => VolumeList,
        ("POST", ["volumes", "create"]) => VolumeCreate,
        ("POST", ["volumes", "prune"]) => VolumePrune,
        ("POST", ["commit"]) => ContainerCommit,
        ("POST", ["build"]) => Build,
        ("POST", ["build", "prune"]) => BuildPrune,
        ("GET", ["volumes", name]) if !name.is_empty() => VolumeInspect(name.to_string()),
        ("DELETE", ["volumes", name]) if !name.is_empty() => VolumeRemove(name.to_string()),
        ("GET", ["networks"]) => NetworkList,
        ("POST", ["networks", "create"]) => NetworkCreate,
        ("POST", ["networks", "prune"]) => NetworkPrune,
        ("GET", ["networks", id]) if !id.is_empty() => NetworkInspect(id.to_string()),
        ("DELETE", ["networks", id]) if !id.is_empty() => NetworkRemove(id.to_string()),
        ("POST", ["networks", id, "connect"]) if !id.is_empty() => NetworkConnect(id.to_string()),
        ("POST", ["networks", id, "disconnect"]) if !id.is_empty() => {
            NetworkDisconnect(id.to_string())
        }
        (_, ["swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs", ..]) => {
            return Err(not_a_swarm_manager())
        }
        _ => return Err(page_not_found()),
    };
    match &r {
        ContainerInspect(id) | ContainerStart(id) | ContainerStop(id) | ContainerRestart(id)
        | ContainerKill(id) | ContainerRemove(id) | ContainerWait(id) | ContainerAttach(id)
        | ContainerResize(id) | ContainerLogs(id) | ExecCreate(id) | ExecStart(id)
        | ExecInspect(id) | ExecResize(id)
            if id.is_empty() =>
        {
            Err(page_not_found())
        }
        _ => Ok(r),
    }
}

/// Image names hold slashes (`localhost:5000/a/b:t`): the action is the last segment.
fn route_image(m: &str, rest: &str) -> Result<Route, EngineError> {
    use Route::*;
    match (m, rest) {
        ("GET", "json") => return Ok(ImageList),
        ("POST", "prune") => return Ok(ImagePrune),
        ("POST", "load") => return Ok(ImageLoad),
        ("POST", "create") => return Ok(ImageCreate),
        ("GET", "get") => return Ok(ImageSave(None)),
        _ => {}
    }
    if m == "DELETE" {
        let name = decode(rest);
        return if name.is_empty() {
            Err(page_not_found())
        } else {
            Ok(ImageRemove(name))
        };
    }
    let (name, action) = rest.rsplit_once('/').ok_or_else(page_not_found)?;
    let name = decode(name);
    if name.is_empty() {
        return Err(page_not_found());
    }
    match (m, action) {
        ("GET", "json") => Ok(ImageInspect(name)),
        ("GET", "history") => Ok(ImageHistory(name)),
        ("POST", "tag") => Ok(ImageTag(name)),
        ("POST", "push") => Ok(ImagePush(name)),
        ("GET", "log") => Ok(ImageTagLog(name)),
        ("POST", "rollback") => Ok(ImageRollback(name)),
        ("POST", "signatures") => Ok(ImageSignatures(name)),
        ("GET", "get") => Ok(ImageSave(Some(name))),
        _ => Err(page_not_found()),
    }
}

/// A parsed query string.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// The value, with an empty one as absent.
    pub fn non_empty(&self, k: &str) -> Option<String> {
        self.get(k).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn bool(&self, k: &str) -> bool {
        self.get(k).is_some_and(parse_bool)
    }

    pub fn bool_or(&self, k: &str, default: bool) -> bool {
        self.get(k).map_or(default, parse_bool)
    }

    pub fn int<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, EngineError> {
        match self.get(k).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| bad_request(format!("invalid value for {k}: {v:?}: invalid syntax"))),
        }
    }

    pub fn filters(&self) -> Result<Filters, EngineError> {
        parse_filters(self.get("filters"))
    }
}

/// Docker's BoolValue: empty, `0`, `no`, `false`, `none` are false; anything else true.
pub fn parse_bool(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

/// `{"k":["v"]}` or the older `{"k":{"v":true}}`.
pub fn parse_filters(s: Option<&str>) -> Result<Filters, EngineError> {
    let mut out = Filters::new();
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(out);
    };
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| bad_request(format!("invalid filter: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad_request("invalid filter: not a JSON object"))?;
    for (k, val) in obj {
        let vals: Vec<String> = match val {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        bad_request(format!("invalid filter: {k}: {x} is not a string"))
                    })
                })
                .collect::<Result<_, _>>()?,
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            other => return Err(bad_request(format!("invalid filter: {k}: {other}"))),
        };
        out.insert(k.clone(), vals);
    }
    Ok(out)
}

/// `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`
pub fn valid_container_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    let rest = chars.as_str();
    !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            split_version("/v1.41/containers/json").unwrap(),
            (Some((1, 41)), "/containers/json")
        );
        assert_eq!(split_version("/_ping").unwrap(), (None, "/_ping"));
        assert_eq!(split_version("/v1.50/_ping").unwrap().1, "/_ping");
        let e = split_version("/v1.12/info").unwrap_err().to_string();
        assert_eq!(e, "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version");
        let e = split_version("/v1.99/info").unwrap_err().to_string();
        assert_eq!(
            e,
            "client version 1.99 is too new. Maximum supported API version is 1.50"
        );
        assert!(split_version("/v2.0/info").is_err());
        assert_eq!(split_version("/version").unwrap(), (None, "/version"));
    }

    #[test]
    fn swarm_endpoints_say_no_swarm() {
        for (m, path) in [
            (Method::GET, "/swarm"),
            (Method::POST, "/swarm/init"),
            (Method::GET, "/nodes"),
            (Method::GET, "/services/x"),
            (Method::DELETE, "/secrets/x"),
            (Method::GET, "/configs"),
            (Method::GET, "/tasks/x/logs"),
        ] {
            let e = route(&m, path).unwrap_err();
            assert!(
                matches!(e, EngineError::Unavailable(_)),
                "{m} {path}: {e:?}"
            );
            assert!(e
                .to_string()
                .starts_with("This node is not a swarm manager."));
        }
        assert_eq!(route(&Method::GET, "/plugins").unwrap(), Route::PluginList);
        assert!(matches!(
            route(&Method::GET, "/plugins/x/json").unwrap_err(),
            EngineError::NotFound(_)
        ));
    }

    #[test]
    fn routes() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(route(&g, "/_ping").unwrap(), Route::Ping);
        assert_eq!(route(&Method::HEAD, "/_ping").unwrap(), Route::Ping);
        assert_eq!(
            route(&p, "/containers/abc/start").unwrap(),
            Route::ContainerStart("abc".into())
        );
        assert_eq!(
            route(&Method::DELETE, "/containers/abc").unwrap(),
            Route::ContainerRemove("abc".into())
        );
        assert_eq!(
            route(&p, "/exec/e1/start").unwrap(),
            Route::ExecStart("e1".into())
        );
        assert_eq!(route(&g, "/images/json").unwrap(), Route::ImageList);
        assert_eq!(
            route(&g, "/images/localhost:5000/a/b:t/json").unwrap(),
            Route::ImageInspect("localhost:5000/a/b:t".into())
        );
        assert_eq!(
            route(&g, "/images/a%2Fb/history").unwrap(),
            Route::ImageHistory("a/b".into())
        );
        assert_eq!(
            route(&p, "/images/busybox/tag").unwrap(),
            Route::ImageTag("busybox".into())
        );
        assert_eq!(
            route(&Method::DELETE, "/images/x/y:1").unwrap(),
            Route::ImageRemove("x/y:1".into())
        );
        assert_eq!(route(&g, "/images/get").unwrap(), Route::ImageSave(None));
        assert_eq!(
            route(&p, "/images/localhost:5000/a/b/push").unwrap(),
            Route::ImagePush("localhost:5000/a/b".into())
        );
        assert_eq!(route(&p, "/auth").unwrap(), Route::Auth);
        assert_eq!(
            route(&g, "/distribution/localhost:5000/a:t/json").unwrap(),
            Route::DistributionInspect("localhost:5000/a:t".into())
        );
        assert_eq!(
            route(&g, "/images/busybox/get").unwrap(),
            Route::ImageSave(Some("busybox".into()))
        );
        assert_eq!(
            route(&g, "/images/localhost:5000/a:t/log").unwrap(),
            Route::ImageTagLog("localhost:5000/a:t".into())
        );
        assert_eq!(
            route(&p, "/images/busybox/rollback").unwrap(),
            Route::ImageRollback("busybox".into())
        );
        assert_eq!(
            route(&p, "/images/localhost:5000/a/signatures").unwrap(),
            Route::ImageSignatures("localhost:5000/a".into())
        );
        assert!(route(&g, "/images/busybox/signatures").is_err());
        assert!(route(&p, "/images/busybox/log").is_err());
        assert!(route(&g, "/containers/abc/start").is_err());
        assert!(route(&g, "/nope").is_err());
        assert!(route(&p, "/containers//start").is_err());
    }

    #[test]
    fn bools() {
        for t in ["1", "true", "True", "yes"] {
            assert!(parse_bool(t), "{t}");
        }
        for f in ["0", "false", "False", "", "no"] {
            assert!(!parse_bool(f), "{f}");
        }
        let q = Query::parse(Some("all=1&size=0&names=a&names=b&t=5"));
        assert!(q.bool("all"));
        assert!(!q.bool("size"));
        assert!(!q.bool("missing"));
        assert!(q.bool_or("missing", true));
        assert_eq!(q.all("names"), vec!["a", "b"]);
        assert_eq!(q.int::<i64>("t").unwrap(), Some(5));
        assert!(Query::parse(Some("t=x")).int::<i64>("t").is_err());
    }

    #[test]
    fn filters() {
        let f = parse_filters(Some(r#"{"status":["running","exited"]}"#)).unwrap();
        assert_eq!(f["status"], vec!["running", "exited"]);
        let f = parse_filters(Some(r#"{"label":{"a=b":true}}"#)).unwrap();
        assert_eq!(f["label"], vec!["a=b"]);
        assert!(parse_filters(None).unwrap().is_empty());
        assert!(parse_filters(Some("{bad")).is_err());
        let q = Query::parse(Some("filters=%7B%22name%22%3A%5B%22x%22%5D%7D"));
        assert_eq!(q.filters().unwrap()["name"], vec!["x"]);
    }

    #[test]
    fn names() {
        assert!(valid_container_name("web"));
        assert!(valid_container_name("/my_app-1.2"));
        assert!(!valid_container_name("a"));
        assert!(!valid_container_name("_x"));
        assert!(!valid_container_name("bad name"));
        assert!(!valid_container_name("x/y"));
    }
}
