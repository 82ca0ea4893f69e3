//! One stage of a build: FROM (with the base image's ONBUILD triggers), then every
//! instruction dispatched as the classic builder does: the config change, the history text
//! (`/bin/sh -c #(nop)  ENV A=b`, `/bin/sh -c echo hi`, `|1 A=b /bin/sh -c …`), the cache
//! lookup, and the backend call.

use berth_api::{ContainerConfig, HealthConfig, StrList};

use super::args::StageArgs;
use super::copy;
use super::{cache_key, lock, short_id, Progress, Shared, StageResult};
use crate::backend::{CommitRequest, StepCommit};
use crate::dockerfile::{self, CommandLine, Instruction, Parsed};
use crate::error::{BackendError, BuildError, ParseError};
use crate::gofmt;
use crate::shell;
use crate::stages::{resolve_ref, SourceRef};

/// The state of a stage while it is built.
pub(super) struct StageState {
    pub(super) index: usize,
    pub(super) image: Option<String>,
    pub(super) config: ContainerConfig,
    pub(super) author: String,
    pub(super) args: StageArgs,
    pub(super) cmd_set: bool,
}

pub(super) type Sink<'s> = dyn FnMut(Progress) + 's;

pub(super) fn say(sink: &mut Sink<'_>, text: impl Into<String>) {
    sink(Progress::Stream(text.into()));
}

/// Builds stage `idx`.
pub(super) fn run_stage(
    shared: &Shared<'_>,
    idx: usize,
    sink: &mut Sink<'_>,
) -> Result<StageResult, BuildError> {
    let df = &shared.df;
    let stage = &df.stages[idx];
    let escape = df.directives.escape;
    let total = shared.total_steps;
    let mut number = shared.first_step[&idx];
    say(
        sink,
        format!("Step {number}/{total} : {}\n", stage.original),
    );
    let expand_meta = |s: &str| {
        shell::process_word(s, &shared.meta, escape).map_err(|e| step_err(stage.line, e.0))
    };
    let base = expand_meta(&stage.from.image)?;
    if base.is_empty() {
        return Err(step_err(
            stage.line,
            "base name (".to_string() + &stage.from.image + ") should not be blank",
        ));
    }
    let platform = match &stage.from.platform {
        Some(p) => Some(expand_meta(p)?),
        None => shared.opts.platform.clone(),
    };
    let (image, mut config) = match resolve_ref(df, &base, idx)? {
        SourceRef::Stage(j) => {
            let r = lock(&shared.results).get(&j).cloned().unwrap_or_default();
            (r.image, r.config)
        }
        SourceRef::Image(name) if name.eq_ignore_ascii_case("scratch") => {
            (None, ContainerConfig::default())
        }
        SourceRef::Image(name) => {
            let info = resolve_image(shared, &name, platform.as_deref(), sink)?;
            (Some(info.id), info.config)
        }
    };
    if let Some(id) = &image {
        say(sink, format!(" ---> {}\n", short_id(id)));
    }
    let triggers = std::mem::take(&mut config.on_build);
    let mut state = StageState {
        index: idx,
        image,
        config,
        author: String::new(),
        args: StageArgs::default(),
        cmd_set: false,
    };
    if !triggers.is_empty() {
        let plural = if triggers.len() == 1 { "" } else { "s" };
        say(
            sink,
            format!("# Executing {} build trigger{plural}\n", triggers.len()),
        );
        for trigger in &triggers {
            let parsed =
                dockerfile::parse_instruction(trigger, stage.line, &df.directives, Vec::new())?;
            let Parsed::Instruction(instruction) = parsed else {
                return Err(step_err(
                    stage.line,
                    "FROM isn't allowed as an ONBUILD trigger",
                ));
            };
            if matches!(
                instruction,
                Instruction::OnBuild(_) | Instruction::Maintainer(_)
            ) {
                return Err(step_err(
                    stage.line,
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        instruction.keyword()
                    ),
                ));
            }
            dispatch(shared, &mut state, &instruction, stage.line, sink)?;
            if let Some(id) = &state.image {
                say(sink, format!(" ---> {}\n", short_id(id)));
            }
        }
    }
    for step in &stage.steps {
        number += 1;
        say(sink, format!("Step {number}/{total} : {}\n", step.original));
        dispatch(shared, &mut state, &step.instruction, step.line, sink)?;
        if let Some(id) = &state.image {
            say(sink, format!(" ---> {}\n", short_id(id)));
        }
    }
    Ok(StageResult {
        image: state.image,
        config: state.config,
    })
}

pub(super) fn step_err(line: usize, message: impl Into<String>) -> BuildError {
    if line == 0 {
        return BuildError::InvalidInput(message.into());
    }
    BuildError::Parse(ParseError::at(line, message))
}

pub(super) fn resolve_image(
    shared: &Shared<'_>,
    name: &str,
    platform: Option<&str>,
    sink: &mut Sink<'_>,
) -> Result<crate::backend::ImageInfo, BuildError> {
    let mut log = |l: &str| sink(Progress::Stream(format!("{l}\n")));
    Ok(shared
        .backend
        .resolve_image(name, platform, shared.opts.pull, &mut log)?)
}

/// The shell of a config (`SHELL`, default `/bin/sh -c`).
pub(super) fn shell_of(config: &ContainerConfig) -> Vec<String> {
    match &config.shell {
        Some(s) if !s.is_empty() => s.clone(),
        _ => vec!["/bin/sh".into(), "-c".into()],
    }
}

/// A command line as the config stores it: the shell form gets the shell in front.
fn resolve_cmd(cmd: &CommandLine, config: &ContainerConfig) -> Vec<String> {
    match cmd {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = shell_of(config);
            v.push(s.clone());
            v
        }
    }
}

fn dispatch(
    shared: &Shared<'_>,
    state: &mut StageState,
    instruction: &Instruction,
    line: usize,
    sink: &mut Sink<'_>,
) -> Result<(), BuildError> {
    let escape = shared.df.directives.escape;
    let vars = state.args.lookup_vars(&state.config.env);
    let expand = |s: &str| shell::process_word(s, &vars, escape).map_err(|e| step_err(line, e.0));
    let mut config = state.config.clone();
    let mut ensure_dir = None;
    let comment = match instruction {
        Instruction::Run(run) => {
            return super::run_step::dispatch_run(shared, state, run, line, sink)
        }
        Instruction::Copy(c) => {
            return super::copy_step::dispatch_copy(shared, state, c, false, line, sink)
        }
        Instruction::Add(c) => {
            return super::copy_step::dispatch_copy(shared, state, c, true, line, sink)
        }
        Instruction::Env(pairs) => {
            let mut text = String::from("ENV");
            for kv in pairs {
                let value = expand(&kv.value)?;
                set_env(&mut config.env, &kv.key, &value);
                text.push_str(&format!(" {}={value}", kv.key));
            }
            text
        }
        Instruction::Label(pairs) => {
            let mut text = String::from("LABEL");
            for kv in pairs {
                let key = expand(&kv.key)?;
                let value = expand(&kv.value)?;
                text.push_str(&format!(" {key}={value}"));
                config.labels.insert(key, value);
            }
            text
        }
        Instruction::Arg(decls) => {
            let mut parts = Vec::new();
            for d in decls {
                let default = d.default.as_deref().map(&expand).transpose()?;
                parts.push(match &default {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                });
                state
                    .args
                    .declare(&d.name, default, &shared.opts.build_args, &shared.meta);
                lock(&shared.consumed).insert(d.name.clone());
            }
            format!("ARG {}", parts.join(" "))
        }
        Instruction::Expose(ports) => {
            let mut expanded = Vec::new();
            for p in ports {
                let p = expand(p)?;
                for key in port_keys(&p).map_err(|e| step_err(line, e))? {
                    config
                        .exposed_ports
                        .get_or_insert_with(Default::default)
                        .insert(key, serde_json::json!({}));
                }
                expanded.push(p);
            }
            format!("EXPOSE {}", expanded.join(" "))
        }
        Instruction::User(u) => {
            config.user = expand(u)?;
            format!("USER {}", config.user)
        }
        Instruction::Workdir(w) => {
            let path = expand(w)?;
            let dir = if path.starts_with('/') {
                crate::ignore::clean_path(&path)
            } else {
                let base = if config.working_dir.is_empty() {
                    "/"
                } else {
                    &config.working_dir
                };
                copy::join_abs(base, &path)
            };
            config.working_dir = dir.clone();
            ensure_dir = Some(dir.clone());
            format!("WORKDIR {dir}")
        }
        Instruction::Volume(vols) => {
            let mut expanded = Vec::new();
            for v in vols {
                let v = expand(v)?;
                if v.trim().is_empty() {
                    return Err(step_err(
                        line,
                        "VOLUME specified can not be an empty string",
                    ));
                }
                config
                    .volumes
                    .get_or_insert_with(Default::default)
                    .insert(v.clone(), serde_json::json!({}));
                expanded.push(v);
            }
            format!("VOLUME {}", gofmt::value_list(&expanded))
        }
        Instruction::StopSignal(s) => {
            let sig = expand(s)?;
            if !valid_signal(&sig) {
                return Err(step_err(line, format!("Invalid signal: {sig}")));
            }
            config.stop_signal = Some(sig.clone());
            format!("STOPSIGNAL {sig}")
        }
        Instruction::Healthcheck(h) => {
            let nz = |v: i64| (v != 0).then_some(v);
            config.healthcheck = Some(HealthConfig {
                test: Some(h.test.clone()),
                interval: nz(h.interval),
                timeout: nz(h.timeout),
                retries: nz(h.retries),
                start_period: nz(h.start_period),
                start_interval: nz(h.start_interval),
            });
            format!(
                "HEALTHCHECK &{{{} {} {} {} {} {}}}",
                gofmt::quote_list(&h.test),
                gofmt::quote(&gofmt::duration(h.interval)),
                gofmt::quote(&gofmt::duration(h.timeout)),
                gofmt::quote(&gofmt::duration(h.start_period)),
                gofmt::quote(&gofmt::duration(h.start_interval)),
                gofmt::quote_rune(h.retries)
            )
        }
        Instruction::Shell(sh) => {
            config.shell = Some(sh.clone());
            format!("SHELL {}", gofmt::value_list(sh))
        }
        Instruction::Cmd(cmd) => {
            let argv = resolve_cmd(cmd, &config);
            if !matches!(cmd, CommandLine::Exec(v) if v.is_empty()) {
                state.cmd_set = true;
            }
            let text = format!("CMD {}", gofmt::quote_list(&argv));
            config.cmd = StrList(argv);
            text
        }
        Instruction::Entrypoint(cmd) => {
            let argv = match cmd {
                CommandLine::Shell(s) if s.is_empty() => Vec::new(),
                other => resolve_cmd(other, &config),
            };
            if !state.cmd_set {
                config.cmd = StrList(Vec::new());
            }
            let text = format!("ENTRYPOINT {}", gofmt::quote_list(&argv));
            config.entrypoint = StrList(argv);
            text
        }
        Instruction::OnBuild(expr) => {
            config.on_build.push(expr.clone());
            format!("ONBUILD {expr}")
        }
        Instruction::Maintainer(m) => {
            state.author = m.clone();
            format!("MAINTAINER {m}")
        }
    };
    let mut created_by = shell_of(&config);
    if ensure_dir.is_some() {
        // WORKDIR uses `withCmdCommentString`: one space after `#(nop)`.
        created_by.push(format!("#(nop) {comment}"));
    } else {
        created_by.push("#(nop) ".into());
        created_by.push(comment);
    }
    let created_by = created_by.join(" ");
    config.image = state.image.clone().unwrap_or_default();
    let commit = StepCommit {
        parent: state.image.clone(),
        config,
        created_by,
        author: state.author.clone(),
    };
    let extra = ensure_dir.iter().cloned().collect::<Vec<_>>();
    finish_step(shared, state, commit, &extra, sink, |commit, _| {
        shared.backend.commit(&CommitRequest {
            commit: commit.clone(),
            ensure_dir: ensure_dir.clone(),
        })
    })
}

/// Looks the step up in the cache or runs it, then moves the stage to the new image.
pub(super) fn finish_step<'s>(
    shared: &Shared<'_>,
    state: &mut StageState,
    commit: StepCommit,
    extra: &[String],
    sink: &mut Sink<'s>,
    run: impl FnOnce(&StepCommit, &mut Sink<'s>) -> Result<String, BackendError>,
) -> Result<(), BuildError> {
    let key = cache_key(
        commit.parent.as_deref(),
        &commit.created_by,
        &commit.config,
        extra,
    );
    let hit = if shared.opts.no_cache {
        None
    } else {
        shared.backend.cache_get(&key)?
    };
    let id = match hit {
        Some(id) => {
            say(sink, " ---> Using cache\n");
            lock(&shared.counts).1 += 1;
            id
        }
        None => {
            let id = run(&commit, sink)?;
            shared.backend.cache_put(&key, &id)?;
            lock(&shared.counts).0 += 1;
            id
        }
    };
    state.image = Some(id);
    state.config = commit.config;
    Ok(())
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// EXPOSE values → `port/proto` keys (`80` → `80/tcp`, `8000-8001/udp` → two keys).
fn port_keys(spec: &str) -> Result<Vec<String>, String> {
    let spec = spec.rsplit(':').next().unwrap_or(spec);
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if end < start {
        return Err(format!(
            "invalid range specified for container port: {ports}"
        ));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn valid_signal(sig: &str) -> bool {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if let Ok(n) = sig.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = sig.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
    {
        return rest.is_empty() || rest[1..].parse::<u32>().is_ok_and(|n| n <= 15);
    }
    NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port_keys("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(port_keys("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            port_keys("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(port_keys("abc").unwrap_err(), "invalid containerPort: abc");
        assert_eq!(port_keys("80/xyz").unwrap_err(), "invalid proto: xyz");
    }

    #[test]
    fn signals() {
        for s in ["SIGTERM", "term", "9", "SIGRTMIN+3", "SIGUSR1"] {
            assert!(valid_signal(s), "{s}");
        }
        for s in ["SIGNOPE", "0", "99", ""] {
            assert!(!valid_signal(s), "{s}");
        }
    }

    #[test]
    fn env_replace_in_place() {
        let mut env = vec!["A=1".to_string(), "B=2".to_string()];
        set_env(&mut env, "A", "3");
        set_env(&mut env, "C", "4");
        assert_eq!(env, vec!["A=3", "B=2", "C=4"]);
    }
}
