//! A scripted registry for unit tests (test builds only): plain HTTP/1.1 on 127.0.0.1 with
//! keep-alive, blob uploads (monolithic and chunked, checking `Content-Range`), blob GETs,
//! and an optional Bearer token server whose tokens stop working after a set time, as an
//! expiring or revoked token does mid-operation.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::verify::sha256_digest;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body_len: usize,
    /// The status the fake answered.
    pub status: u16,
}

/// How the fake behaves.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    /// Require Bearer tokens; tokens are answered with this `expires_in` (seconds).
    pub token_expires_in: Option<f64>,
    /// A token is refused (401) once it is older than this.
    pub token_valid_for: Option<Duration>,
    /// Answer every PATCH with 416.
    pub refuse_ranges: bool,
}

#[derive(Default)]
struct State {
    seen: Vec<SeenRequest>,
    /// Issue time of each token, by token.
    tokens: BTreeMap<String, Instant>,
    upload: Vec<u8>,
    patches: usize,
    blobs: BTreeMap<String, Vec<u8>>,
}

/// A running fake; it stops with the test process.
pub struct FakeRegistry {
    pub host: String,
    state: Arc<Mutex<State>>,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn new(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Answer {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

impl FakeRegistry {
    pub fn start(config: FakeConfig) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let state = Arc::new(Mutex::new(State::default()));
        let (st, h) = (state.clone(), host.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (st, cfg, h) = (st.clone(), config.clone(), h.clone());
                std::thread::spawn(move || serve(conn, &st, &cfg, &h));
            }
        });
        FakeRegistry { host, state }
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().tokens.len()
    }

    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.state.lock().unwrap().blobs.get(digest).cloned()
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, cfg: &FakeConfig, host: &str) {
    let mut out = match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if !version.starts_with("HTTP/1.") {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = answer(state, cfg, host, method, path, &headers, &body);
        state.lock().unwrap().seen.push(SeenRequest {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body_len: len,
            status: answer.status,
        });
        let mut head = format!("HTTP/1.1 {} X\r\n", answer.status);
        for (k, v) in &answer.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if method != "HEAD" {
            head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
        }
        head.push_str("\r\n");
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method != "HEAD" && out.write_all(&answer.body).is_err() {
            return;
        }
    }
}

fn answer(
    state: &Mutex<State>,
    cfg: &FakeConfig,
    host: &str,
    method: &str,
    path: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Answer {
    let mut st = state.lock().unwrap();
    if let Some(expires_in) = cfg.token_expires_in {
        if path.starts_with("/token") {
            let token = format!("t{}", st.tokens.len() + 1);
            st.tokens.insert(token.clone(), Instant::now());
            let mut a = Answer::new(200);
            a.body = format!(r#"{{"token":"{token}","expires_in":{expires_in}}}"#).into_bytes();
            return a;
        }
        let valid = headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .and_then(|t| st.tokens.get(t))
            .is_some_and(|issued| cfg.token_valid_for.is_none_or(|v| issued.elapsed() < v));
        if !valid {
            return Answer::new(401).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="http://{host}/token",service="fake",scope="repository:a/b:pull""#),
            );
        }
    }
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if route == "/v2/" {
        return Answer::new(200);
    }
    if method == "POST" && route == "/v2/a/b/blobs/uploads/" {
        st.upload.clear();
        st.patches = 0;
        return Answer::new(202).header("Location", "/v2/a/b/blobs/uploads/u?n=0");
    }
    if route == "/v2/a/b/blobs/uploads/u" {
        match method {
            "PATCH" => {
                let expected = format!("n={}", st.patches);
                let range = headers.get("content-range").cloned().unwrap_or_default();
                let start: Option<usize> = range.split('-').next().and_then(|s| s.parse().ok());
                if cfg.refuse_ranges || query != expected || start != Some(st.upload.len()) {
                    return Answer::new(416);
                }
                st.upload.extend_from_slice(body);
                st.patches += 1;
                let end = st.upload.len().max(1) - 1;
                return Answer::new(202)
                    .header(
                        "Location",
                        format!("/v2/a/b/blobs/uploads/u?n={}", st.patches),
                    )
                    .header("Range", format!("0-{end}"));
            }
            "GET" => {
                let end = st.upload.len().max(1) - 1;
                return Answer::new(204).header("Range", format!("0-{end}"));
            }
            "PUT" => {
                let digest = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("digest="))
                    .unwrap_or("");
                let mut data = std::mem::take(&mut st.upload);
                data.extend_from_slice(body);
                if sha256_digest(&data) != digest {
                    return Answer::new(400);
                }
                st.blobs.insert(digest.to_string(), data);
                return Answer::new(201);
            }
            _ => {}
        }
    }
    if let Some(digest) = route.strip_prefix("/v2/a/b/blobs/") {
        if let Some(data) = st.blobs.get(digest) {
            let mut a = Answer::new(200);
            a.body = data.clone();
            return a;
        }
    }
    Answer::new(404)
}
