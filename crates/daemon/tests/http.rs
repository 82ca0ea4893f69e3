//! The real hyper stack on a temporary unix socket, on routes that don't need the engine.

use std::sync::Arc;

use berth_daemon::handlers::Ctx;
use berth_daemon::listeners::{bind_unix, serve, Listener};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

async fn request(
    sock: &std::path::Path,
    method: Method,
    path: &str,
) -> (Response<hyper::body::Incoming>, Bytes) {
    let stream = tokio::net::UnixStream::connect(sock).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut resp = sender.send_request(req).await.unwrap();
    let body = resp.body_mut().collect().await.unwrap().to_bytes();
    (resp, body)
}

#[tokio::test]
async fn ping_errors_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("berth.sock");
    let listener = bind_unix(&sock, "berth").unwrap();
    let ctx = Arc::new(Ctx {
        engine: None,
        tmp_dir: dir.path().join("tmp"),
        max_json_body: berth_daemon::config::DEFAULT_MAX_JSON_BODY,
        authz: None,
    });
    let stop = CancellationToken::new();
    let listener = Listener::Unix {
        listener,
        path: None,
        shown: "test".into(),
    };
    let server = tokio::spawn(serve(listener, ctx, stop.clone()));

    let (resp, body) = request(&sock, Method::GET, "/_ping").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(&body[..], b"OK");
    let h = resp.headers();
    assert_eq!(h["api-version"], "1.50");
    assert_eq!(h["ostype"], "linux");
    assert_eq!(h["docker-experimental"], "false");
    assert_eq!(h["builder-version"], "1");
    assert_eq!(h["swarm"], "inactive");
    assert_eq!(h["cache-control"], "no-cache, no-store, must-revalidate");
    assert_eq!(h["pragma"], "no-cache");
    assert!(h["server"].to_str().unwrap().starts_with("Docker/"));

    let (resp, body) = request(&sock, Method::HEAD, "/v1.41/_ping").await;
    assert_eq!(resp.status(), 200);
    assert!(body.is_empty());

    let (resp, body) = request(&sock, Method::GET, "/v1.50/nope").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v, serde_json::json!({"message": "page not found"}));

    let (resp, body) = request(&sock, Method::GET, "/v1.12/version").await;
    assert_eq!(resp.status(), 400);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["message"],
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );

    let (resp, _) = request(&sock, Method::GET, "/v1.99/version").await;
    assert_eq!(resp.status(), 400);

    // Validation that happens before the engine is reached.
    let (resp, body) = request(&sock, Method::POST, "/containers/create?name=bad%20name").await;
    assert_eq!(resp.status(), 400);
    assert!(String::from_utf8_lossy(&body).contains("Invalid container name (bad name)"));
    let (resp, body) = request(&sock, Method::GET, "/containers/abc/logs").await;
    assert_eq!(resp.status(), 400);
    assert!(String::from_utf8_lossy(&body).contains("you must choose at least one stream"));
    let (resp, _) = request(&sock, Method::GET, "/containers/json?filters=%7Bbad").await;
    assert_eq!(resp.status(), 400);

    stop.cancel();
    server.await.unwrap();
}

#[test]
fn data_root_lock_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let held = berth_daemon::server::lock_data_root(dir.path()).unwrap();
    let e = berth_daemon::server::lock_data_root(dir.path()).unwrap_err();
    assert!(
        e.contains("another daemon is already running with data root"),
        "{e}"
    );
    drop(held);
    berth_daemon::server::lock_data_root(dir.path()).unwrap();
}
