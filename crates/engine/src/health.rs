//! Health checks: the image's `HEALTHCHECK` or `--health-*`, probed by exec in the running
//! container at its interval (its start interval during the start period), with dockerd's
//! rules: `retries` consecutive failures make it `unhealthy` (failures in the start period do
//! not count), one success makes it `healthy`; the last five results are kept in
//! `State.Health.Log`, and every status change is a `health_status: …` event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::{ExecConfig, Health, HealthConfig, HealthcheckResult};

use crate::container::Container;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// The probe's settings, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// `None` when there is no check (`NONE`, or no test).
pub fn probe_of(hc: &HealthConfig, shell: Option<&[String]>) -> Option<Probe> {
    let test = hc.test.as_deref()?;
    let argv = match test.first().map(String::as_str)? {
        "CMD" => test[1..].to_vec(),
        "CMD-SHELL" => {
            let mut a: Vec<String> = shell
                .filter(|s| !s.is_empty())
                .map(|s| s.to_vec())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            a.push(test.get(1..)?.join(" "));
            a
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(Probe {
        argv,
        interval: dur(hc.interval, DEFAULT_INTERVAL),
        timeout: dur(hc.timeout, DEFAULT_TIMEOUT),
        start_period: dur(hc.start_period, Duration::ZERO),
        start_interval: dur(hc.start_interval, DEFAULT_START_INTERVAL),
        retries: hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
    })
}

/// Records one result; answers the new status when it changed.
pub fn record(
    h: &mut Health,
    r: HealthcheckResult,
    in_start_period: bool,
    retries: i64,
) -> Option<String> {
    let before = h.status.clone();
    if r.exit_code == 0 {
        h.failing_streak = 0;
        h.status = "healthy".into();
    } else if !in_start_period || h.status != "starting" {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = "unhealthy".into();
        }
    }
    h.log.push(r);
    if h.log.len() > MAX_LOG {
        let extra = h.log.len() - MAX_LOG;
        h.log.drain(..extra);
    }
    (h.status != before).then(|| h.status.clone())
}

use crate::context::Context;
use berth_sys::time::now_rfc3339 as now;

/// After a start: the container's health is `starting` and its probe loop runs until it
/// exits.
pub(crate) fn start_health_monitor(ctx: &Arc<Context>, c: &Arc<Container>) {
    let probe = {
        let mut r = c.rec.lock().unwrap();
        let Some(p) = r
            .config
            .healthcheck
            .as_ref()
            .and_then(|hc| probe_of(hc, r.config.shell.as_deref()))
        else {
            return;
        };
        r.state.health = Some(Health {
            status: "starting".into(),
            ..Default::default()
        });
        p
    };
    let _ = ctx.persist(c);
    let ctx = ctx.clone();
    let c = c.clone();
    let run = *c.exits.borrow();
    tokio::spawn(async move { health_loop(&ctx, c, probe, run).await });
}

async fn health_loop(ctx: &Arc<Context>, c: Arc<Container>, p: Probe, run: u64) {
    let started = Instant::now();
    let mut exits = c.exits.subscribe();
    loop {
        let starting = c
            .rec
            .lock()
            .unwrap()
            .state
            .health
            .as_ref()
            .is_some_and(|h| h.status == "starting");
        let in_start = started.elapsed() < p.start_period;
        let wait = if in_start && starting {
            p.start_interval
        } else {
            p.interval
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = exits.changed() => return,
        }
        if *c.exits.borrow() != run || !c.running() {
            return;
        }
        if c.rec.lock().unwrap().state.paused() {
            continue;
        }
        let in_start = started.elapsed() < p.start_period;
        let result = health_probe(ctx, &c, &p).await;
        if *c.exits.borrow() != run || !c.running() {
            return;
        }
        let changed = {
            let mut r = c.rec.lock().unwrap();
            let h = r.state.health.get_or_insert_with(Default::default);
            record(h, result, in_start, p.retries)
        };
        let _ = ctx.persist(&c);
        if let Some(s) = changed {
            ctx.container_event(&c, &format!("health_status: {s}"), &[]);
        }
    }
}

async fn health_probe(ctx: &Arc<Context>, c: &Container, p: &Probe) -> HealthcheckResult {
    let start = now();
    let cfg = ExecConfig {
        attach_stdout: true,
        attach_stderr: true,
        cmd: p.argv.clone(),
        ..Default::default()
    };
    let fail = |msg: String, code: i64| HealthcheckResult {
        start: start.clone(),
        end: now(),
        exit_code: code,
        output: msg,
    };
    let id = match crate::exec::exec_create(ctx, &c.id, cfg).await {
        Ok(id) => id,
        Err(e) => return fail(e.to_string(), -1),
    };
    let mut session = match crate::exec::exec_start(ctx, &id, false, None).await {
        Ok(s) => s,
        Err(e) => {
            crate::exec::forget_exec(ctx, &id);
            return fail(e.to_string(), -1);
        }
    };
    let mut output = Vec::new();
    let collect = async {
        while let Some(o) = session.output.recv().await {
            let room = MAX_OUTPUT.saturating_sub(output.len());
            output.extend_from_slice(&o.data[..o.data.len().min(room)]);
        }
    };
    if tokio::time::timeout(p.timeout, collect).await.is_err() {
        crate::exec::forget_exec(ctx, &id);
        return fail(
            format!(
                "Health check exceeded timeout ({})",
                crate::util::go_duration(p.timeout)
            ),
            -1,
        );
    }
    // The exit code is recorded right after the output ends.
    let mut code = None;
    for _ in 0..100 {
        match crate::exec::exec_inspect(ctx, &id).await {
            Ok(i) if !i.running && i.exit_code.is_some() => {
                code = i.exit_code;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => break,
        }
    }
    crate::exec::forget_exec(ctx, &id);
    HealthcheckResult {
        start,
        end: now(),
        exit_code: code.unwrap_or(-1),
        output: String::from_utf8_lossy(&output).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn res(code: i64) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn probes_from_tests() {
        assert_eq!(probe_of(&hc(&["NONE"]), None), None);
        assert_eq!(probe_of(&hc(&[]), None), None);
        let p = probe_of(&hc(&["CMD-SHELL", "curl -f x"]), None).unwrap();
        assert_eq!(p.argv, ["/bin/sh", "-c", "curl -f x"]);
        assert_eq!((p.interval, p.retries), (DEFAULT_INTERVAL, 3));
        let shell = vec!["/bin/ash".to_string(), "-eo".to_string()];
        let p = probe_of(&hc(&["CMD-SHELL", "true"]), Some(&shell)).unwrap();
        assert_eq!(p.argv, ["/bin/ash", "-eo", "true"]);
        let mut h = hc(&["CMD", "true", "x"]);
        h.interval = Some(1_000_000_000);
        h.retries = Some(5);
        let p = probe_of(&h, None).unwrap();
        assert_eq!(p.argv, ["true", "x"]);
        assert_eq!((p.interval, p.retries), (Duration::from_secs(1), 5));
    }

    #[test]
    fn statuses_follow_dockers_rules() {
        let mut h = Health {
            status: "starting".into(),
            ..Default::default()
        };
        // Failures in the start period do not count while starting.
        assert_eq!(record(&mut h, res(1), true, 2), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(record(&mut h, res(1), false, 2), None);
        assert_eq!(
            record(&mut h, res(1), false, 2).as_deref(),
            Some("unhealthy")
        );
        assert_eq!(record(&mut h, res(0), false, 2).as_deref(), Some("healthy"));
        assert_eq!(h.failing_streak, 0);
        for _ in 0..10 {
            record(&mut h, res(0), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }
}
