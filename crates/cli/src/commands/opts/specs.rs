//! Parsers for the value syntaxes of individual `run`/`create` flags: `--ulimit`, `--mount`,
//! `--device`, `--restart`, `--security-opt` (reading seccomp profiles), and `-p`/`--expose`
//! port specs.

use anyhow::{anyhow, bail, Context, Result};
use berth_api::{
    BindOptions, DeviceMapping, Mount, PortBinding, RestartPolicy, TmpfsOptions, Ulimit,
    VolumeDriverConfig, VolumeOptions,
};

use crate::human::ram_in_bytes;

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

pub fn parse_security_opt(s: &str) -> Result<String> {
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

pub fn parse_port_spec(p: &str) -> String {
    // [ip:][hostPort:]containerPort[/proto] → "containerPort/proto"
    let (ports, proto) = match p.rsplit_once('/') {
        Some((a, b)) => (a, b),
        None => (p, "tcp"),
    };
    let cport = ports.rsplit(':').next().unwrap_or(ports);
    format!("{cport}/{proto}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = parse_ulimit("nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (10, 10));
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=2:1").is_err());
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
