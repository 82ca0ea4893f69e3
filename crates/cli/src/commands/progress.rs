//! Rendering of Docker's JSON progress streams (pull, push): on a terminal one line per layer,
//! rewritten in place with a progress bar; otherwise plain lines, one per status change.

use std::io::Write;

use serde_json::Value;

/// Renders messages as they come; remembers the error message if one came.
pub struct ProgressPrinter {
    tty: bool,
    quiet: bool,
    /// Layer ids in the order their lines were printed (tty), with the last status (plain).
    ids: Vec<(String, String)>,
    pub error: Option<String>,
    /// The `aux` objects (push results).
    pub aux: Vec<Value>,
}

fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return String::new();
    }
    let width = 50usize;
    let filled = ((current.min(total) as f64 / total as f64) * width as f64) as usize;
    let arrow = if filled < width { ">" } else { "" };
    format!(
        "[{}{}{}] {}/{}",
        "=".repeat(filled.saturating_sub(if arrow.is_empty() { 0 } else { 1 })),
        arrow,
        " ".repeat(width - filled),
        human(current),
        human(total)
    )
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        return format!("{n}B");
    }
    let fixed = format!("{v:.3}");
    format!(
        "{}{}",
        fixed.trim_end_matches('0').trim_end_matches('.'),
        units[i]
    )
}

impl ProgressPrinter {
    pub fn new(tty: bool, quiet: bool) -> Self {
        ProgressPrinter {
            tty,
            quiet,
            ids: Vec::new(),
            error: None,
            aux: Vec::new(),
        }
    }

    /// Handles one message.
    pub fn message(&mut self, v: &Value) {
        if let Some(m) = v
            .get("errorDetail")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .or_else(|| v.get("error").and_then(Value::as_str))
        {
            self.error = Some(m.to_string());
            return;
        }
        if let Some(a) = v.get("aux") {
            self.aux.push(a.clone());
            return;
        }
        if self.quiet {
            return;
        }
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        let id = v.get("id").and_then(Value::as_str);
        let detail = v.get("progressDetail");
        let current = detail
            .and_then(|d| d.get("current"))
            .and_then(Value::as_u64);
        let total = detail.and_then(|d| d.get("total")).and_then(Value::as_u64);
        let mut out = std::io::stdout().lock();
        match id {
            None => {
                let _ = writeln!(out, "{status}");
            }
            Some(id) if self.tty => {
                let line = match (current, total) {
                    (Some(c), Some(t)) => format!("{id}: {status} {}", bar(c, t)),
                    _ => format!("{id}: {status}"),
                };
                match self.ids.iter().position(|(i, _)| i == id) {
                    Some(pos) => {
                        let up = self.ids.len() - pos;
                        let _ = write!(out, "\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B");
                    }
                    None => {
                        self.ids.push((id.to_string(), status.to_string()));
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
            Some(id) => {
                // Plain output: one line per status change of a layer.
                match self.ids.iter_mut().find(|(i, _)| i == id) {
                    Some((_, last)) if last == status => {}
                    Some((_, last)) => {
                        *last = status.to_string();
                        let _ = writeln!(out, "{id}: {status}");
                    }
                    None => {
                        self.ids.push((id.to_string(), status.to_string()));
                        let _ = writeln!(out, "{id}: {status}");
                    }
                }
            }
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_sizes() {
        assert_eq!(human(999), "999B");
        assert_eq!(human(1500), "1.5kB");
        assert_eq!(human(2_000_000), "2MB");
        let b = bar(50, 100);
        assert!(b.starts_with("[========================>"), "{b}");
        assert!(b.ends_with("50B/100B"));
    }

    #[test]
    fn errors_are_kept() {
        let mut p = ProgressPrinter::new(false, true);
        p.message(&serde_json::json!({"errorDetail": {"message": "boom"}, "error": "boom"}));
        assert_eq!(p.error.as_deref(), Some("boom"));
        p.message(&serde_json::json!({"aux": {"Tag": "t"}}));
        assert_eq!(p.aux.len(), 1);
    }
}
