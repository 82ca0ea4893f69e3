//! The COPY and ADD steps: expansion of the arguments, `--from` images mounted for the time
//! of the step, heredoc and URL sources, Docker's several-sources rule, the entries for the
//! backend, the content digests, and the classic history text
//! (`/bin/sh -c #(nop) COPY file:<hex> in /dst `).

use berth_api::ContainerConfig;

use super::copy::{self, SourceTree};
use super::stage::{finish_step, resolve_image, shell_of, step_err, Sink, StageState};
use super::{cache_key, lock, Shared};
use crate::backend::{CopyEntry, CopyRequest, CopySource, StepCommit};
use crate::dockerfile::CopyArgs;
use crate::error::BuildError;
use crate::shell;
use crate::stages::{resolve_ref, SourceRef};

struct MountedImage<'a> {
    backend: &'a dyn crate::backend::BuildBackend,
    id: String,
    path: std::path::PathBuf,
}

impl Drop for MountedImage<'_> {
    fn drop(&mut self) {
        self.backend.release_image(&self.id, &self.path);
    }
}

/// Temporary download files, removed on drop.
struct TempFiles(Vec<std::path::PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

pub(super) fn dispatch_copy(
    shared: &Shared<'_>,
    state: &mut StageState,
    c: &CopyArgs,
    is_add: bool,
    line: usize,
    sink: &mut Sink<'_>,
) -> Result<(), BuildError> {
    let cmd = if is_add { "ADD" } else { "COPY" };
    let escape = shared.df.directives.escape;
    let vars = state.args.lookup_vars(&state.config.env);
    let expand = |s: &str| shell::process_word(s, &vars, escape).map_err(|e| step_err(line, e.0));
    let dest_written = expand(&c.dest)?;
    let (dest, dir_like) = copy::destination(&dest_written, &state.config.working_dir);
    let chown = c
        .chown
        .as_deref()
        .map(&expand)
        .transpose()?
        .filter(|s| !s.is_empty());
    let chmod = match c.chmod.as_deref().map(&expand).transpose()? {
        Some(m) => Some(
            u32::from_str_radix(&m, 8)
                .ok()
                .filter(|v| *v <= 0o7777)
                .ok_or_else(|| step_err(line, format!("invalid chmod parameter: {m}")))?,
        ),
        None => None,
    };
    // Where context-like sources come from: the context, or a mounted --from image.
    let mut mounted = None;
    let mut from_id = None;
    if let Some(from) = &c.from {
        let from = expand(from)?;
        let id = match resolve_ref(&shared.df, &from, state.index)? {
            SourceRef::Stage(j) => lock(&shared.results).get(&j).and_then(|r| r.image.clone()),
            SourceRef::Image(name) => Some(resolve_image(shared, &name, None, sink)?.id),
        };
        let id = id.ok_or_else(|| {
            BuildError::InvalidInput(format!("{cmd} failed: stage {from} has no filesystem"))
        })?;
        let path = shared.backend.mount_image(&id)?;
        mounted = Some(MountedImage {
            backend: shared.backend,
            id: id.clone(),
            path,
        });
        from_id = Some(id);
    }
    let tree = match &mounted {
        Some(m) => SourceTree {
            root: &m.path,
            matcher: None,
            is_context: false,
        },
        None => SourceTree {
            root: &shared.opts.context_dir,
            matcher: Some(&shared.matcher),
            is_context: true,
        },
    };
    if c.checksum.is_some() && !(is_add && c.sources.iter().all(|s| is_url(s))) {
        return Err(step_err(
            line,
            "checksum can't be specified for non-HTTP(S) sources",
        ));
    }
    // First resolve every source, to apply the several-sources rule.
    enum Src {
        Bytes(String, Vec<u8>),
        Host(copy::Matched, bool),
    }
    let mut resolved: Vec<Src> = Vec::new();
    let mut temps = TempFiles(Vec::new());
    let mut heredocs = c.heredocs.iter();
    for raw in &c.sources {
        if !c.heredocs.is_empty() && !crate::dockerfile::lines::heredocs_in(raw, escape).is_empty()
        {
            let h = heredocs
                .next()
                .ok_or_else(|| step_err(line, "unterminated heredoc"))?;
            let content = if h.expand {
                shell::expand_heredoc(&h.content, &vars, escape).map_err(|e| step_err(line, e.0))?
            } else {
                h.content.clone()
            };
            resolved.push(Src::Bytes(h.name.clone(), content.into_bytes()));
            continue;
        }
        let src = expand(raw)?;
        if is_add && is_url(&src) {
            resolved.push(Src::Host(
                fetch(shared, &src, c.checksum.as_deref(), &mut temps, line)?,
                false,
            ));
            continue;
        }
        if is_add && (src.starts_with("git@") || (is_url(&src) && src.ends_with(".git"))) {
            return Err(step_err(line, "ADD of git repositories is not supported"));
        }
        for rel in tree.resolve(cmd, &src)? {
            resolved.push(Src::Host(copy::Matched::resolve(&tree, &rel)?, is_add));
        }
    }
    if resolved.len() > 1 && !dir_like {
        return Err(BuildError::InvalidInput(format!(
            "When using {cmd} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    let single = resolved.len() == 1;
    let mut entries = Vec::new();
    let mut per_source = Vec::new();
    for src in &resolved {
        let (mine, is_dir) = match src {
            Src::Bytes(name, content) => {
                let target = if dir_like || dest_is_dir(shared, state, &dest, single)? {
                    copy::join_abs(&dest, name)
                } else {
                    dest.clone()
                };
                (
                    vec![CopyEntry {
                        dest: target,
                        source: CopySource::Bytes {
                            content: content.clone(),
                            mode: 0o644,
                        },
                    }],
                    false,
                )
            }
            Src::Host(m, _) if m.is_dir => (copy::dir_entries(&tree, m, &dest)?, true),
            Src::Host(m, extract) => {
                if *extract && copy::is_archive(&m.host) {
                    (
                        vec![CopyEntry {
                            dest: dest.clone(),
                            source: CopySource::Archive(m.host.clone()),
                        }],
                        false,
                    )
                } else {
                    let target = if dir_like || dest_is_dir(shared, state, &dest, single)? {
                        copy::join_abs(&dest, &m.name)
                    } else {
                        dest.clone()
                    };
                    (
                        vec![CopyEntry {
                            dest: target,
                            source: copy::host_source(&m.host)?,
                        }],
                        false,
                    )
                }
            }
        };
        per_source.push((is_dir, copy::digest_entries(&mine)?));
        entries.extend(mine);
    }
    let hash = copy::source_hash(&per_source);
    let chown_comment = chown
        .as_deref()
        .map(|c| format!("--chown={c}"))
        .unwrap_or_default();
    let mut created_by = shell_of(&state.config);
    created_by.push(format!(
        "#(nop) {cmd} {chown_comment}{hash} in {dest_written} "
    ));
    let created_by = created_by.join(" ");
    let mut config = state.config.clone();
    config.image = state.image.clone().unwrap_or_default();
    let commit = StepCommit {
        parent: state.image.clone(),
        config,
        created_by,
        author: state.author.clone(),
    };
    let mut extra: Vec<String> = per_source.iter().map(|(_, h)| h.clone()).collect();
    extra.push(format!(
        "chmod={chmod:?} chown={chown:?} link={} from={from_id:?}",
        c.link
    ));
    let request = CopyRequest {
        commit: commit.clone(),
        entries,
        chown,
        chmod,
        preserve_owner: from_id.is_some(),
        link: c.link,
    };
    let result = finish_step(shared, state, commit, &extra, sink, |_, _| {
        shared.backend.copy(&request)
    });
    drop(mounted);
    drop(temps);
    result
}

/// COPY's rule for a single file: an existing directory as destination takes it inside.
fn dest_is_dir(
    shared: &Shared<'_>,
    state: &StageState,
    dest: &str,
    single: bool,
) -> Result<bool, BuildError> {
    if !single {
        return Ok(true);
    }
    match &state.image {
        Some(id) => Ok(shared.backend.path_is_dir(id, dest)?),
        None => Ok(false),
    }
}

/// ADD of a URL: download into the scratch directory, verify `--checksum`.
fn fetch(
    shared: &Shared<'_>,
    url: &str,
    checksum: Option<&str>,
    temps: &mut TempFiles,
    line: usize,
) -> Result<copy::Matched, BuildError> {
    let name = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !n.contains(':'))
        .unwrap_or("download")
        .to_string();
    let dir = shared.opts.scratch_dir.join(format!(
        "add-{}",
        &cache_key(
            None,
            url,
            &ContainerConfig::default(),
            &[format!("{:?}", std::thread::current().id())]
        )[..16]
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| BuildError::InvalidInput(format!("{}: {e}", dir.display())))?;
    let path = dir.join(&name);
    temps.0.push(path.clone());
    shared.backend.fetch_url(url, &path)?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    if let Some(want) = checksum {
        let data = std::fs::read(&path)
            .map_err(|e| BuildError::InvalidInput(format!("{}: {e}", path.display())))?;
        use sha2::Digest;
        let got = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&data)));
        if !want.starts_with("sha256:") {
            return Err(step_err(
                line,
                format!("unsupported digest algorithm in {want}"),
            ));
        }
        if got != want {
            return Err(BuildError::Step {
                message: format!("digest mismatch {got}: {want}"),
                exit_code: None,
            });
        }
    }
    Ok(copy::Matched {
        host: path,
        rel: name.clone(),
        name,
        is_dir: false,
    })
}
