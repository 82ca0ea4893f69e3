//! The event stream: every lifecycle change the engine makes is published once to a bounded
//! broadcast channel (a subscriber that falls behind loses events, never slows the daemon)
//! and kept in a ring of recent events for `--since`. Filtering follows dockerd's
//! `/events` filters.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api::{EventActor, EventMessage};
use tokio::sync::broadcast;

use crate::{EngineError, Filters, Result};

/// How many past events `--since` can replay.
const HISTORY: usize = 1024;
/// How far a live subscriber may fall behind before it loses events.
const CHANNEL: usize = 4096;

pub struct EventBus {
    tx: broadcast::Sender<EventMessage>,
    history: Mutex<VecDeque<EventMessage>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(CHANNEL).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

impl EventBus {
    /// Publishes one event now.
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or_default();
        let legacy = kind == "container" || kind == "image";
        let msg = EventMessage {
            kind: kind.into(),
            action: action.into(),
            status: if legacy { action.into() } else { String::new() },
            id: if legacy { id.into() } else { String::new() },
            from: if kind == "container" {
                attributes.get("image").cloned().unwrap_or_default()
            } else {
                String::new()
            },
            actor: EventActor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        };
        {
            let mut h = self.history.lock().unwrap();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(msg.clone());
        }
        let _ = self.tx.send(msg);
    }

    /// Past events in `[since, until]` (nanoseconds) and a live receiver for what follows.
    /// Subscribing before reading the history means nothing falls between the two; the
    /// caller drops live events at or before the last replayed one.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let rx = self.tx.subscribe();
        let past = match since {
            Some(s) => self
                .history
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.time_nano >= s && until.is_none_or(|u| e.time_nano <= u))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (past, rx)
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Checks `/events` filter names and values up front.
pub fn validate_filters(f: &Filters) -> Result<()> {
    for (k, vals) in f {
        match k.as_str() {
            "container" | "event" | "image" | "label" | "network" | "volume" | "daemon"
            | "plugin" | "node" | "service" | "secret" | "config" | "scope" => {}
            "type" => {
                for v in vals {
                    if ![
                        "container",
                        "image",
                        "volume",
                        "network",
                        "daemon",
                        "plugin",
                        "node",
                        "service",
                        "secret",
                        "config",
                        "builder",
                    ]
                    .contains(&v.as_str())
                    {
                        return Err(EngineError::InvalidArgument(format!(
                            "Invalid filter value for type: {v}"
                        )));
                    }
                }
            }
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{other}'"
                )))
            }
        }
    }
    Ok(())
}

/// Whether an event passes dockerd's filters: values of one key are OR'd, keys AND'd.
pub fn matches(e: &EventMessage, f: &Filters) -> bool {
    let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or("");
    let any =
        |k: &str, pred: &dyn Fn(&str) -> bool| f.get(k).is_none_or(|vs| vs.iter().any(|v| pred(v)));
    let id_or_name = |v: &str| e.actor.id == v || e.actor.id.starts_with(v) || attr("name") == v;
    any("type", &|v| e.kind == v)
        && any("event", &|v| {
            e.action == v || e.action.split(':').next() == Some(v)
        })
        && any("container", &|v| e.kind == "container" && id_or_name(v))
        && any("image", &|v| {
            (e.kind == "image" && (id_or_name(v) || e.actor.id == v))
                || (e.kind == "container" && image_matches(attr("image"), v))
        })
        && any("network", &|v| e.kind == "network" && id_or_name(v))
        && any("volume", &|v| e.kind == "volume" && e.actor.id == v)
        && any("label", &|v| match v.split_once('=') {
            Some((k, x)) => e.actor.attributes.get(k).is_some_and(|a| a == x),
            None => e.actor.attributes.contains_key(v),
        })
        && any("scope", &|v| v == "local")
}

fn image_matches(image: &str, want: &str) -> bool {
    let strip = |s: &str| s.strip_suffix(":latest").unwrap_or(s).to_string();
    image == want || strip(image) == strip(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(k: &str, v: &[&str]) -> Filters {
        Filters::from([(k.to_string(), v.iter().map(|s| s.to_string()).collect())])
    }

    #[test]
    fn publish_keeps_history_and_filters_apply() {
        let bus = EventBus::default();
        let (_, mut rx) = bus.subscribe(None, None);
        let attrs = BTreeMap::from([
            ("name".to_string(), "web".to_string()),
            ("image".to_string(), "busybox".to_string()),
            ("tier".to_string(), "front".to_string()),
        ]);
        bus.publish("container", "start", "abc123", attrs.clone());
        bus.publish("volume", "create", "data", BTreeMap::new());
        let e = rx.try_recv().unwrap();
        assert_eq!(e.status, "start");
        assert_eq!(e.from, "busybox");
        assert!(matches(&e, &f("container", &["web"])));
        assert!(matches(&e, &f("container", &["abc"])));
        assert!(!matches(&e, &f("container", &["db"])));
        assert!(matches(&e, &f("event", &["die", "start"])));
        assert!(matches(&e, &f("image", &["busybox:latest"])));
        assert!(matches(&e, &f("label", &["tier=front"])));
        assert!(!matches(&e, &f("label", &["tier=back"])));
        assert!(!matches(&e, &f("type", &["volume"])));
        let (past, _) = bus.subscribe(Some(0), None);
        assert_eq!(past.len(), 2);
        assert_eq!(past[1].actor.id, "data");
        assert!(past[1].status.is_empty());
        let (none, _) = bus.subscribe(Some(0), Some(1));
        assert!(none.is_empty());
    }

    #[test]
    fn exec_actions_match_by_prefix() {
        let bus = EventBus::default();
        let (_, mut rx) = bus.subscribe(None, None);
        bus.publish("container", "exec_start: sh -c true", "c", BTreeMap::new());
        let e = rx.try_recv().unwrap();
        assert!(matches(&e, &f("event", &["exec_start"])));
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(validate_filters(&f("type", &["bogus"])).is_err());
        assert!(validate_filters(&f("colour", &["x"])).is_err());
        assert!(validate_filters(&f("event", &["start"])).is_ok());
    }

    #[test]
    fn a_slow_subscriber_never_blocks_publishing() {
        let bus = EventBus::default();
        let (_, mut rx) = bus.subscribe(None, None);
        for i in 0..(CHANNEL * 2) {
            bus.publish("container", "start", &i.to_string(), BTreeMap::new());
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
