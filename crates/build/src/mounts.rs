//! `RUN --mount=…` values: `type=bind|cache|tmpfs|secret` and their options, with BuildKit's
//! defaults (bind mounts read-only, cache ids default to the target, secrets at
//! `/run/secrets/<id>` with mode 0400).

use std::path::PathBuf;

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN step. The parser fills the options; the driver fills
/// `from_image` (the image id of `from=`) and `secret_file` before handing it to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    /// Absolute path in the container (relative targets are made absolute against WORKDIR).
    pub target: String,
    /// `source=`: the path inside the build context or `from` image (bind, cache), default `/`.
    pub source: Option<String>,
    /// `from=`: a stage name/index or image, as written.
    pub from: Option<String>,
    /// Set by the driver: the image id `from` resolved to. `None` for a bind mount means the
    /// build context.
    pub from_image: Option<String>,
    /// `id=` (cache: defaults to the target; secret: defaults to the target's base name).
    pub id: String,
    pub sharing: CacheSharing,
    pub read_only: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs `size=` in bytes.
    pub size: Option<u64>,
    /// secret `required=true`: missing secrets fail the step.
    pub required: bool,
    /// Set by the driver for secrets: the file with the secret's value on the host.
    pub secret_file: Option<PathBuf>,
}

/// The `from=` of a mount value, if any (for the stage graph).
pub fn mount_from(value: &str) -> Option<String> {
    value.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("from")).then(|| v.trim().to_string())
    })
}

/// Parses one `--mount=` value.
pub fn parse_mount(value: &str) -> Result<RunMount, String> {
    let mut m = RunMount {
        kind: MountKind::Bind,
        target: String::new(),
        source: None,
        from: None,
        from_image: None,
        id: String::new(),
        sharing: CacheSharing::Shared,
        read_only: true,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        secret_file: None,
    };
    let mut read_only: Option<bool> = None;
    let fields: Vec<(String, Option<String>)> = value
        .split(',')
        .filter(|f| !f.trim().is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (f.trim().to_ascii_lowercase(), None),
        })
        .collect();
    if let Some((_, Some(t))) = fields.iter().find(|(k, _)| k == "type") {
        m.kind = match t.as_str() {
            "bind" => MountKind::Bind,
            "cache" => MountKind::Cache,
            "tmpfs" => MountKind::Tmpfs,
            "secret" => MountKind::Secret,
            other => {
                return Err(format!(
                    "unsupported mount type {}",
                    crate::gofmt::quote(other)
                ))
            }
        };
    }
    let parse_u32 = |k: &str, v: &str, radix: u32| {
        u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {k}: {v}"))
    };
    for (k, v) in &fields {
        let need = || {
            v.clone()
                .ok_or_else(|| format!("invalid field '{k}' must be a key=value pair"))
        };
        let flag = || match v.as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!("invalid value for {k}: {other}")),
        };
        match k.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => m.target = need()?,
            "source" | "src" => m.source = Some(need()?),
            "from" => m.from = Some(need()?),
            "id" => m.id = need()?,
            "sharing" => {
                m.sharing = match need()?.as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    other => {
                        return Err(format!(
                            "unsupported sharing value {}",
                            crate::gofmt::quote(other)
                        ))
                    }
                }
            }
            "ro" | "readonly" => read_only = Some(flag()?),
            "rw" | "readwrite" => read_only = Some(!flag()?),
            "mode" => m.mode = Some(parse_u32(k, &need()?, 8)?),
            "uid" => m.uid = Some(parse_u32(k, &need()?, 10)?),
            "gid" => m.gid = Some(parse_u32(k, &need()?, 10)?),
            "size" => m.size = Some(berth_sys::units::whole_binary_size(&need()?)?),
            "required" => m.required = flag()?,
            other => return Err(format!("unexpected key '{other}' in '{value}'")),
        }
    }
    match m.kind {
        MountKind::Bind => m.read_only = read_only.unwrap_or(true),
        MountKind::Cache => {
            m.read_only = read_only.unwrap_or(false);
            if m.id.is_empty() {
                m.id = m.target.clone();
            }
        }
        MountKind::Tmpfs => m.read_only = false,
        MountKind::Secret => {
            m.read_only = true;
            if m.id.is_empty() {
                m.id = m.target.rsplit('/').next().unwrap_or("").to_string();
            }
            if m.id.is_empty() {
                return Err("secret ID missing from mount options".into());
            }
            if m.target.is_empty() {
                m.target = format!("/run/secrets/{}", m.id);
            }
            m.mode.get_or_insert(0o400);
        }
    }
    if m.target.is_empty() {
        return Err("mount destination must be set".into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_defaults() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked").unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.id, "/root/.cache");
        assert_eq!(m.sharing, CacheSharing::Locked);
        assert!(!m.read_only);
    }

    #[test]
    fn bind_from_stage() {
        let m = parse_mount("type=bind,from=builder,source=/out,target=/in").unwrap();
        assert_eq!(m.kind, MountKind::Bind);
        assert!(m.read_only);
        assert_eq!(m.from.as_deref(), Some("builder"));
        assert_eq!(m.source.as_deref(), Some("/out"));
        assert!(!parse_mount("target=/x,rw").unwrap().read_only);
        assert_eq!(
            mount_from("type=bind,from=builder,target=/in").as_deref(),
            Some("builder")
        );
    }

    #[test]
    fn secret_and_tmpfs() {
        let m = parse_mount("type=secret,id=token").unwrap();
        assert_eq!(m.target, "/run/secrets/token");
        assert_eq!(m.mode, Some(0o400));
        let m = parse_mount("type=secret,id=t,target=/x,required=true,mode=0440").unwrap();
        assert!(m.required);
        assert_eq!(m.mode, Some(0o440));
        let m = parse_mount("type=tmpfs,target=/tmp,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_mount("type=ssh").unwrap_err(),
            "unsupported mount type \"ssh\""
        );
        assert_eq!(
            parse_mount("type=cache").unwrap_err(),
            "mount destination must be set"
        );
        assert!(parse_mount("type=cache,target=/x,bogus=1").is_err());
    }
}
