//! The build driver: runs a Dockerfile over a [`BuildBackend`] the way dockerd's classic
//! builder does. It parses, plans the stages the target needs, builds them level by level
//! (the stages of one level in parallel threads when [`BuildOptions::parallel`] is set),
//! computes every step's image config, history entry and cache key, and reports progress as
//! the classic builder's messages (`Step 1/7 : FROM busybox`, ` ---> Using cache`, …).

mod args;
pub mod copy;
mod copy_step;
mod run_step;
mod stage;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::backend::BuildBackend;
use crate::dockerfile::{self, Dockerfile, Instruction, KeyValue, Step};
use crate::error::BuildError;
use crate::ignore::IgnoreMatcher;
use crate::stages;

pub use args::BUILTIN_ARGS;

/// What to build and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context on the host (an extracted directory).
    pub context_dir: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// The Dockerfile's path relative to the context (default `Dockerfile`): where
    /// `NAME.Dockerfile.dockerignore` is looked for.
    pub dockerfile_path: PathBuf,
    /// `-t`: references to tag the result with.
    pub tags: Vec<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--label`: added to the final image as a last `LABEL` step.
    pub labels: BTreeMap<String, String>,
    /// `--target`: the stage to build (by name).
    pub target: Option<String>,
    /// `--no-cache`: look nothing up (results are still stored).
    pub no_cache: bool,
    /// `--pull`: pull base images even when present.
    pub pull: bool,
    /// `--platform`: default platform of FROM.
    pub platform: Option<String>,
    /// `--secret id=ID,src=PATH`: secret id → file.
    pub secrets: BTreeMap<String, PathBuf>,
    /// A directory for temporary files (ADD downloads); created if missing.
    pub scratch_dir: PathBuf,
    /// Build independent stages on parallel threads.
    pub parallel: bool,
}

/// A progress message, as the classic builder streams them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Text for the `stream` field (lines end in `\n`; command output comes as it is).
    Stream(String),
    /// The `aux` message with the built image's id (`{"ID": "sha256:…"}`).
    Aux { id: String },
}

/// The result of a successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// `sha256:<hex>` of the final image.
    pub image_id: String,
    /// The references tagged (normalised, e.g. `name:latest`).
    pub tags: Vec<String>,
    /// Steps executed by the backend (run, copy, commit).
    pub executed: usize,
    /// Steps answered from the cache.
    pub cached: usize,
}

/// The image a stage ended with.
#[derive(Debug, Clone, Default)]
struct StageResult {
    image: Option<String>,
    config: berth_api::ContainerConfig,
}

/// What every stage runner shares.
struct Shared<'a> {
    backend: &'a dyn BuildBackend,
    opts: &'a BuildOptions,
    df: Dockerfile,
    meta: BTreeMap<String, String>,
    matcher: IgnoreMatcher,
    results: Mutex<BTreeMap<usize, StageResult>>,
    /// Every ARG name declared by a built stage or before FROM (for the unused-args warning).
    consumed: Mutex<BTreeSet<String>>,
    counts: Mutex<(usize, usize)>,
    /// Number of the first step (the FROM) of every stage.
    first_step: BTreeMap<usize, usize>,
    total_steps: usize,
}

/// Builds `opts` over `backend`, reporting through `progress`.
pub fn build(
    backend: &dyn BuildBackend,
    opts: &BuildOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<BuildResult, BuildError> {
    let mut df = dockerfile::parse(&opts.dockerfile)?;
    let escape = df.directives.escape;
    let meta = args::meta_values(&df.meta_args, &opts.build_args, escape)?;
    let plan = stages::plan(&df, opts.target.as_deref(), &meta)?;
    if !opts.labels.is_empty() {
        df.stages[plan.target].steps.push(label_step(&opts.labels));
    }
    let dockerfile_path = if opts.dockerfile_path.as_os_str().is_empty() {
        PathBuf::from("Dockerfile")
    } else {
        opts.dockerfile_path.clone()
    };
    let matcher = crate::ignore::load(&opts.context_dir, Some(&dockerfile_path))
        .map_err(|e| BuildError::InvalidInput(e.to_string()))?;
    let mut first_step = BTreeMap::new();
    let mut total_steps = 0;
    for idx in plan.deps.keys() {
        first_step.insert(*idx, total_steps + 1);
        total_steps += 1 + df.stages[*idx].steps.len();
    }
    let consumed: BTreeSet<String> = df.meta_args.iter().map(|a| a.name.clone()).collect();
    let shared = Shared {
        backend,
        opts,
        df,
        meta,
        matcher,
        results: Mutex::new(BTreeMap::new()),
        consumed: Mutex::new(consumed),
        counts: Mutex::new((0, 0)),
        first_step,
        total_steps,
    };
    for level in &plan.levels {
        if opts.parallel && level.len() > 1 {
            run_level_parallel(&shared, level, progress)?;
        } else {
            for &idx in level {
                let mut sink = |p: Progress| progress(p);
                let result = stage::run_stage(&shared, idx, &mut sink)?;
                lock(&shared.results).insert(idx, result);
            }
        }
    }
    let final_image = lock(&shared.results)
        .get(&plan.target)
        .and_then(|r| r.image.clone())
        .ok_or_else(|| {
            BuildError::InvalidInput("No image was generated. Is your Dockerfile empty?".into())
        })?;
    let unused: Vec<String> = {
        let consumed = lock(&shared.consumed);
        opts.build_args
            .keys()
            .filter(|k| !consumed.contains(*k) && !args::is_builtin(k))
            .cloned()
            .collect()
    };
    if !unused.is_empty() {
        progress(Progress::Stream(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            unused.join(" ")
        )));
    }
    progress(Progress::Aux {
        id: final_image.clone(),
    });
    progress(Progress::Stream(format!(
        "Successfully built {}\n",
        short_id(&final_image)
    )));
    let mut tags = Vec::new();
    for t in &opts.tags {
        let reference = normalize_tag(t);
        backend.tag(&final_image, &reference)?;
        progress(Progress::Stream(format!(
            "Successfully tagged {reference}\n"
        )));
        tags.push(reference);
    }
    let (executed, cached) = *lock(&shared.counts);
    Ok(BuildResult {
        image_id: final_image,
        tags,
        executed,
        cached,
    })
}

/// Builds the stages of one level on threads; their messages are buffered per stage and
/// released in stage order, so the output stays readable.
fn run_level_parallel(
    shared: &Shared<'_>,
    level: &[usize],
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(), BuildError> {
    let outcomes: Vec<(usize, Vec<Progress>, Result<StageResult, BuildError>)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = level
                .iter()
                .map(|&idx| {
                    scope.spawn(move || {
                        let mut buffered = Vec::new();
                        let mut sink = |p: Progress| buffered.push(p);
                        let result = stage::run_stage(shared, idx, &mut sink);
                        (idx, buffered, result)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(v) => v,
                    Err(_) => (
                        usize::MAX,
                        Vec::new(),
                        Err(BuildError::InvalidInput("build stage panicked".into())),
                    ),
                })
                .collect()
        });
    let mut first_error = None;
    for (idx, messages, result) in outcomes {
        for m in messages {
            progress(m);
        }
        match result {
            Ok(r) => {
                lock(&shared.results).insert(idx, r);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `LABEL` step dockerd appends for `--label` (sorted keys, single-quoted values so that
/// nothing is expanded).
fn label_step(labels: &BTreeMap<String, String>) -> Step {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}='{v}'", crate::gofmt::quote(k)))
        .collect();
    Step {
        line: 0,
        original: format!("LABEL {}", pairs.join(" ")),
        instruction: Instruction::Label(
            labels
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: format!("'{v}'"),
                })
                .collect(),
        ),
    }
}

/// `name` → `name:latest` (a tag or digest already present is kept).
pub fn normalize_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains('@') || last.contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

/// The 12-character short form of an id (`sha256:` removed).
pub use berth_sys::ids::short_id;

/// The cache key of a step: the parent image, the history text, the resulting config and the
/// step's extra inputs (build args, content digests, mounts).
pub fn cache_key(
    parent: Option<&str>,
    created_by: &str,
    config: &berth_api::ContainerConfig,
    extra: &[String],
) -> String {
    let value = serde_json::json!({
        "parent": parent.unwrap_or(""),
        "created_by": created_by,
        "config": config,
        "extra": extra,
    });
    let mut h = Sha256::new();
    h.update(value.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_ids() {
        assert_eq!(normalize_tag("app"), "app:latest");
        assert_eq!(normalize_tag("app:v1"), "app:v1");
        assert_eq!(
            normalize_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(normalize_tag("a@sha256:00"), "a@sha256:00");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn cache_keys_cover_inputs() {
        let c = berth_api::ContainerConfig::default();
        let k = cache_key(Some("sha256:a"), "x", &c, &[]);
        assert_eq!(k, cache_key(Some("sha256:a"), "x", &c, &[]));
        assert_ne!(k, cache_key(Some("sha256:b"), "x", &c, &[]));
        assert_ne!(k, cache_key(Some("sha256:a"), "y", &c, &[]));
        assert_ne!(k, cache_key(Some("sha256:a"), "x", &c, &["A=1".into()]));
    }
}
