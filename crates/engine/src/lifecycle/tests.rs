use super::*;

fn transitions() -> Vec<Transition> {
    vec![
        Transition::Start {
            pid: 42,
            at: "2026-01-01T00:00:00Z".into(),
        },
        Transition::StartFailed {
            exit_code: 127,
            error: "no such file".into(),
        },
        Transition::Pause,
        Transition::Unpause,
        Transition::Exit {
            exit_code: 3,
            oom_killed: true,
            at: "2026-01-01T00:00:05Z".into(),
        },
        Transition::ScheduleRestart,
        Transition::CancelRestart,
        Transition::Remove,
        Transition::RemoveFailed,
    ]
}

fn at(status: Status) -> Lifecycle {
    Lifecycle {
        status,
        ..Lifecycle::created()
    }
}

/// The whole table: for every status and every transition, legal or not, and where it leads.
#[test]
fn every_transition_from_every_status() {
    use Status::*;
    let expect = |from: Status, t: &Transition| -> Option<Status> {
        match (from, t) {
            (Created | Exited | Restarting, Transition::Start { .. }) => Some(Running),
            (Created, Transition::StartFailed { .. }) => Some(Created),
            (Exited | Restarting | Running, Transition::StartFailed { .. }) => Some(Exited),
            (Running, Transition::Pause) => Some(Paused),
            (Paused, Transition::Unpause) => Some(Running),
            (Running | Paused, Transition::Exit { .. }) => Some(Exited),
            (Exited, Transition::ScheduleRestart) => Some(Restarting),
            (Restarting, Transition::CancelRestart) => Some(Exited),
            (Created | Exited | Restarting | Dead, Transition::Remove) => Some(Removing),
            (Removing, Transition::RemoveFailed) => Some(Dead),
            _ => None,
        }
    };
    let mut legal = 0;
    for from in Status::ALL {
        for t in transitions() {
            let mut l = at(from);
            let before = l.clone();
            match (expect(from, &t), l.apply(t.clone())) {
                (Some(to), Ok(())) => {
                    assert_eq!(l.status, to, "{from:?} --{t:?}-->");
                    legal += 1;
                }
                (None, Err(e)) => {
                    assert_eq!(l, before, "a refused {t:?} from {from:?} changed the state");
                    assert_eq!(e.from, from);
                }
                (want, got) => panic!("{from:?} --{t:?}--> expected {want:?}, got {got:?}"),
            }
        }
    }
    assert_eq!(legal, 18);
}

#[test]
fn illegal_transitions_say_what_and_from_where() {
    let mut l = at(Status::Exited);
    let e = l.apply(Transition::Pause).unwrap_err();
    assert_eq!(e.to_string(), "cannot pause a container that is exited");
    let e = at(Status::Running).apply(Transition::Remove).unwrap_err();
    assert_eq!(e.to_string(), "cannot remove a container that is running");
}

#[test]
fn a_life_through_start_pause_exit_and_restart() {
    let mut l = Lifecycle::created();
    l.apply(Transition::Start {
        pid: 7,
        at: "2026-01-01T00:00:00Z".into(),
    })
    .unwrap();
    assert_eq!((l.pid, l.running(), l.paused()), (7, true, false));
    l.apply(Transition::Pause).unwrap();
    let w = l.to_wire();
    assert_eq!(
        (w.status.as_str(), w.running, w.paused),
        ("paused", true, true)
    );
    l.apply(Transition::Exit {
        exit_code: 137,
        oom_killed: true,
        at: "2026-01-01T00:00:09Z".into(),
    })
    .unwrap();
    let w = l.to_wire();
    assert_eq!(
        (
            w.status.as_str(),
            w.running,
            w.paused,
            w.pid,
            w.exit_code,
            w.oom_killed
        ),
        ("exited", false, false, 0, 137, true)
    );
    assert_eq!(w.finished_at, "2026-01-01T00:00:09Z");
    assert_eq!(w.started_at, "2026-01-01T00:00:00Z");
    l.apply(Transition::ScheduleRestart).unwrap();
    let w = l.to_wire();
    assert_eq!(
        (w.status.as_str(), w.running, w.restarting),
        ("restarting", false, true)
    );
    // A new start clears the last exit, as dockerd does.
    l.apply(Transition::Start {
        pid: 8,
        at: "2026-01-01T00:00:10Z".into(),
    })
    .unwrap();
    assert_eq!(
        (l.exit_code, l.oom_killed, l.finished_at.as_str()),
        (0, false, ZERO_TIME)
    );
}

#[test]
fn a_failed_start_records_its_error_and_code_and_keeps_a_created_container_created() {
    let mut l = Lifecycle::created();
    l.apply(Transition::StartFailed {
        exit_code: 127,
        error: "exec: \"nope\": executable file not found".into(),
    })
    .unwrap();
    let w = l.to_wire();
    assert_eq!(
        (w.status.as_str(), w.exit_code, w.running),
        ("created", 127, false)
    );
    assert!(w.error.contains("executable file not found"));
}

#[test]
fn a_removal_that_fails_leaves_the_container_dead_and_removable() {
    let mut l = at(Status::Exited);
    l.apply(Transition::Remove).unwrap();
    l.apply(Transition::RemoveFailed).unwrap();
    let w = l.to_wire();
    assert_eq!((w.status.as_str(), w.dead), ("dead", true));
    l.apply(Transition::Remove).unwrap();
    assert!(at(Status::Dead)
        .apply(Transition::Start {
            pid: 1,
            at: String::new()
        })
        .is_err());
}

/// Records written by releases before the state machine stored Docker's wire state.
#[test]
fn records_of_earlier_releases_load() {
    let old = |status: &str, running: bool, paused: bool, restarting: bool| {
        serde_json::json!({
            "Status": status, "Running": running, "Paused": paused, "Restarting": restarting,
            "OOMKilled": false, "Dead": false, "Pid": if running { 99 } else { 0 },
            "ExitCode": 3, "Error": "", "StartedAt": "2026-01-01T00:00:00Z",
            "FinishedAt": "0001-01-01T00:00:00Z"
        })
    };
    for (json, want) in [
        (old("created", false, false, false), Status::Created),
        (old("running", true, false, false), Status::Running),
        (old("paused", true, true, false), Status::Paused),
        (old("restarting", false, false, true), Status::Restarting),
        (old("exited", false, false, false), Status::Exited),
        // No status word: the booleans decide.
        (old("", true, true, false), Status::Paused),
        (old("", false, false, false), Status::Exited),
    ] {
        let l: Lifecycle = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(l.status, want, "{json}");
        assert_eq!(l.exit_code, 3);
    }
    // A record's state as this release writes it reads back the same.
    let mut l = Lifecycle::created();
    l.apply(Transition::Start {
        pid: 5,
        at: "2026-01-01T00:00:00Z".into(),
    })
    .unwrap();
    let back: Lifecycle = serde_json::from_slice(&serde_json::to_vec(&l).unwrap()).unwrap();
    assert_eq!(back, l);
    let written = serde_json::to_value(&l).unwrap();
    assert_eq!(written["Status"], "running");
    assert!(written.get("Running").is_none(), "{written}");
}
