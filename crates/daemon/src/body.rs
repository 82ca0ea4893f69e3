//! Response bodies: whole, JSON, and channel-backed streams that never buffer.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

pub const JSON: &str = "application/json";
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
pub const RAW: &str = "application/vnd.docker.raw-stream";

pub fn empty_body() -> Body {
    Empty::new().boxed()
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(empty_body());
    *r.status_mut() = status;
    r
}

pub fn full(status: StatusCode, content_type: &str, data: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(data.into()).boxed());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

pub fn json<T: serde::Serialize + ?Sized>(status: StatusCode, v: &T) -> Resp {
    let mut data =
        serde_json::to_vec(v).unwrap_or_else(|e| format!("{{\"message\":\"{e}\"}}").into_bytes());
    data.push(b'\n');
    full(status, JSON, data)
}

/// A body fed by a channel: each message is sent as soon as it arrives; the body ends when
/// every sender is dropped.
pub fn channel(rx: mpsc::Receiver<Bytes>) -> Body {
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
            .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    BodyExt::boxed(StreamBody::new(stream))
}

/// A streaming response and the sender that feeds it.
pub fn streaming(status: StatusCode, content_type: &str) -> (Resp, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel(32);
    let mut r = Response::new(channel(rx));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    (r, tx)
}
