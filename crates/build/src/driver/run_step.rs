//! The RUN step: the process (shell or exec form, heredocs), its environment (Env plus the
//! build args in effect), its mounts resolved (`from=` images, secrets, the bound context
//! files' digest for the cache key), the history text with the `|N K=V` prefix, and the
//! classic builder's messages around the container.

use super::args;
use super::copy::{self, SourceTree};
use super::stage::{finish_step, resolve_image, shell_of, step_err, Sink, StageState};
use super::{lock, short_id, Progress, Shared};
use crate::backend::{CopyEntry, RunNetwork, RunObserver, RunRequest, StepCommit};
use crate::dockerfile::{CommandLine, Run};
use crate::error::{BackendError, BuildError};
use crate::gofmt;
use crate::mounts::{self, MountKind};
use crate::shell;
use crate::stages::{resolve_ref, SourceRef};

struct Observer<'a, 's> {
    sink: &'a mut Sink<'s>,
    container: Option<String>,
}

impl RunObserver for Observer<'_, '_> {
    fn started(&mut self, container_id: &str) {
        self.container = Some(container_id.to_string());
        (self.sink)(Progress::Stream(format!(
            " ---> Running in {}\n",
            short_id(container_id)
        )));
    }
    fn output(&mut self, bytes: &[u8]) {
        (self.sink)(Progress::Stream(
            String::from_utf8_lossy(bytes).into_owned(),
        ));
    }
}

pub(super) fn dispatch_run(
    shared: &Shared<'_>,
    state: &mut StageState,
    run: &Run,
    line: usize,
    sink: &mut Sink<'_>,
) -> Result<(), BuildError> {
    let escape = shared.df.directives.escape;
    let config = &state.config;
    let argv = match &run.command {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let script = if run.heredocs.is_empty() {
                s.clone()
            } else if run.heredocs.len() == 1
                && crate::dockerfile::lines::heredocs_in(s, escape).len() == 1
                && s.split_whitespace().count() == 1
            {
                // `RUN <<EOF`: the body is the script.
                run.heredocs[0].content.clone()
            } else {
                // `RUN cmd <<EOF`: hand the shell its heredocs.
                let mut text = s.clone();
                for h in &run.heredocs {
                    text.push('\n');
                    text.push_str(&h.content);
                    text.push_str(&h.name);
                }
                text
            };
            let mut v = shell_of(config);
            v.push(script);
            v
        }
    };
    let in_effect = state.args.in_effect(&shared.opts.build_args, &config.env);
    let mut env = config.env.clone();
    env.extend(in_effect.iter().map(|(k, v)| format!("{k}={v}")));
    let mut history = args::history_prefix(&state.args, &in_effect).unwrap_or_default();
    history.extend(argv.iter().cloned());
    let created_by = history.join(" ");
    let network = match run.network.as_deref() {
        None | Some("default") => RunNetwork::Default,
        Some("none") => RunNetwork::None,
        Some("host") => RunNetwork::Host,
        Some(other) => {
            return Err(step_err(
                line,
                format!("unsupported network mode {}", gofmt::quote(other)),
            ))
        }
    };
    let vars = state.args.lookup_vars(&config.env);
    let mut mounts = Vec::new();
    let mut extra: Vec<String> = in_effect.iter().map(|(k, v)| format!("{k}={v}")).collect();
    extra.push(format!("network={network:?}"));
    let workdir = if config.working_dir.is_empty() {
        "/"
    } else {
        config.working_dir.as_str()
    };
    for raw in &run.mounts {
        let value = shell::process_word(raw, &vars, escape).map_err(|e| step_err(line, e.0))?;
        let mut m = mounts::parse_mount(&value).map_err(|e| step_err(line, e))?;
        if !m.target.starts_with('/') {
            m.target = copy::join_abs(workdir, &m.target);
        }
        if let Some(from) = &m.from {
            m.from_image = match resolve_ref(&shared.df, from, state.index)? {
                SourceRef::Stage(j) => lock(&shared.results).get(&j).and_then(|r| r.image.clone()),
                SourceRef::Image(name) => Some(resolve_image(shared, &name, None, sink)?.id),
            };
            extra.push(format!(
                "mount-from={}",
                m.from_image.clone().unwrap_or_default()
            ));
        } else if m.kind == MountKind::Bind {
            // Content of the context that is bound goes into the key.
            let tree = SourceTree {
                root: &shared.opts.context_dir,
                matcher: Some(&shared.matcher),
                is_context: true,
            };
            let src = m.source.clone().unwrap_or_else(|| ".".into());
            for rel in tree.resolve("RUN", &src)? {
                let matched = copy::Matched::resolve(&tree, &rel)?;
                let entries = if matched.is_dir {
                    copy::dir_entries(&tree, &matched, "/")?
                } else {
                    vec![CopyEntry {
                        dest: rel.clone(),
                        source: copy::host_source(&matched.host)?,
                    }]
                };
                extra.push(format!("bind:{rel}:{}", copy::digest_entries(&entries)?));
            }
        }
        if m.kind == MountKind::Secret {
            match shared.opts.secrets.get(&m.id) {
                Some(path) => m.secret_file = Some(path.clone()),
                None if m.required => {
                    return Err(step_err(line, format!("secret {} not found", m.id)))
                }
                None => continue,
            }
        }
        extra.push(format!(
            "{:?}",
            (
                m.kind,
                &m.target,
                &m.source,
                &m.id,
                m.read_only,
                m.mode,
                m.uid,
                m.gid,
                m.size
            )
        ));
        mounts.push(m);
    }
    let mut new_config = config.clone();
    new_config.image = state.image.clone().unwrap_or_default();
    let commit = StepCommit {
        parent: state.image.clone(),
        config: new_config,
        created_by,
        author: state.author.clone(),
    };
    let request = RunRequest {
        commit: commit.clone(),
        argv: argv.clone(),
        env,
        user: config.user.clone(),
        working_dir: config.working_dir.clone(),
        mounts,
        network,
        context_dir: shared.opts.context_dir.clone(),
    };
    finish_step(shared, state, commit, &extra, sink, |_, sink| {
        let mut observer = Observer {
            sink,
            container: None,
        };
        let result = shared.backend.run(&request, &mut observer);
        let container = observer.container.take();
        match result {
            Ok(id) => {
                if let Some(c) = container {
                    (observer.sink)(Progress::Stream(format!(
                        "Removing intermediate container {}\n",
                        short_id(&c)
                    )));
                }
                Ok(id)
            }
            Err(e) => Err(e),
        }
    })
    .map_err(|e| match e {
        BuildError::Backend(BackendError::ExitCode(code)) => BuildError::Step {
            message: format!(
                "The command '{}' returned a non-zero code: {code}",
                argv.join(" ")
            ),
            exit_code: Some(code),
        },
        other => other,
    })
}
