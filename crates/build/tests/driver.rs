//! Full driver runs over the fake backend, on the Dockerfiles of `tests/corpus/`: the final
//! config, the history, the progress messages, and which steps ran or came from the cache.

mod fake;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_build::backend::CopySource;
use berth_build::{build, BuildError, BuildOptions, BuildResult, Progress};
use fake::FakeBackend;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// Copies a corpus directory to a temporary context (tests change files in it).
fn context(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&corpus(name), tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn options(ctx: &Path, dockerfile: &str) -> BuildOptions {
    BuildOptions {
        context_dir: ctx.to_path_buf(),
        dockerfile: std::fs::read_to_string(ctx.join(dockerfile)).unwrap_or_default(),
        dockerfile_path: PathBuf::from(dockerfile),
        scratch_dir: ctx.join(".scratch"),
        ..Default::default()
    }
}

struct Run {
    result: Result<BuildResult, BuildError>,
    messages: Vec<Progress>,
}

impl Run {
    fn ok(&self) -> &BuildResult {
        self.result
            .as_ref()
            .unwrap_or_else(|e| panic!("build failed: {e}\n{}", self.text()))
    }
    fn text(&self) -> String {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Progress::Stream(s) => Some(s.as_str()),
                Progress::Aux { .. } => None,
            })
            .collect()
    }
}

fn run(backend: &FakeBackend, opts: &BuildOptions) -> Run {
    let messages = Mutex::new(Vec::new());
    let result = build(backend, opts, &|p| messages.lock().unwrap().push(p));
    Run {
        result,
        messages: messages.into_inner().unwrap(),
    }
}

fn history(backend: &FakeBackend, id: &str) -> Vec<(String, bool)> {
    let mut h = backend.image(id).history;
    h.remove(0); // the base image's entry
    h
}

fn id12(id: &str) -> String {
    id.trim_start_matches("sha256:")[..12].to_string()
}

#[test]
fn basic_build_config_history_and_messages() {
    let ctx = context("basic");
    let backend = FakeBackend::new();
    let mut opts = options(ctx.path(), "Dockerfile");
    opts.tags = vec!["app".into()];
    let r = run(&backend, &opts);
    let res = r.ok();
    assert_eq!(res.executed, 6);
    assert_eq!(res.cached, 0);
    assert_eq!(res.tags, vec!["app:latest"]);
    let img = backend.image(&res.image_id);
    assert_eq!(img.config.cmd.0, vec!["./run"]);
    assert_eq!(img.config.working_dir, "/app");
    assert!(img.config.env.contains(&"APP_HOME=/app".to_string()));
    assert_eq!(img.config.env[0].split('=').next(), Some("PATH"));
    assert!(img
        .config
        .exposed_ports
        .as_ref()
        .unwrap()
        .contains_key("8080/tcp"));
    assert_eq!(
        img.files["/data/blob.bin"].content.as_deref(),
        Some(&b"blob content v1\n"[..])
    );
    assert!(
        img.files["/app"].content.is_none(),
        "WORKDIR created the directory"
    );
    let h = history(&backend, &res.image_id);
    let created: Vec<&str> = h.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(created[0], "/bin/sh -c mkdir /data");
    assert!(
        created[1].starts_with("/bin/sh -c #(nop) COPY file:"),
        "{}",
        created[1]
    );
    assert!(created[1].ends_with(" in /data/ "), "{}", created[1]);
    assert_eq!(created[2], "/bin/sh -c #(nop)  ENV APP_HOME=/app");
    assert_eq!(created[3], "/bin/sh -c #(nop) WORKDIR /app");
    assert_eq!(created[4], "/bin/sh -c #(nop)  EXPOSE 8080");
    assert_eq!(created[5], "/bin/sh -c #(nop)  CMD [\"./run\"]");
    let empty: Vec<bool> = h.iter().map(|(_, e)| *e).collect();
    assert_eq!(empty, vec![false, false, true, false, true, true]);

    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Step 1/7 : FROM busybox");
    assert!(
        lines[1].starts_with(" ---> ") && lines[1].len() == 18,
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "Step 2/7 : RUN mkdir /data");
    assert!(lines[3].starts_with(" ---> Running in "));
    assert_eq!(lines[4], "ran: mkdir /data");
    assert!(lines[5].starts_with("Removing intermediate container "));
    assert!(lines.contains(&"Step 7/7 : CMD [\"./run\"]"));
    assert_eq!(
        lines[lines.len() - 2],
        format!("Successfully built {}", id12(&res.image_id))
    );
    assert_eq!(lines[lines.len() - 1], "Successfully tagged app:latest");
    assert!(r.messages.contains(&Progress::Aux {
        id: res.image_id.clone()
    }));
}

#[test]
fn cache_unchanged_rebuild_runs_nothing() {
    let ctx = context("basic");
    let backend = FakeBackend::new();
    let opts = options(ctx.path(), "Dockerfile");
    let first = run(&backend, &opts).ok().clone();
    backend.clear_calls();
    let second = run(&backend, &opts);
    let res = second.ok();
    assert_eq!(res.image_id, first.image_id);
    assert_eq!((res.executed, res.cached), (0, 6));
    assert!(backend.executed().is_empty(), "{:?}", backend.calls());
    assert_eq!(second.text().matches(" ---> Using cache").count(), 6);

    // Changing the copied file re-runs from the COPY on.
    std::fs::write(ctx.path().join("blob.bin"), "blob content v2\n").unwrap();
    backend.clear_calls();
    let third = run(&backend, &opts).ok().clone();
    assert_eq!((third.executed, third.cached), (5, 1));
    assert!(backend.executed()[0].starts_with("copy "));
    assert_ne!(third.image_id, first.image_id);
    // Changing only the mode changes the key too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        ctx.path().join("blob.bin"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(run(&backend, &opts).ok().executed, 5);

    // --no-cache bypasses every lookup.
    let mut no_cache = opts.clone();
    no_cache.no_cache = true;
    let r = run(&backend, &no_cache);
    assert_eq!((r.ok().executed, r.ok().cached), (6, 0));
    // A build arg in effect for a RUN changes its key; an unused one does not.
    let mut with_arg = opts.clone();
    with_arg.build_args.insert("UNUSED".into(), "1".into());
    let r = run(&backend, &with_arg);
    assert_eq!(r.ok().executed, 0);
    assert!(r
        .text()
        .contains("[Warning] One or more build-args [UNUSED] were not consumed"));
}

#[test]
fn every_instruction() {
    let ctx = context("all");
    let backend = FakeBackend::new();
    let r = run(&backend, &options(ctx.path(), "Dockerfile"));
    let res = r.ok();
    let img = backend.image(&res.image_id);
    let c = &img.config;
    assert_eq!(img.author, "Jo <jo@example.com>");
    assert_eq!(c.labels["org.example.name"], "demo app");
    assert_eq!(c.labels["version"], "1");
    assert!(c.env.contains(&"A=1".to_string()));
    assert!(c.env.contains(&"B=two words".to_string()));
    assert!(c.env.contains(&"LEGACY=legacy value".to_string()));
    assert_eq!(c.user, "1000:1000");
    assert_eq!(c.working_dir, "/srv/app");
    let vols: Vec<&String> = c.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(vols, vec!["/cache", "/data", "/logs"]);
    let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, vec!["53/udp", "80/tcp"]);
    let hc = c.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test.as_deref().unwrap(),
        ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"]
    );
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.timeout, Some(3_000_000_000));
    assert_eq!(hc.retries, Some(3));
    assert_eq!(hc.start_period, None);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(c.shell.as_deref().unwrap(), ["/bin/sh", "-eu", "-c"]);
    assert_eq!(c.entrypoint.0, vec!["/entry.sh"]);
    // CMD after ENTRYPOINT keeps; shell form uses the SHELL in effect; RUN/CMD not expanded.
    assert_eq!(c.cmd.0, vec!["/bin/sh", "-eu", "-c", "echo $A"]);
    assert_eq!(c.on_build, vec!["COPY . /src"]);
    // Files: COPY of a directory copies its contents; ADD extracts archives and fetches URLs.
    assert!(img.files.contains_key("/opt/files/top.txt"));
    assert!(img.files.contains_key("/opt/files/sub/nested.txt"));
    assert_eq!(img.files["/opt/files/top.txt"].mode, Some(0o640));
    assert_eq!(
        img.files["/opt/files/top.txt"].owner.as_deref(),
        Some("1000:1000")
    );
    assert_eq!(
        img.files["/opt/unpacked"].content.as_deref(),
        Some(&b"<extracted archive>"[..])
    );
    assert_eq!(
        img.files["/usr/local/bin/tool.sh"].content.as_deref(),
        Some(&b"downloaded from https://example.com/dl/tool.sh\n"[..])
    );
    assert!(backend
        .calls()
        .contains(&"fetch https://example.com/dl/tool.sh".to_string()));

    let h = history(&backend, &res.image_id);
    let created: Vec<&str> = h.iter().map(|(c, _)| c.as_str()).collect();
    let expect_prefix = [
        "/bin/sh -c #(nop)  MAINTAINER Jo <jo@example.com>",
        "/bin/sh -c #(nop)  LABEL org.example.name=demo app version=1",
        "/bin/sh -c #(nop)  ENV A=1 B=two words",
        "/bin/sh -c #(nop)  ENV LEGACY=legacy value",
        "/bin/sh -c #(nop)  ARG GREETING=hello",
        "|1 GREETING=hello /bin/sh -c echo $GREETING     && touch /hello",
    ];
    assert_eq!(&created[..6], &expect_prefix);
    assert!(
        created[6].starts_with("/bin/sh -c #(nop) COPY --chown=1000:1000dir:"),
        "{}",
        created[6]
    );
    assert!(
        created[7].starts_with("/bin/sh -c #(nop) ADD file:"),
        "{}",
        created[7]
    );
    let rest = [
        "/bin/sh -c #(nop)  USER 1000:1000",
        "/bin/sh -c #(nop) WORKDIR /srv",
        "/bin/sh -c #(nop) WORKDIR /srv/app",
        "/bin/sh -c #(nop)  VOLUME [/data /logs]",
        "/bin/sh -c #(nop)  VOLUME [/cache]",
        "/bin/sh -c #(nop)  EXPOSE 80 53/udp",
        "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"wget -q -O- http://localhost/ || exit 1\"] \"30s\" \"3s\" \"0s\" \"0s\" '\\x03'}",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGINT",
        "/bin/sh -eu -c #(nop)  SHELL [/bin/sh -eu -c]",
        "/bin/sh -eu -c #(nop)  ENTRYPOINT [\"/entry.sh\"]",
        "/bin/sh -eu -c #(nop)  CMD [\"/bin/sh\" \"-eu\" \"-c\" \"echo $A\"]",
        "/bin/sh -eu -c #(nop)  ONBUILD COPY . /src",
    ];
    assert_eq!(&created[9..], &rest);
    // The RUN got the build arg in its environment.
    let runs = backend.runs.lock().unwrap();
    assert!(runs[0].env.contains(&"GREETING=hello".to_string()));
    assert_eq!(
        runs[0].argv,
        ["/bin/sh", "-c", "echo $GREETING     && touch /hello"]
    );
}

#[test]
fn entrypoint_resets_cmd_of_base() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FakeBackend::new();
    let mut opts = options(dir.path(), "Dockerfile");
    opts.dockerfile = "FROM busybox\nENTRYPOINT echo hi\n".into();
    let id = run(&backend, &opts).ok().image_id.clone();
    let c = backend.image(&id).config;
    assert!(c.cmd.0.is_empty(), "the base image's Cmd is dropped");
    assert_eq!(c.entrypoint.0, ["/bin/sh", "-c", "echo hi"]);
    opts.dockerfile = "FROM busybox\nCMD [\"x\"]\nENTRYPOINT [\"e\"]\n".into();
    let id = run(&backend, &opts).ok().image_id.clone();
    assert_eq!(
        backend.image(&id).config.cmd.0,
        ["x"],
        "a CMD of this stage stays"
    );
}

#[test]
fn multistage_builds_needed_stages_only() {
    let ctx = context("multistage");
    for parallel in [false, true] {
        let backend = FakeBackend::new();
        let mut opts = options(ctx.path(), "Dockerfile");
        opts.parallel = parallel;
        let r = run(&backend, &opts);
        let res = r.ok();
        let img = backend.image(&res.image_id);
        assert_eq!(img.files["/app"].content.as_deref(), Some(&b"built"[..]));
        assert_eq!(
            img.files["/deps.txt"].content.as_deref(),
            Some(&b"deps"[..])
        );
        assert_eq!(
            img.files["/alpine-release"].content.as_deref(),
            Some(&b"alpine\n"[..])
        );
        assert_eq!(img.config.cmd.0, ["/app"]);
        let calls = backend.calls();
        assert!(
            !calls.iter().any(|c| c.contains("/never")),
            "unused stage ran: {calls:?}"
        );
        let mounts = calls.iter().filter(|c| c.starts_with("mount ")).count();
        let releases = calls.iter().filter(|c| c.starts_with("release ")).count();
        assert_eq!(
            (mounts, releases),
            (4, 4),
            "every mounted image is released"
        );
        // Steps are numbered over the needed stages: 2 + 2 + 4 + 5 = 13.
        assert!(
            r.text().contains("Step 13/13 : CMD [\"/app\"]"),
            "{}",
            r.text()
        );
        // --from copies keep the source's ownership.
        let copies = backend.copies.lock().unwrap();
        assert!(copies.iter().filter(|c| c.preserve_owner).count() == 4);
    }
    // --target builds the named stage and what it needs.
    let backend = FakeBackend::new();
    let mut opts = options(ctx.path(), "Dockerfile");
    opts.target = Some("build".into());
    let res = run(&backend, &opts).ok().clone();
    let img = backend.image(&res.image_id);
    assert!(img.files.contains_key("/out/app"));
    assert!(img.files.contains_key("/opt/tool.txt"));
    assert!(img.files.contains_key("/src/main.rs"));
    assert!(!img.files.contains_key("/app"));
    opts.target = Some("unused".into());
    let res = run(&backend, &opts).ok().clone();
    assert!(backend.image(&res.image_id).files.contains_key("/never"));
}

#[test]
fn arg_scoping_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FakeBackend::new();
    let mut opts = options(dir.path(), "Dockerfile");
    opts.dockerfile = "\
ARG V=1
ARG ONLY_FROM=busybox
FROM ${ONLY_FROM}
ARG V
ARG LOCAL=def
ENV FROM_ENV=x$ONLY_FROM
RUN echo $V $LOCAL
ENV LOCAL=env
RUN echo $LOCAL
ARG V2=${LOCAL}-$V
LABEL v2=$V2
"
    .into();
    opts.build_args
        .insert("HTTP_PROXY".into(), "http://proxy:3128".into());
    let res = run(&backend, &opts).ok().clone();
    let img = backend.image(&res.image_id);
    assert!(
        img.config.env.contains(&"FROM_ENV=x".to_string()),
        "meta args are FROM-only"
    );
    assert_eq!(img.config.labels["v2"], "env-1", "ENV wins over ARG");
    let h = history(&backend, &res.image_id);
    let runs: Vec<&str> = h
        .iter()
        .map(|(c, _)| c.as_str())
        .filter(|c| c.starts_with('|'))
        .collect();
    assert_eq!(
        runs,
        [
            "|2 LOCAL=def V=1 /bin/sh -c echo $V $LOCAL",
            "|1 V=1 /bin/sh -c echo $LOCAL"
        ]
    );
    let reqs = backend.runs.lock().unwrap();
    assert!(
        reqs[0]
            .env
            .contains(&"HTTP_PROXY=http://proxy:3128".to_string()),
        "proxy args reach RUN"
    );
    assert!(!reqs[1].env.contains(&"LOCAL=def".to_string()));
    drop(reqs);
    // Build args override defaults (meta and stage).
    opts.build_args.insert("V".into(), "9".into());
    let res = run(&backend, &opts).ok().clone();
    assert_eq!(backend.image(&res.image_id).config.labels["v2"], "env-9");
}

#[test]
fn heredocs_run_and_copy() {
    let ctx = context("heredoc");
    let backend = FakeBackend::new();
    let res = run(&backend, &options(ctx.path(), "Dockerfile"))
        .ok()
        .clone();
    let img = backend.image(&res.image_id);
    assert_eq!(
        img.files["/greeting"].content.as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        img.files["/etc/app.conf"].content.as_deref(),
        Some(&b"name=world\n"[..])
    );
    assert_eq!(
        img.files["/etc/RAW"].content.as_deref(),
        Some(&b"literal $NAME\n"[..])
    );
    assert_eq!(
        img.files["/etc/TABS"].content.as_deref(),
        Some(&b"tabbed\n"[..])
    );
    let runs = backend.runs.lock().unwrap();
    assert_eq!(runs[0].argv, ["/bin/sh", "-c", "write /greeting hello\n"]);
    assert_eq!(
        runs[1].argv,
        ["/bin/sh", "-c", "cat <<EOF > /x\n$HOME\nEOF"]
    );
}

#[test]
fn dockerignore_filters_context() {
    let ctx = context("ignore");
    let backend = FakeBackend::new();
    let res = run(&backend, &options(ctx.path(), "Dockerfile"))
        .ok()
        .clone();
    let files: Vec<String> = backend
        .image(&res.image_id)
        .files
        .keys()
        .filter(|k| k.starts_with("/ctx/"))
        .cloned()
        .collect();
    assert_eq!(
        files,
        [
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/a.txt",
            "/ctx/app.Dockerfile",
            "/ctx/app.Dockerfile.dockerignore",
            "/ctx/docs",
            "/ctx/docs/readme.md",
            "/ctx/keep.log",
        ]
    );
    // app.Dockerfile.dockerignore takes precedence over .dockerignore.
    let res = run(&backend, &options(ctx.path(), "app.Dockerfile"))
        .ok()
        .clone();
    let img = backend.image(&res.image_id);
    assert!(img.files.contains_key("/ctx/debug.log"));
    assert!(img.files.contains_key("/ctx/secret/key"));
    assert!(!img.files.contains_key("/ctx/docs"));
    // A change to an ignored file does not invalidate the cache.
    backend.clear_calls();
    std::fs::write(ctx.path().join("debug.log"), "changed").unwrap();
    let r = run(&backend, &options(ctx.path(), "Dockerfile"));
    assert_eq!(r.ok().executed, 0);
}

#[test]
fn onbuild_triggers_run_in_child() {
    let ctx = context("onbuild");
    let backend = FakeBackend::new();
    let mut opts = options(ctx.path(), "Dockerfile");
    opts.tags = vec!["onbuild-parent".into()];
    let parent = run(&backend, &opts).ok().clone();
    assert_eq!(backend.image(&parent.image_id).config.on_build.len(), 2);
    let r = run(&backend, &options(ctx.path(), "child.Dockerfile"));
    let child = r.ok();
    let img = backend.image(&child.image_id);
    assert!(img.config.on_build.is_empty(), "triggers are not inherited");
    assert_eq!(
        img.files["/triggered"].content.as_deref(),
        Some(&b"yes"[..])
    );
    assert!(img.files.contains_key("/src/payload.txt"));
    assert!(img.files.contains_key("/child"));
    assert!(r.text().contains("# Executing 2 build triggers\n"));
    assert_eq!(img.config.cmd.0, ["parent"]);
}

#[test]
fn failing_run_reports_docker_error() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FakeBackend::new();
    let mut opts = options(dir.path(), "Dockerfile");
    opts.tags = vec!["never".into()];
    opts.dockerfile = "FROM busybox\nRUN exit 7\n".into();
    let r = run(&backend, &opts);
    match r.result {
        Err(BuildError::Step { message, exit_code }) => {
            assert_eq!(
                message,
                "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
            );
            assert_eq!(exit_code, Some(7));
        }
        other => panic!("{other:?}"),
    }
    assert!(!backend.calls().iter().any(|c| c.starts_with("tag ")));
    assert!(backend.cache.lock().unwrap().is_empty());
    opts.dockerfile = "FROM busybox\nRUN [\"false\"]\n".into();
    let e = run(&backend, &opts).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "The command 'false' returned a non-zero code: 1"
    );
}

#[test]
fn copy_destination_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "f").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/inner"), "i").unwrap();
    let backend = FakeBackend::new();
    let mut opts = options(dir.path(), "Dockerfile");
    opts.dockerfile = "\
FROM busybox
WORKDIR /w
COPY f.txt renamed
COPY f.txt /etc
COPY f.txt sub/
COPY d /dir-contents
COPY *.txt d/inner ./multi/
"
    .into();
    let res = run(&backend, &opts).ok().clone();
    let files = backend.image(&res.image_id).files;
    assert!(
        files.contains_key("/w/renamed"),
        "relative dest is under WORKDIR"
    );
    assert!(
        files.contains_key("/etc/f.txt"),
        "existing directory takes the file inside"
    );
    assert!(files.contains_key("/w/sub/f.txt"));
    assert!(
        files.contains_key("/dir-contents/inner"),
        "a directory copies its contents"
    );
    assert!(files.contains_key("/w/multi/f.txt") && files.contains_key("/w/multi/inner"));
    let copies = backend.copies.lock().unwrap();
    assert!(matches!(copies[3].entries[0].source, CopySource::Dir(_)));
}

#[test]
fn run_mounts_and_network() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret").unwrap();
    std::fs::write(dir.path().join("bound.txt"), "v1").unwrap();
    let backend = FakeBackend::new();
    let mut opts = options(dir.path(), "Dockerfile");
    opts.secrets.insert("tok".into(), dir.path().join("token"));
    opts.dockerfile = "\
FROM busybox AS base
FROM busybox
WORKDIR /w
RUN --mount=type=cache,target=cache --mount=type=secret,id=tok --mount=type=bind,source=bound.txt,target=/b --mount=type=bind,from=base,target=/base --network=none true
"
    .into();
    let r = run(&backend, &opts);
    r.ok();
    {
        let runs = backend.runs.lock().unwrap();
        let m = &runs[0].mounts;
        assert_eq!(m[0].target, "/w/cache");
        assert_eq!(
            m[1].secret_file.as_deref(),
            Some(dir.path().join("token").as_path())
        );
        assert_eq!(m[2].from_image, None);
        assert!(m[3].from_image.as_deref().unwrap().starts_with("sha256:"));
        assert_eq!(runs[0].network, berth_build::backend::RunNetwork::None);
    }
    // The bound context file is part of the cache key.
    backend.clear_calls();
    assert_eq!(run(&backend, &opts).ok().executed, 0);
    std::fs::write(dir.path().join("bound.txt"), "v2").unwrap();
    assert_eq!(run(&backend, &opts).ok().executed, 1);
    // A required secret that was not given fails the step.
    opts.dockerfile = "FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n".into();
    let e = run(&backend, &opts).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: secret nope not found"
    );
}

#[test]
fn labels_option_and_scratch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let backend = FakeBackend::new();
    let mut opts = options(dir.path(), "Dockerfile");
    opts.dockerfile = "FROM scratch\nCOPY f /f\n".into();
    opts.labels.insert("com.x".into(), "$NOT_EXPANDED".into());
    let r = run(&backend, &opts);
    let res = r.ok();
    let img = backend.image(&res.image_id);
    assert_eq!(img.config.labels["com.x"], "$NOT_EXPANDED");
    assert!(r
        .text()
        .contains("Step 3/3 : LABEL \"com.x\"='$NOT_EXPANDED'"));
    assert_eq!(img.history.len(), 2, "scratch has no history of its own");
    opts.dockerfile = "FROM scratch\n".into();
    opts.labels.clear();
    let e = run(&backend, &opts).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "No image was generated. Is your Dockerfile empty?"
    );
}

#[test]
fn missing_base_image_fails() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FakeBackend::new();
    let mut opts = options(dir.path(), "Dockerfile");
    opts.dockerfile = "FROM nosuchimage\n".into();
    let e = run(&backend, &opts).result.unwrap_err();
    assert!(
        e.to_string().contains("pull access denied for nosuchimage"),
        "{e}"
    );
    opts.dockerfile = "FROM busybox\n".into();
    opts.pull = true;
    let r = run(&backend, &opts);
    r.ok();
    assert!(r.text().contains("pulling busybox:latest\n"));
}

#[test]
fn error_corpus() {
    let dir = corpus("errors");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no expectation", path.display()));
        let target = text.lines().find_map(|l| l.strip_prefix("# target: "));
        let backend = FakeBackend::new();
        let mut opts = options(&dir, path.file_name().unwrap().to_str().unwrap());
        opts.target = target.map(str::to_string);
        let e = run(&backend, &opts)
            .result
            .expect_err(&path.display().to_string());
        assert_eq!(e.to_string(), expect, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 14);
}
