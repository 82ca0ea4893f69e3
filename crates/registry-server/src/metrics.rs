//! Counters for `/metrics` (Prometheus text format): requests by method and status, bytes
//! served, uploads (count, bytes, duration), and storage used (measured when scraped).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    bytes_out: AtomicU64,
    uploads: AtomicU64,
    upload_bytes: AtomicU64,
    upload_micros: AtomicU64,
}

impl Metrics {
    pub fn request(&self, method: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((method.to_string(), status)).or_default() += 1;
    }

    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    pub fn upload_done(&self, bytes: u64, took: Duration) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.upload_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text; `storage_bytes` is the size of the blob store.
    pub fn render(&self, storage_bytes: u64) -> String {
        let mut s = String::new();
        s.push_str("# HELP berth_registry_requests_total HTTP requests answered.\n");
        s.push_str("# TYPE berth_registry_requests_total counter\n");
        for ((m, st), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "berth_registry_requests_total{{method=\"{m}\",status=\"{st}\"}} {n}"
            );
        }
        let mut one = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "berth_registry_served_bytes_total",
            "counter",
            "Bytes of blobs and manifests served.",
            self.bytes_out.load(Ordering::Relaxed).to_string(),
        );
        one(
            "berth_registry_uploads_total",
            "counter",
            "Blob uploads completed.",
            self.uploads.load(Ordering::Relaxed).to_string(),
        );
        one(
            "berth_registry_upload_bytes_total",
            "counter",
            "Bytes of completed blob uploads.",
            self.upload_bytes.load(Ordering::Relaxed).to_string(),
        );
        one(
            "berth_registry_upload_duration_seconds_total",
            "counter",
            "Time spent completing blob uploads.",
            format!(
                "{:.6}",
                self.upload_micros.load(Ordering::Relaxed) as f64 / 1e6
            ),
        );
        one(
            "berth_registry_storage_bytes",
            "gauge",
            "Bytes stored in the blob store.",
            storage_bytes.to_string(),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("GET", 200);
        m.request("GET", 200);
        m.upload_done(10, Duration::from_millis(500));
        let t = m.render(42);
        assert!(t.contains("berth_registry_requests_total{method=\"GET\",status=\"200\"} 2\n"));
        assert!(t.contains("berth_registry_upload_bytes_total 10\n"));
        assert!(t.contains("berth_registry_upload_duration_seconds_total 0.500000\n"));
        assert!(t.contains("berth_registry_storage_bytes 42\n"));
    }
}
