//! daemon.json's registry keys: `insecure-registries`, `registry-mirrors`,
//! `max-concurrent-downloads` (default 3), `max-concurrent-uploads` (default 5); and the certs.d
//! directory (`/etc/berth/certs.d`, or `$BERTH_CERTS_D` for tests); and, for tests, the sizes
//! of chunked blob uploads (`$BERTH_REGISTRY_CHUNKED_THRESHOLD`, `$BERTH_REGISTRY_CHUNK_SIZE`,
//! in bytes); and, for tests, which cannot reach Docker Hub, where docker.io is reached
//! (`$BERTH_DOCKER_IO_ENDPOINT`, `scheme://host[:port]`).

use std::path::PathBuf;

use berth_engine::registry::RegistrySettings;
use serde_json::{Map, Value};

/// Reads the registry settings from the configuration file's keys.
pub fn parse(file: &Map<String, Value>) -> Result<RegistrySettings, String> {
    let mut s = RegistrySettings::default();
    let list = |k: &str| -> Result<Vec<String>, String> {
        match file.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("invalid \"{k}\" in the configuration file: {e}")),
        }
    };
    let count = |k: &str, default: usize| -> Result<usize, String> {
        match file.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => {
                Ok(n.as_u64().unwrap_or(1) as usize)
            }
            Some(other) => Err(format!(
                "invalid value for \"{k}\" in the configuration file: {other} (want a positive integer)"
            )),
        }
    };
    s.options.insecure_registries = list("insecure-registries")?;
    s.options.mirrors = list("registry-mirrors")?;
    for m in &s.options.mirrors {
        if !(m.starts_with("http://") || m.starts_with("https://")) {
            return Err(format!(
                "invalid mirror: unsupported scheme \"{m}\" in \"{m}\": must use either 'https://' or 'http://'"
            ));
        }
    }
    s.max_concurrent_downloads = count("max-concurrent-downloads", 3)?;
    s.max_concurrent_uploads = count("max-concurrent-uploads", 5)?;
    if let Some(d) = std::env::var_os("BERTH_CERTS_D").filter(|d| !d.is_empty()) {
        s.options.certs_dir = PathBuf::from(d);
    }
    let bytes_from_env = |k: &str| -> Result<Option<u64>, String> {
        match std::env::var(k) {
            Ok(v) if !v.is_empty() => match v.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(format!(
                    "invalid ${k}: {v:?} (want a positive number of bytes)"
                )),
            },
            _ => Ok(None),
        }
    };
    if let Ok(e) = std::env::var("BERTH_DOCKER_IO_ENDPOINT") {
        if !e.is_empty() {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!(
                    "invalid $BERTH_DOCKER_IO_ENDPOINT: {e:?} (want http:// or https://)"
                ));
            }
            s.options.docker_io_endpoint = Some(e);
        }
    }
    if let Some(n) = bytes_from_env("BERTH_REGISTRY_CHUNKED_THRESHOLD")? {
        s.options.upload.chunked_threshold = n;
    }
    if let Some(n) = bytes_from_env("BERTH_REGISTRY_CHUNK_SIZE")? {
        s.options.upload.chunk_size = n;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let v: Value = serde_json::json!({
            "insecure-registries": ["myreg:5000"],
            "registry-mirrors": ["https://mirror.example"],
            "max-concurrent-downloads": 6,
        });
        let s = parse(v.as_object().unwrap()).unwrap();
        assert_eq!(s.options.insecure_registries, vec!["myreg:5000"]);
        assert_eq!(s.max_concurrent_downloads, 6);
        assert_eq!(s.max_concurrent_uploads, 5);
        let bad: Value = serde_json::json!({"max-concurrent-downloads": 0});
        assert!(parse(bad.as_object().unwrap()).is_err());
        let bad: Value = serde_json::json!({"registry-mirrors": ["mirror"]});
        assert!(parse(bad.as_object().unwrap()).is_err());
    }
}
