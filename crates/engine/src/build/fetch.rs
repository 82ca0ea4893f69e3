//! `ADD <url>` downloads, as dockerd's classic builder makes them: an HTTP(S) GET that follows
//! redirects, a status of 400 or more refused with Docker's message (`failed to GET <url>
//! with status 404 Not Found: <body>`), the body written to a new file of mode 0600 whose
//! modification time is the `Last-Modified` header (the Unix epoch without one). The content is
//! never extracted; checking `--checksum` and the cache key are the driver's.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Where Docker looks for per-host CAs and client certificates (`certs.d/HOST/…`).
const CERTS_DIR: &str = "/etc/docker/certs.d";

/// At most this much of an error response's body goes into the message.
const ERROR_BODY_LIMIT: u64 = 4096;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a status of 400 or more (dockerd's `GetWithStatusError`).
    #[error("failed to GET {url} with status {status}: {body}")]
    Status {
        url: String,
        status: String,
        body: String,
    },
    /// The request could not be made (name resolution, connection, TLS, redirects).
    #[error("Get \"{url}\": {message}")]
    Transport { url: String, message: String },
    /// Writing the downloaded file failed.
    #[error("failed to download {url}: {source}")]
    Write {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// The host (`host[:port]`) of an http(s) URL, for the TLS settings.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority)
}

/// The modification time of a `Last-Modified` value (an HTTP date); `None` if it is not one.
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Downloads `url` into the new file `dest` (mode 0600, mtime from `Last-Modified`).
pub fn fetch_url(url: &str, dest: &Path) -> Result<(), FetchError> {
    let transport = |message: String| FetchError::Transport {
        url: url.to_string(),
        message,
    };
    let tls = berth_registry::tls::client_config(Path::new(CERTS_DIR), url_host(url))
        .map_err(|e| transport(e.to_string()))?;
    let agent = ureq::AgentBuilder::new()
        .tls_config(tls)
        .redirects(10)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(300))
        .build();
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, resp)) => {
            let status = format!("{code} {}", resp.status_text());
            let mut body = Vec::new();
            let _ = resp
                .into_reader()
                .take(ERROR_BODY_LIMIT)
                .read_to_end(&mut body);
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
                body: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        Err(ureq::Error::Transport(t)) => return Err(transport(t.to_string())),
    };
    let mtime = resp
        .header("Last-Modified")
        .and_then(parse_http_date)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let write_err = |source| FetchError::Write {
        url: url.to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dest)
        .map_err(write_err)?;
    let copied = std::io::copy(&mut resp.into_reader(), &mut file)
        .and_then(|_| file.flush())
        .and_then(|()| file.set_modified(mtime));
    if let Err(e) = copied {
        drop(file);
        let _ = std::fs::remove_file(dest);
        return Err(write_err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    /// Serves each canned response to one connection, in order; returns the base URL.
    fn serve(responses: Vec<String>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for resp in responses {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = conn.write_all(resp.as_bytes());
            }
        });
        base
    }

    fn response(status: &str, headers: &[&str], body: &str) -> String {
        let mut s = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for h in headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("Connection: close\r\n\r\n");
        s.push_str(body);
        s
    }

    #[test]
    fn downloads_with_mode_mtime_and_redirects() {
        let base = serve(vec![
            response("302 Found", &["Location: /real/file.txt"], ""),
            response(
                "200 OK",
                &["Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT"],
                "hello",
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fetch_url(&format!("{base}/moved"), &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        let meta = std::fs::metadata(&dest).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.mtime(), 1445412480);
    }

    #[test]
    fn no_last_modified_is_the_epoch() {
        let base = serve(vec![response("200 OK", &[], "x")]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fetch_url(&format!("{base}/x"), &dest).unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().mtime(), 0);
    }

    #[test]
    fn error_statuses_and_transport() {
        let base = serve(vec![response("404 Not Found", &[], "no such thing\n")]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let url = format!("{base}/missing");
        let e = fetch_url(&url, &dest).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("failed to GET {url} with status 404 Not Found: no such thing")
        );
        assert!(!dest.exists());
        // Nothing listens on a port just freed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x");
        let e = fetch_url(&url, &dest).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("Get \"{url}\": ")),
            "{e}"
        );
    }

    #[test]
    fn hosts_and_dates() {
        assert_eq!(
            url_host("https://u:p@example.com:8443/a?b"),
            "example.com:8443"
        );
        assert_eq!(url_host("http://h/x"), "h");
        assert!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").is_some());
        assert!(parse_http_date("yesterday").is_none());
    }
}
