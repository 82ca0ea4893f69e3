//! The endpoints a reference's registry is reached at, in the order they are tried, and when a
//! failure at one moves on to the next, as dockerd's `LookupPullEndpoints` and
//! `continueOnError` decide: for pulls of docker.io names the `registry-mirrors` come first, in
//! order, then the registry itself over HTTPS, then over plain HTTP where that is allowed. Any
//! failure at a mirror (it does not answer, lacks the image, refuses access, answers 5xx) moves
//! on; at the registry itself only a failure to reach it (or an unexpected answer) does. When
//! every endpoint failed, the last failure is the one reported.

use crate::error::RegistryError;
use crate::options::{endpoint_host, RegistryOptions};

/// One place a registry's API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, without a trailing slash.
    pub base: String,
    /// A mirror of docker.io: never sent the credentials given for docker.io, and any failure
    /// there moves on to the next endpoint.
    pub mirror: bool,
}

impl Endpoint {
    /// The `host[:port]` of the endpoint (what `certs.d` is keyed by).
    pub fn host(&self) -> &str {
        let rest = self
            .base
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&self.base);
        rest.split('/').next().unwrap_or(rest)
    }
}

/// The endpoints of `domain` (a reference's registry, `docker.io` for Docker Hub), in the order
/// they are tried. Mirrors come first only for pulls (`pull_only`) of docker.io names.
pub fn endpoints(opts: &RegistryOptions, domain: &str, pull_only: bool) -> Vec<Endpoint> {
    let host = endpoint_host(domain);
    let docker_hub = host == endpoint_host("docker.io");
    let mut out: Vec<Endpoint> = Vec::new();
    if pull_only && docker_hub {
        out.extend(opts.mirrors.iter().map(|m| Endpoint {
            base: m.trim_end_matches('/').to_string(),
            mirror: true,
        }));
    }
    if let Some(upstream) = opts.docker_io_endpoint.as_ref().filter(|_| docker_hub) {
        out.push(Endpoint {
            base: upstream.trim_end_matches('/').to_string(),
            mirror: false,
        });
        return out;
    }
    out.push(Endpoint {
        base: format!("https://{host}"),
        mirror: false,
    });
    if opts.is_insecure(host) {
        out.push(Endpoint {
            base: format!("http://{host}"),
            mirror: false,
        });
    }
    out
}

/// Whether a failure of a request (other than the first `GET /v2/`) at `endpoint` moves on
/// to the next endpoint: any failure at a mirror; at the registry itself only one to reach it
/// or an unexpected answer (`Transport`), not its "manifest unknown" or "denied".
pub fn moves_on_after(e: &RegistryError, endpoint: &Endpoint) -> bool {
    endpoint.mirror || matches!(e, RegistryError::Transport(_))
}

/// Runs `attempt` at each endpoint in turn until one succeeds, and returns its result. After a
/// failure the next endpoint is tried only if `moves_on(&failure, endpoint)`; otherwise, or
/// when no endpoint is left, the (last) failure is returned.
pub fn first_success<T, E: From<RegistryError>>(
    endpoints: &[Endpoint],
    mut attempt: impl FnMut(&Endpoint) -> Result<T, E>,
    moves_on: impl Fn(&E, &Endpoint) -> bool,
) -> Result<T, E> {
    let mut last = None;
    for endpoint in endpoints {
        match attempt(endpoint) {
            Ok(t) => return Ok(t),
            Err(e) => {
                let go_on = moves_on(&e, endpoint);
                last = Some(e);
                if !go_on {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| RegistryError::Transport("no registry endpoint".into()).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mirrors: &[&str]) -> RegistryOptions {
        RegistryOptions {
            mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
            insecure_registries: vec!["myreg:5000".into()],
            ..Default::default()
        }
    }

    fn bases(e: &[Endpoint]) -> Vec<(&str, bool)> {
        e.iter().map(|e| (e.base.as_str(), e.mirror)).collect()
    }

    #[test]
    fn mirrors_come_first_for_docker_io_pulls_only() {
        let o = options(&["http://127.0.0.1:5001/", "https://mirror.example"]);
        assert_eq!(
            bases(&endpoints(&o, "docker.io", true)),
            vec![
                ("http://127.0.0.1:5001", true),
                ("https://mirror.example", true),
                ("https://registry-1.docker.io", false),
            ]
        );
        // Pushes and logins go to Docker Hub itself.
        assert_eq!(
            bases(&endpoints(&o, "docker.io", false)),
            vec![("https://registry-1.docker.io", false)]
        );
        // Other registries have no mirrors; plain HTTP follows HTTPS where it is allowed.
        assert_eq!(
            bases(&endpoints(&o, "myreg:5000", true)),
            vec![("https://myreg:5000", false), ("http://myreg:5000", false)]
        );
        assert_eq!(
            bases(&endpoints(&o, "quay.io", true)),
            vec![("https://quay.io", false)]
        );
    }

    #[test]
    fn docker_io_endpoint_replaces_docker_hub() {
        let mut o = options(&["http://127.0.0.1:5001"]);
        o.docker_io_endpoint = Some("http://127.0.0.1:5009/".into());
        assert_eq!(
            bases(&endpoints(&o, "docker.io", true)),
            vec![
                ("http://127.0.0.1:5001", true),
                ("http://127.0.0.1:5009", false)
            ]
        );
        assert_eq!(
            bases(&endpoints(&o, "quay.io", true)),
            vec![("https://quay.io", false)]
        );
    }

    #[test]
    fn endpoint_hosts() {
        let e = |b: &str| Endpoint {
            base: b.into(),
            mirror: true,
        };
        assert_eq!(e("https://mirror.example/v2").host(), "mirror.example");
        assert_eq!(e("http://127.0.0.1:5000").host(), "127.0.0.1:5000");
    }

    #[test]
    fn what_moves_on() {
        let mirror = Endpoint {
            base: "http://m".into(),
            mirror: true,
        };
        let upstream = Endpoint {
            base: "https://r".into(),
            mirror: false,
        };
        let unknown = RegistryError::NotFound("manifest unknown: manifest unknown".into());
        let denied = RegistryError::Denied("denied: no".into());
        let down = RegistryError::Transport("received unexpected HTTP status: 503".into());
        for e in [&unknown, &denied, &down] {
            assert!(moves_on_after(e, &mirror), "{e}");
        }
        assert!(!moves_on_after(&unknown, &upstream));
        assert!(!moves_on_after(&denied, &upstream));
        assert!(moves_on_after(&down, &upstream));
    }

    /// Tries `have` (which endpoints hold the image) through [`first_success`]; returns the
    /// endpoints asked, in order, and the result.
    fn pull_from(
        list: &[Endpoint],
        answer: impl Fn(&Endpoint) -> Result<&'static str, RegistryError>,
    ) -> (Vec<String>, Result<&'static str, RegistryError>) {
        let mut asked = Vec::new();
        let r = first_success(
            list,
            |e| {
                asked.push(e.base.clone());
                answer(e)
            },
            moves_on_after,
        );
        (asked, r)
    }

    #[test]
    fn a_mirror_without_the_image_falls_through() {
        let o = options(&["http://a", "http://b"]);
        let list = endpoints(&o, "docker.io", true);
        let unknown = || RegistryError::NotFound("manifest unknown: manifest unknown".into());
        // The first mirror lacks it, the second has it: the upstream is never asked.
        let (asked, r) = pull_from(&list, |e| match e.base.as_str() {
            "http://a" => Err(unknown()),
            "http://b" => Ok("from b"),
            _ => Ok("from upstream"),
        });
        assert_eq!(asked, vec!["http://a", "http://b"]);
        assert_eq!(r.unwrap(), "from b");
        // Mirrors that refuse or fail: on to Docker Hub.
        let (asked, r) = pull_from(&list, |e| match e.base.as_str() {
            "http://a" => Err(RegistryError::Unauthorized("unauthorized: x".into())),
            "http://b" => Err(RegistryError::Transport("503".into())),
            _ => Ok("from upstream"),
        });
        assert_eq!(asked.len(), 3);
        assert_eq!(r.unwrap(), "from upstream");
        // Nobody has it: the last endpoint's failure is reported.
        let (asked, r) = pull_from(&list, |e| {
            Err(RegistryError::NotFound(format!(
                "manifest unknown: at {}",
                e.base
            )))
        });
        assert_eq!(asked.len(), 3);
        assert_eq!(
            r.unwrap_err().to_string(),
            "manifest unknown: at https://registry-1.docker.io"
        );
    }

    #[test]
    fn the_registry_itself_stops_at_its_answer() {
        let o = options(&[]);
        let list = endpoints(&o, "myreg:5000", true);
        assert_eq!(list.len(), 2);
        // HTTPS answered "manifest unknown": plain HTTP is not asked.
        let (asked, r) = pull_from(&list, |_| {
            Err(RegistryError::NotFound(
                "manifest unknown: manifest unknown".into(),
            ))
        });
        assert_eq!(asked, vec!["https://myreg:5000"]);
        assert!(matches!(r, Err(RegistryError::NotFound(_))));
        // HTTPS could not be reached: plain HTTP is.
        let (asked, r) = pull_from(&list, |e| {
            if e.base.starts_with("https") {
                Err(RegistryError::Transport("tls handshake".into()))
            } else {
                Ok("plain")
            }
        });
        assert_eq!(asked.len(), 2);
        assert_eq!(r.unwrap(), "plain");
        assert!(matches!(
            first_success::<(), RegistryError>(&[], |_| Ok(()), |_, _| true),
            Err(RegistryError::Transport(_))
        ));
    }
}
