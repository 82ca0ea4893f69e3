//! A small Docker Engine API client (hyper 1, one connection per request) over a unix socket
//! or tcp, with TLS when asked for (`transport`).

use std::fmt;
use std::path::PathBuf;

use crate::transport::{tcp_addr, Target, TlsFlags};

use anyhow::{anyhow, Result};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
pub const API_PREFIX: &str = "/v1.50";

/// An error the daemon answered with (`{"message": ...}`).
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// Ends the program with a status (and optionally a message on stderr).
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub msg: Option<String>,
}

impl Exit {
    pub fn msg(code: i32, msg: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Exit {
            code,
            msg: Some(msg.into()),
        })
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.msg {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

/// Returns the API error inside `e`, if any.
pub fn api_error(e: &anyhow::Error) -> Option<&ApiError> {
    e.downcast_ref::<ApiError>()
}

pub fn is_not_found(e: &anyhow::Error) -> bool {
    api_error(e).map(|a| a.status == 404).unwrap_or(false)
}

/// The output side of an attach/exec stream (and, when upgraded, the input side).
pub struct Hijacked {
    pub reader: Box<dyn AsyncRead + Unpin + Send>,
    pub writer: Option<Box<dyn AsyncWrite + Unpin + Send>>,
}

#[derive(Clone, Debug)]
pub struct Client {
    pub host: String,
    target: Target,
}

pub type Query<'a> = &'a [(&'a str, String)];

pub fn encode_query(q: Query<'_>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in q {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Encodes a path segment (container names, image references).
pub fn seg(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b':')
        .remove(b'@')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

impl Client {
    pub fn new(host: Option<String>, tls: &TlsFlags) -> Result<Client> {
        let host = host
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let target = if let Some(p) = host.strip_prefix("unix://") {
            Target::Unix(PathBuf::from(p))
        } else if host.starts_with('/') {
            Target::Unix(PathBuf::from(&host))
        } else if let Some(rest) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .or_else(|| host.strip_prefix("https://"))
        {
            let choice = tls.choice(&|k| std::env::var(k).ok());
            let (addr, name) = tcp_addr(rest, choice.is_some()).map_err(|e| {
                Exit::msg(125, format!("unable to parse docker host `{host}`: {e}"))
            })?;
            let tls = match choice {
                None => None,
                Some(c) => {
                    let cfg = crate::transport::client_config(&c)
                        .map_err(|e| Exit::msg(1, format!("{e:#}")))?;
                    let name = rustls::pki_types::ServerName::try_from(name)
                        .map_err(|e| Exit::msg(125, format!("invalid host `{host}`: {e}")))?;
                    Some((cfg, name))
                }
            };
            Target::Tcp { addr, tls }
        } else {
            return Err(Exit::msg(
                125,
                format!("unable to parse docker host `{host}`"),
            ));
        };
        Ok(Client { host, target })
    }

    fn connect_error(&self) -> anyhow::Error {
        Exit::msg(
            125,
            format!(
                "Cannot connect to the berth daemon at {}. Is the berth daemon running?",
                self.host
            ),
        )
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>> {
        let stream = match &self.target {
            Target::Unix(_) => self
                .target
                .connect()
                .await
                .map_err(|_| self.connect_error())?,
            Target::Tcp { .. } => self
                .target
                .connect()
                .await
                .map_err(|e| anyhow!("error during connect: {e}"))?,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| self.connect_error())?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| anyhow!("error during connect: {e}"))?;
        Ok(resp)
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        query: Query<'_>,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Request<Full<Bytes>>> {
        let mut uri = format!("{API_PREFIX}{path}");
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&encode_query(query));
        }
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "berth")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        let body = match body {
            Some((data, ct)) => {
                b = b.header("Content-Type", ct);
                Full::new(Bytes::from(data))
            }
            None => Full::new(Bytes::new()),
        };
        Ok(b.body(body)?)
    }

    /// Sends a request; 4xx/5xx answers become [`ApiError`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: Query<'_>,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, path, query, body)?;
        let resp = self.send(req).await?;
        check(resp).await
    }

    /// [`Client::request`] with extra headers (e.g. `X-Registry-Auth`).
    pub async fn request_with_headers(
        &self,
        method: Method,
        path: &str,
        query: Query<'_>,
        body: Option<(Vec<u8>, &str)>,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>> {
        let mut req = self.build(method, path, query, body)?;
        for (k, v) in headers {
            req.headers_mut().insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes())?,
                hyper::header::HeaderValue::from_str(v)?,
            );
        }
        let resp = self.send(req).await?;
        check(resp).await
    }

    pub async fn get(&self, path: &str, query: Query<'_>) -> Result<Response<Incoming>> {
        self.request(Method::GET, path, query, None).await
    }

    pub async fn post(&self, path: &str, query: Query<'_>) -> Result<Response<Incoming>> {
        self.request(Method::POST, path, query, None).await
    }

    pub async fn post_json<B: serde::Serialize>(
        &self,
        path: &str,
        query: Query<'_>,
        body: &B,
    ) -> Result<Response<Incoming>> {
        let data = serde_json::to_vec(body)?;
        self.request(Method::POST, path, query, Some((data, "application/json")))
            .await
    }

    pub async fn delete(&self, path: &str, query: Query<'_>) -> Result<Response<Incoming>> {
        self.request(Method::DELETE, path, query, None).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, query: Query<'_>) -> Result<T> {
        let resp = self.get(path, query).await?;
        read_json(resp).await
    }

    /// Upgrades the connection (attach, exec start): `Connection: Upgrade`, `Upgrade: tcp`.
    pub async fn hijack(
        &self,
        path: &str,
        query: Query<'_>,
        body: Option<Vec<u8>>,
    ) -> Result<Hijacked> {
        let mut req = self.build(
            Method::POST,
            path,
            query,
            body.map(|b| (b, "application/json")),
        )?;
        req.headers_mut().insert(
            "Connection",
            hyper::header::HeaderValue::from_static("Upgrade"),
        );
        req.headers_mut()
            .insert("Upgrade", hyper::header::HeaderValue::from_static("tcp"));
        let resp = self.send(req).await?;
        let resp = check(resp).await?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let up = hyper::upgrade::on(resp)
                .await
                .map_err(|e| anyhow!("error upgrading connection: {e}"))?;
            let (r, w) = tokio::io::split(TokioIo::new(up));
            Ok(Hijacked {
                reader: Box::new(r),
                writer: Some(Box::new(w)),
            })
        } else {
            Ok(Hijacked {
                reader: body_reader(resp),
                writer: None,
            })
        }
    }
}

/// Turns a response body into an `AsyncRead`.
pub fn body_reader(resp: Response<Incoming>) -> Box<dyn AsyncRead + Unpin + Send> {
    let stream = resp
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    Box::new(tokio_util::io::StreamReader::new(stream))
}

async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<berth_api::ErrorResponse>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| {
                let t = String::from_utf8_lossy(&body).trim().to_string();
                if t.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_string()
                } else {
                    t
                }
            });
        return Err(ApiError {
            status: status.as_u16(),
            message,
        }
        .into());
    }
    Ok(resp)
}

pub async fn read_bytes(resp: Response<Incoming>) -> Result<Bytes> {
    Ok(resp.into_body().collect().await?.to_bytes())
}

pub async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let b = read_bytes(resp).await?;
    serde_json::from_slice(&b).map_err(|e| anyhow!("error decoding daemon response: {e}"))
}

/// Reads a JSON-message stream (`{"stream":..}`, `{"status":..}`, `{"error":..}`) line by line,
/// calling `f` for each message.
pub async fn json_stream<F>(resp: Response<Incoming>, mut f: F) -> Result<()>
where
    F: FnMut(&serde_json::Value) -> Result<()>,
{
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(d) = frame.data_ref() {
            buf.extend_from_slice(d);
            loop {
                let mut de =
                    serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
                match de.next() {
                    Some(Ok(v)) => {
                        let off = de.byte_offset();
                        buf.drain(..off);
                        f(&v)?;
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => return Err(anyhow!("error decoding daemon response: {e}")),
                    None => {
                        buf.clear();
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}
