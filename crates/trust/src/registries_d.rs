//! registries.d-style configuration of where signatures live: every `*.yaml` file of a
//! directory (default `/etc/berth/registries.d`) with `default-docker:` and `docker:` scopes.
//! berth reads and writes signatures only as sigstore attachments, so the one setting that
//! applies is `use-sigstore-attachments`; lookaside (`lookaside`, `sigstore`, …) settings are
//! errors that name them. With no configuration at all, attachments are used.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, TrustError};
use crate::reference::DockerReference;

/// Where berth reads registries.d by default.
pub const DEFAULT_REGISTRIES_D: &str = "/etc/berth/registries.d";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeConfig {
    #[serde(rename = "use-sigstore-attachments")]
    use_sigstore_attachments: Option<bool>,
    lookaside: Option<serde_yaml::Value>,
    #[serde(rename = "lookaside-staging")]
    lookaside_staging: Option<serde_yaml::Value>,
    sigstore: Option<serde_yaml::Value>,
    #[serde(rename = "sigstore-staging")]
    sigstore_staging: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(rename = "default-docker")]
    default_docker: Option<ScopeConfig>,
    #[serde(default)]
    docker: BTreeMap<String, ScopeConfig>,
}

/// The merged configuration of a registries.d directory.
#[derive(Debug, Clone, Default)]
pub struct RegistriesDir {
    default_docker: Option<ScopeConfig>,
    docker: BTreeMap<String, ScopeConfig>,
}

fn check_scope(c: &ScopeConfig, file: &str, scope: &str) -> Result<()> {
    let unsupported = [
        ("lookaside", c.lookaside.is_some()),
        ("lookaside-staging", c.lookaside_staging.is_some()),
        ("sigstore", c.sigstore.is_some()),
        ("sigstore-staging", c.sigstore_staging.is_some()),
    ];
    if let Some((k, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(TrustError::RegistriesD(format!(
            "{file}: {scope}: {k:?} is not supported (berth keeps signatures only as sigstore attachments)"
        )));
    }
    Ok(())
}

impl RegistriesDir {
    /// Reads every `*.yaml` file of `dir` (an absent directory is an empty configuration). A
    /// scope configured twice is an error, as in containers/image.
    pub fn load(dir: &Path) -> Result<RegistriesDir> {
        let mut out = RegistriesDir::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(TrustError::Io(format!("reading {}: {e}", dir.display()))),
        };
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for path in files {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| TrustError::Io(format!("reading {name}: {e}")))?;
            out.add(&text, &name)?;
        }
        Ok(out)
    }

    /// Adds one file's text (`name` for messages).
    pub fn add(&mut self, text: &str, name: &str) -> Result<()> {
        let f: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml::from_str(text)
                .map_err(|e| TrustError::RegistriesD(format!("{name}: {e}")))?
        };
        if let Some(d) = f.default_docker {
            check_scope(&d, name, "default-docker")?;
            if self.default_docker.is_some() {
                return Err(TrustError::RegistriesD(format!(
                    "{name}: default-docker is configured in more than one file"
                )));
            }
            self.default_docker = Some(d);
        }
        for (scope, c) in f.docker {
            check_scope(&c, name, &scope)?;
            if self.docker.insert(scope.clone(), c).is_some() {
                return Err(TrustError::RegistriesD(format!(
                    "{name}: docker scope {scope:?} is configured in more than one file"
                )));
            }
        }
        Ok(())
    }

    /// Whether signatures of `reference` are read from (and written to) sigstore attachments:
    /// the most specific scope's setting, then `default-docker`'s, then yes.
    pub fn use_sigstore_attachments(&self, reference: &DockerReference) -> bool {
        let top = reference.scopes().iter().find_map(|s| self.docker.get(s));
        top.and_then(|c| c.use_sigstore_attachments)
            .or_else(|| {
                self.default_docker
                    .as_ref()
                    .and_then(|c| c.use_sigstore_attachments)
            })
            .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> DockerReference {
        DockerReference::parse(s).unwrap()
    }

    #[test]
    fn most_specific_scope_then_default() {
        let mut d = RegistriesDir::default();
        assert!(
            d.use_sigstore_attachments(&r("x/y:1")),
            "no configuration: yes"
        );
        d.add(
            "default-docker:\n  use-sigstore-attachments: false\ndocker:\n  127.0.0.1:5000:\n    use-sigstore-attachments: true\n  127.0.0.1:5000/off:\n    use-sigstore-attachments: false\n  127.0.0.1:5000/unset: {}\n",
            "a.yaml",
        )
        .unwrap();
        assert!(d.use_sigstore_attachments(&r("127.0.0.1:5000/a:1")));
        assert!(!d.use_sigstore_attachments(&r("127.0.0.1:5000/off:1")));
        assert!(
            !d.use_sigstore_attachments(&r("127.0.0.1:5000/unset:1")),
            "falls to default-docker"
        );
        assert!(!d.use_sigstore_attachments(&r("example.com/a:1")));
    }

    #[test]
    fn unsupported_and_duplicate_settings_are_errors() {
        let mut d = RegistriesDir::default();
        let e = d
            .add("docker:\n  a.io:\n    lookaside: https://x\n", "l.yaml")
            .unwrap_err();
        assert!(e.to_string().contains("\"lookaside\""), "{e}");
        assert!(d.add("docker:\n  a.io:\n    bogus: 1\n", "b.yaml").is_err());
        d.add(
            "docker:\n  a.io:\n    use-sigstore-attachments: true\n",
            "1.yaml",
        )
        .unwrap();
        let e = d
            .add(
                "docker:\n  a.io:\n    use-sigstore-attachments: true\n",
                "2.yaml",
            )
            .unwrap_err();
        assert!(e.to_string().contains("more than one file"), "{e}");
    }

    #[test]
    fn loads_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "default-docker:\n  use-sigstore-attachments: false\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "junk: [").unwrap();
        let d = RegistriesDir::load(dir.path()).unwrap();
        assert!(!d.use_sigstore_attachments(&r("a/b:c")));
        assert!(RegistriesDir::load(&dir.path().join("absent"))
            .unwrap()
            .use_sigstore_attachments(&r("a/b:c")));
    }
}
