//! The stage graph of a multi-stage Dockerfile: which earlier stage a `FROM name`, a
//! `COPY --from=name|index` or a `RUN --mount=from=…` refers to (anything else is an image),
//! the stages the target needs, and an order in levels: every stage of a level depends only on
//! stages of earlier levels, so the stages of one level can be built in parallel.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::{Dockerfile, Instruction};
use crate::error::BuildError;
use crate::shell::{self, Lookup};

/// What a `FROM` or `--from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (or `scratch`).
    Image(String),
}

/// Resolves a name as seen from stage `current`: an earlier stage's name (case-insensitive) or
/// index, else an image.
pub fn resolve_ref(df: &Dockerfile, name: &str, current: usize) -> Result<SourceRef, BuildError> {
    let lower = name.to_ascii_lowercase();
    if let Some(stage) = df.stages[..current.min(df.stages.len())]
        .iter()
        .find(|s| s.name() == Some(lower.as_str()))
    {
        return Ok(SourceRef::Stage(stage.index));
    }
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) {
        let idx: usize = name
            .parse()
            .map_err(|_| BuildError::InvalidInput(format!("invalid stage index {name}")))?;
        if idx >= current {
            return Err(BuildError::InvalidInput(format!(
                "invalid from flag value {name}: refers to current or future build stage"
            )));
        }
        return Ok(SourceRef::Stage(idx));
    }
    Ok(SourceRef::Image(name.to_string()))
}

/// The stages to build and their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// The index of the target stage (the last one unless `--target` names another).
    pub target: usize,
    /// Direct dependencies of every needed stage (stage indexes).
    pub deps: BTreeMap<usize, BTreeSet<usize>>,
    /// The needed stages grouped in levels, each level only depending on earlier ones.
    pub levels: Vec<Vec<usize>>,
}

impl StagePlan {
    /// All needed stages in a valid sequential order.
    pub fn order(&self) -> Vec<usize> {
        self.levels.iter().flatten().copied().collect()
    }
}

/// Plans the build of `target` (a stage name) or of the last stage. `meta` expands `FROM` and
/// `--from` values (the ARGs before the first FROM, with build args applied).
pub fn plan(
    df: &Dockerfile,
    target: Option<&str>,
    meta: &dyn Lookup,
) -> Result<StagePlan, BuildError> {
    let escape = df.directives.escape;
    let target = match target.filter(|t| !t.is_empty()) {
        None => df.stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            df.stages
                .iter()
                .find(|s| s.name() == Some(lower.as_str()))
                .map(|s| s.index)
                .ok_or_else(|| {
                    BuildError::InvalidInput(format!(
                        "failed to reach build target {t} in Dockerfile"
                    ))
                })?
        }
    };
    let expand =
        |s: &str| shell::process_word(s, meta, escape).map_err(|e| BuildError::InvalidInput(e.0));
    let mut all_deps: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for stage in &df.stages[..=target] {
        let mut deps = BTreeSet::new();
        let mut add = |name: &str| -> Result<(), BuildError> {
            if let SourceRef::Stage(i) = resolve_ref(df, name, stage.index)? {
                deps.insert(i);
            }
            Ok(())
        };
        add(&expand(&stage.from.image)?)?;
        for step in &stage.steps {
            match &step.instruction {
                Instruction::Copy(c) => {
                    if let Some(from) = &c.from {
                        add(&expand(from)?)?;
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        if let Some(from) = crate::mounts::mount_from(m) {
                            add(&expand(&from)?)?;
                        }
                    }
                }
                _ => {}
            }
        }
        all_deps.insert(stage.index, deps);
    }
    // The stages the target needs.
    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if needed.insert(s) {
            todo.extend(all_deps[&s].iter().copied());
        }
    }
    let deps: BTreeMap<usize, BTreeSet<usize>> = all_deps
        .into_iter()
        .filter(|(k, _)| needed.contains(k))
        .collect();
    // Levels: dependencies always point to earlier stages, so one pass in index order works.
    let mut level_of: BTreeMap<usize, usize> = BTreeMap::new();
    for (&s, ds) in &deps {
        let level = ds.iter().map(|d| level_of[d] + 1).max().unwrap_or(0);
        level_of.insert(s, level);
    }
    let depth = level_of.values().max().map_or(0, |m| m + 1);
    let mut levels = vec![Vec::new(); depth];
    for (s, l) in level_of {
        levels[l].push(s);
    }
    Ok(StagePlan {
        target,
        deps,
        levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn meta() -> BTreeMap<String, String> {
        [("BASE".to_string(), "builder".to_string())]
            .into_iter()
            .collect()
    }

    const MULTI: &str = "\
FROM busybox AS base
RUN echo base
FROM base AS a
RUN echo a
FROM busybox AS b
RUN echo b
FROM scratch AS unused
COPY --from=a /x /x
FROM ${BASE:-busybox} AS final
COPY --from=a /a /a
COPY --from=1 /a /a2
COPY --from=B /b /b
COPY --from=alpine:3 /etc/os-release /
RUN --mount=type=bind,from=base,target=/m true
";

    #[test]
    fn levels_and_pruning() {
        let df = parse(MULTI).unwrap();
        let p = plan(&df, None, &BTreeMap::new()).unwrap();
        assert_eq!(p.target, 4);
        assert_eq!(p.levels, vec![vec![0, 2], vec![1], vec![4]]);
        assert_eq!(p.deps[&4], [0, 1, 2].into_iter().collect());
        assert!(!p.deps.contains_key(&3), "unused stage is not built");
        assert_eq!(p.order(), vec![0, 2, 1, 4]);
    }

    #[test]
    fn target_selects_subgraph() {
        let df = parse(MULTI).unwrap();
        let p = plan(&df, Some("A"), &BTreeMap::new()).unwrap();
        assert_eq!(p.target, 1);
        assert_eq!(p.levels, vec![vec![0], vec![1]]);
        let p = plan(&df, Some("unused"), &BTreeMap::new()).unwrap();
        assert_eq!(p.levels, vec![vec![0], vec![1], vec![3]]);
        let e = plan(&df, Some("nope"), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to reach build target nope in Dockerfile"
        );
    }

    #[test]
    fn refs() {
        let df = parse(MULTI).unwrap();
        assert_eq!(resolve_ref(&df, "a", 4).unwrap(), SourceRef::Stage(1));
        assert_eq!(resolve_ref(&df, "0", 4).unwrap(), SourceRef::Stage(0));
        assert_eq!(
            resolve_ref(&df, "final", 2).unwrap(),
            SourceRef::Image("final".into()),
            "only earlier stages are stages"
        );
        assert!(resolve_ref(&df, "4", 4).is_err());
        // FROM expands meta args: ${BASE} names no stage here, so it is an image.
        let df2 = parse("FROM busybox AS builder\nFROM ${BASE}\n").unwrap();
        let p = plan(&df2, None, &meta()).unwrap();
        assert_eq!(p.levels, vec![vec![0], vec![1]]);
    }
}
