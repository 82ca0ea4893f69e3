//! The container lifecycle through the [`Engine`] facade, root-free: the engine runs over the
//! fakes of [`crate::fakes`] (mounts recorded, shims as in-process tasks speaking the real
//! protocol, the runtime's `kill` ending the fake shim), on a real data root in a temporary
//! directory. Each test states what must be left behind, and checks the disk and the fakes.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use berth_api::{ContainerConfig, ContainerCreateRequest, HostConfig, RestartPolicy};

use crate::fakes::FakeHost;
use crate::{
    AttachOptions, Engine, EngineConfig, EngineError, ListOptions, RemoveOptions, WaitCondition,
};

/// A data root, the fakes, and a way to open engines on them (each on its own runtime, so
/// that dropping one is a daemon that went away).
struct Rig {
    dir: tempfile::TempDir,
    fake: FakeHost,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            dir: tempfile::tempdir().unwrap(),
            fake: FakeHost::new(),
        }
    }

    fn config(&self) -> EngineConfig {
        let mut c =
            EngineConfig::with_roots(self.dir.path().join("data"), self.dir.path().join("run"));
        c.networking = false;
        c
    }

    /// Runs `f` against an engine opened on this rig, on a runtime that ends with it.
    fn daemon<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(Arc<Engine>) -> Fut,
        Fut: Future<Output = T>,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let engine = Engine::open_on(self.config(), self.fake.host())
                .await
                .unwrap();
            f(engine).await
        });
        rt.shutdown_timeout(Duration::from_secs(5));
        out
    }

    fn mounts(&self) -> usize {
        self.fake.kernel.mounts.lock().unwrap().len()
    }

    fn container_dirs(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("data/containers"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// Imports a one-file image as `test:latest`.
async fn image(engine: &Engine) {
    let mut data = Vec::new();
    {
        let mut b = tar::Builder::new(&mut data);
        let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(passwd.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
        b.finish().unwrap();
    }
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&data).unwrap();
    use std::io::Seek;
    f.rewind().unwrap();
    engine
        .image_import(f, "test", "latest", vec![r#"CMD ["/bin/app"]"#.into()], "")
        .await
        .unwrap();
}

fn request(host: HostConfig) -> ContainerCreateRequest {
    ContainerCreateRequest {
        config: ContainerConfig {
            image: "test:latest".into(),
            ..Default::default()
        },
        host_config: HostConfig {
            network_mode: "none".into(),
            ..host
        },
        networking_config: None,
    }
}

async fn create(engine: &Engine, name: &str, host: HostConfig) -> String {
    engine
        .container_create(Some(name.into()), request(host))
        .await
        .unwrap()
        .id
}

async fn status(engine: &Engine, id: &str) -> (String, i64) {
    let s = engine.container_inspect(id).await.unwrap().state;
    (s.status, s.exit_code)
}

/// Polls `check` for up to 5 s.
async fn eventually<F: Fn() -> Fut, Fut: Future<Output = bool>>(what: &str, check: F) {
    for _ in 0..250 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn create_start_exit_remove_leaves_nothing() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let id = create(&engine, "one", HostConfig::default()).await;
        assert_eq!(status(&engine, &id).await.0, "created");
        engine.container_start(&id).await.unwrap();
        assert_eq!(status(&engine, &id).await.0, "running");
        assert_eq!(r.mounts(), 1, "the rootfs is mounted while it runs");
        let exited = engine
            .container_wait(&id, WaitCondition::NotRunning)
            .await
            .unwrap();
        assert!(r.fake.shims.exit(&id, 3));
        assert_eq!(exited.await.unwrap().status_code, 3);
        assert_eq!(status(&engine, &id).await, ("exited".into(), 3));
        assert_eq!(r.mounts(), 0, "an exit releases the rootfs");
        engine
            .container_remove(&id, RemoveOptions::default())
            .await
            .unwrap();
        assert!(matches!(
            engine.container_inspect(&id).await,
            Err(EngineError::NotFound(_))
        ));
    });
    assert_eq!(r.container_dirs(), 0);
    assert!(!r.dir.path().join("data/image/rw").join("x").exists());
}

#[test]
fn stop_kills_through_the_runtime_and_waits_for_the_exit() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let id = create(&engine, "stopped", HostConfig::default()).await;
        engine.container_start(&id).await.unwrap();
        engine.container_stop(&id, None, Some(5)).await.unwrap();
        assert_eq!(status(&engine, &id).await, ("exited".into(), 143));
        let calls = r.fake.runtime.calls.lock().unwrap().clone();
        assert!(calls.contains(&vec!["kill".to_string(), id.clone(), "15".into()]));
        assert!(matches!(
            engine.container_stop(&id, None, None).await,
            Err(EngineError::NotModified(_))
        ));
    });
}

#[test]
fn commit_with_pause_of_a_container_that_is_exiting_commits_it() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let id = create(&engine, "exiting", HostConfig::default()).await;
        engine.container_start(&id).await.unwrap();
        r.fake
            .runtime
            .pause_finds_it_exiting
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let opts = crate::CommitOptions {
            pause: true,
            ..Default::default()
        };
        let image_id = engine.container_commit(&id, opts).await.unwrap();
        assert_eq!(status(&engine, &id).await, ("exited".into(), 0));
        let parent = engine.image_inspect("test:latest").await.unwrap().id;
        let committed = engine.image_inspect(&image_id).await.unwrap();
        assert_eq!(
            committed.parent, parent,
            "commit records the container's image"
        );
        let calls = r.fake.runtime.calls.lock().unwrap().clone();
        assert!(calls.contains(&vec!["pause".to_string(), id.clone()]));
        assert!(!calls.iter().any(|c| c[0] == "resume"), "{calls:?}");
    });
}

#[test]
fn the_restart_policy_restarts_until_its_count_is_spent() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let policy = HostConfig {
            restart_policy: RestartPolicy {
                name: "on-failure".into(),
                maximum_retry_count: 2,
            },
            ..Default::default()
        };
        let id = create(&engine, "flaky", policy).await;
        engine.container_start(&id).await.unwrap();
        for restarts in 1..=2 {
            assert!(r.fake.shims.exit(&id, 1));
            eventually("the policy restarted it", || async {
                let r = engine.container_inspect(&id).await.unwrap();
                r.state.running && r.restart_count == restarts
            })
            .await;
        }
        assert!(r.fake.shims.exit(&id, 1));
        eventually("it stays exited", || async {
            status(&engine, &id).await == ("exited".into(), 1)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(status(&engine, &id).await.0, "exited", "no third restart");
        assert_eq!(
            r.fake
                .shims
                .launches
                .load(std::sync::atomic::Ordering::SeqCst),
            3
        );
    });
}

#[test]
fn an_auto_remove_container_goes_when_it_exits() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let rm = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        let id = create(&engine, "gone", rm).await;
        let removed = engine
            .container_wait(&id, WaitCondition::Removed)
            .await
            .unwrap();
        engine.container_start(&id).await.unwrap();
        assert!(r.fake.shims.exit(&id, 0));
        tokio::time::timeout(Duration::from_secs(5), removed)
            .await
            .expect("removed in time")
            .unwrap();
        assert!(engine.container_inspect(&id).await.is_err());
    });
    assert_eq!(r.container_dirs(), 0);
    assert_eq!(r.mounts(), 0);
}

#[test]
fn concurrent_creates_with_one_name_make_one_container() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let tries: Vec<_> = (0..8)
            .map(|_| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    engine
                        .container_create(Some("same".into()), request(HostConfig::default()))
                        .await
                })
            })
            .collect();
        let mut made = 0;
        for t in tries {
            match t.await.unwrap() {
                Ok(_) => made += 1,
                Err(EngineError::Conflict(m)) => assert!(m.contains("already in use"), "{m}"),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(made, 1);
        let all = ListOptions {
            all: true,
            ..Default::default()
        };
        assert_eq!(engine.container_list(all).await.unwrap().len(), 1);
    });
    assert_eq!(r.container_dirs(), 1);
}

#[test]
fn a_start_the_shim_refuses_is_recorded_and_leaves_nothing_mounted() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let id = create(&engine, "nocmd", HostConfig::default()).await;
        *r.fake.shims.fail_next.lock().unwrap() =
            Some("exec: \"/bin/app\": executable file not found in $PATH".into());
        let err = engine.container_start(&id).await.unwrap_err();
        assert!(matches!(err, EngineError::InvalidArgument(_)), "{err}");
        // As dockerd: the container stays created, with the exit code and the error.
        assert_eq!(status(&engine, &id).await, ("created".into(), 127));
        let state = engine.container_inspect(&id).await.unwrap().state;
        assert!(
            state.error.contains("executable file not found"),
            "{}",
            state.error
        );
        assert_eq!(r.mounts(), 0);
        // A second start works: nothing of the failed one is in the way.
        engine.container_start(&id).await.unwrap();
        assert_eq!(status(&engine, &id).await.0, "running");
        engine
            .container_remove(
                &id,
                RemoveOptions {
                    force: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    });
    assert_eq!(r.container_dirs(), 0);
    assert_eq!(r.mounts(), 0);
}

#[test]
fn bad_creates_leave_nothing_behind() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let missing = ContainerCreateRequest {
            config: ContainerConfig {
                image: "nothere:latest".into(),
                ..Default::default()
            },
            ..request(HostConfig::default())
        };
        assert!(engine.container_create(None, missing).await.is_err());
        let bad_policy = HostConfig {
            restart_policy: RestartPolicy {
                name: "sometimes".into(),
                maximum_retry_count: 0,
            },
            ..Default::default()
        };
        let err = engine
            .container_create(Some("bad".into()), request(bad_policy))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::InvalidArgument(_)), "{err}");
        let both = HostConfig {
            auto_remove: true,
            restart_policy: RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            },
            ..Default::default()
        };
        assert!(engine
            .container_create(Some("bad".into()), request(both))
            .await
            .is_err());
        // The name was never taken.
        create(&engine, "bad", HostConfig::default()).await;
    });
    assert_eq!(r.container_dirs(), 1);
}

#[test]
fn a_restarted_daemon_reconnects_to_live_shims_and_records_exits_it_missed() {
    let rig = Rig::new();
    let r = &rig;
    let (alive, dead) = rig.daemon(|engine| async move {
        image(&engine).await;
        let alive = create(&engine, "alive", HostConfig::default()).await;
        let dead = create(&engine, "dead", HostConfig::default()).await;
        engine.container_start(&alive).await.unwrap();
        engine.container_start(&dead).await.unwrap();
        (alive, dead)
    });
    // The daemon is gone; one container exits meanwhile.
    assert!(r.fake.shims.exit(&dead, 7));
    std::thread::sleep(Duration::from_millis(100));
    rig.daemon(|engine| async move {
        assert_eq!(status(&engine, &alive).await.0, "running");
        assert_eq!(status(&engine, &dead).await, ("exited".into(), 7));
        assert_eq!(
            r.mounts(),
            1,
            "only the live container's rootfs stays mounted"
        );
        // The live one's exit reaches the new daemon through the reconnected shim.
        let exited = engine
            .container_wait(&alive, WaitCondition::NotRunning)
            .await
            .unwrap();
        assert!(r.fake.shims.exit(&alive, 0));
        assert_eq!(exited.await.unwrap().status_code, 0);
        assert_eq!(r.mounts(), 0);
    });
}

#[test]
fn an_auto_remove_container_that_exited_while_the_daemon_was_down_is_removed() {
    let rig = Rig::new();
    let r = &rig;
    let id = rig.daemon(|engine| async move {
        image(&engine).await;
        let rm = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        let id = create(&engine, "rm-down", rm).await;
        engine.container_start(&id).await.unwrap();
        id
    });
    assert!(r.fake.shims.exit(&id, 0));
    std::thread::sleep(Duration::from_millis(100));
    rig.daemon(|engine| async move {
        eventually("the leftover is removed", || async {
            engine.container_inspect(&id).await.is_err()
        })
        .await;
    });
    assert_eq!(r.container_dirs(), 0);
}

fn attach_stdout() -> AttachOptions {
    AttachOptions {
        stream: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    }
}

#[test]
fn a_slow_attach_client_gets_every_byte_in_order() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let id = create(&engine, "chatty", HostConfig::default()).await;
        let mut session = engine.container_attach(&id, attach_stdout()).await.unwrap();
        engine.container_start(&id).await.unwrap();
        // Far more frames than the session's channel holds, before the client reads any.
        let lines = 20_000;
        for n in 0..lines {
            r.fake.shims.stdout(&id, format!("{n}\n").as_bytes());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut got = Vec::new();
        while got.len() < lines {
            let out = tokio::time::timeout(Duration::from_secs(5), session.output.recv())
                .await
                .expect("output keeps coming")
                .expect("the session stays open");
            got.extend(
                String::from_utf8(out.data.to_vec())
                    .unwrap()
                    .lines()
                    .map(|l| l.parse::<usize>().unwrap()),
            );
        }
        assert_eq!(got, (0..lines).collect::<Vec<_>>(), "every line, in order");
        assert!(r.fake.shims.exit(&id, 0));
    });
}

#[test]
fn an_attach_client_that_stopped_reading_does_not_hold_a_stop_back() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let id = create(&engine, "stuck", HostConfig::default()).await;
        let _never_read = engine.container_attach(&id, attach_stdout()).await.unwrap();
        engine.container_start(&id).await.unwrap();
        for n in 0..5_000 {
            r.fake.shims.stdout(&id, format!("{n}\n").as_bytes());
        }
        let stop = engine.container_stop(&id, None, Some(1));
        tokio::time::timeout(Duration::from_secs(10), stop)
            .await
            .expect("the stop ends though the client never reads")
            .unwrap();
        assert_eq!(status(&engine, &id).await.0, "exited");
    });
}

#[test]
fn ages_in_ps_follow_the_clock() {
    let rig = Rig::new();
    let r = &rig;
    rig.daemon(|engine| async move {
        image(&engine).await;
        let id = create(&engine, "aging", HostConfig::default()).await;
        engine.container_start(&id).await.unwrap();
        let status = || async {
            let all = ListOptions {
                all: true,
                ..Default::default()
            };
            engine.container_list(all).await.unwrap()[0].status.clone()
        };
        assert_eq!(status().await, "Up Less than a second");
        r.fake.clock.advance(90 * 60);
        assert_eq!(status().await, "Up 2 hours", "Go rounds the hours");
        let exited = engine
            .container_wait(&id, WaitCondition::NotRunning)
            .await
            .unwrap();
        assert!(r.fake.shims.exit(&id, 0));
        exited.await.unwrap();
        r.fake.clock.advance(3 * 24 * 3600);
        assert_eq!(status().await, "Exited (0) 3 days ago");
        let state = engine.container_inspect(&id).await.unwrap().state;
        assert!(
            state.started_at.starts_with("2027-01-15T08:00:00"),
            "{}",
            state.started_at
        );
    });
}
