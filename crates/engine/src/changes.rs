//! `docker import --change` / `docker commit --change`: the Dockerfile instructions that only
//! touch an image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
//! VOLUME, WORKDIR).

use berth_api::{ContainerConfig, StrList};

fn json_or_shell(rest: &str) -> Vec<String> {
    let t = rest.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), t.to_string()]
}

fn key_values(rest: &str) -> Vec<(String, String)> {
    let t = rest.trim();
    if !t.contains('=') {
        if let Some((k, v)) = t.split_once(char::is_whitespace) {
            return vec![(k.to_string(), v.trim().to_string())];
        }
    }
    t.split_whitespace()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        })
        .collect()
}

/// Applies one change instruction to `cfg`.
pub fn apply(cfg: &mut ContainerConfig, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (inst, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    match inst.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = StrList(json_or_shell(rest)),
        "ENTRYPOINT" => cfg.entrypoint = StrList(json_or_shell(rest)),
        "ENV" => {
            for (k, v) in key_values(rest) {
                cfg.env.retain(|e| e.split('=').next() != Some(k.as_str()));
                cfg.env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in key_values(rest) {
                cfg.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(Default::default);
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(Default::default);
            let list = if rest.trim().starts_with('[') {
                json_or_shell(rest)
            } else {
                rest.split_whitespace().map(String::from).collect()
            };
            for v in list {
                vols.insert(v, serde_json::json!({}));
            }
        }
        "USER" => cfg.user = rest.trim().to_string(),
        "WORKDIR" => cfg.working_dir = rest.trim().to_string(),
        "STOPSIGNAL" => cfg.stop_signal = Some(rest.trim().to_string()),
        "ONBUILD" => cfg.on_build.push(rest.trim().to_string()),
        other => return Err(format!("{other} is not a valid change command")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply() {
        let mut c = ContainerConfig::default();
        apply(&mut c, "CMD [\"sh\"]").unwrap();
        apply(&mut c, "ENV A=1 B=2").unwrap();
        apply(&mut c, "ENV C 3").unwrap();
        apply(&mut c, "WORKDIR /srv").unwrap();
        apply(&mut c, "ENTRYPOINT echo hi").unwrap();
        apply(&mut c, "EXPOSE 80").unwrap();
        assert_eq!(c.cmd.0, vec!["sh"]);
        assert_eq!(c.env, vec!["A=1", "B=2", "C=3"]);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.entrypoint.0, vec!["/bin/sh", "-c", "echo hi"]);
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(apply(&mut c, "RUN x").is_err());
    }
}
