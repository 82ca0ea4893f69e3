//! `events`: the daemon's event stream, printed as the docker CLI prints it.

use anyhow::Result;
use berth_api::EventMessage;
use clap::Args;
use tokio::io::AsyncBufReadExt;

use super::ps::filters_json;
use crate::client::{body_reader, Client};
use crate::format::Format;
use crate::human::parse_timestamp;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until")]
    pub until: Option<String>,
}

pub async fn run(c: &Client, a: EventsArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &a.since {
        q.push(("since", parse_timestamp(s)?));
    }
    if let Some(u) = &a.until {
        q.push(("until", parse_timestamp(u)?));
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let tmpl = match a.format.as_deref() {
        Some(f) if !f.is_empty() => Some(Format::new(f, "")?),
        _ => None,
    };
    let resp = c.get("/events", &q).await?;
    let mut lines = tokio::io::BufReader::new(body_reader(resp)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match &tmpl {
            Some(t) => println!("{}", t.tmpl.render(&v)?),
            None => {
                let Ok(e) = serde_json::from_value::<EventMessage>(v) else {
                    continue;
                };
                println!("{}", default_line(&e));
            }
        }
    }
    Ok(0)
}

/// `2026-11-25T23:57:16.123456789Z container start 4f2c… (image=busybox, name=web)`.
pub fn default_line(e: &EventMessage) -> String {
    let t = chrono::DateTime::from_timestamp(
        e.time_nano / 1_000_000_000,
        (e.time_nano % 1_000_000_000) as u32,
    )
    .map(|t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
            .to_string()
            .replace("+00:00", "Z")
    })
    .unwrap_or_default();
    let mut s = format!("{t} {} {} {}", e.kind, e.action, e.actor.id);
    if !e.actor.attributes.is_empty() {
        let attrs: Vec<String> = e
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_line_is_dockers() {
        let e = EventMessage {
            kind: "container".into(),
            action: "start".into(),
            actor: berth_api::EventActor {
                id: "abc".into(),
                attributes: [
                    ("name".to_string(), "web".to_string()),
                    ("image".into(), "busybox".into()),
                ]
                .into_iter()
                .collect(),
            },
            time_nano: 1_700_000_000_000_000_001,
            ..Default::default()
        };
        let l = default_line(&e);
        assert!(
            l.ends_with(" container start abc (image=busybox, name=web)"),
            "{l}"
        );
        assert!(l.contains(".000000001"), "{l}");
    }
}
