//! Build arguments with Docker's scoping: the ARGs before the first FROM (meta args) are seen
//! only by FROM lines unless a stage re-declares them; a stage sees the ARGs it declared (build
//! args override their defaults); the predefined proxy args are allowed without declaration but
//! are kept out of history unless declared; ENV wins over ARG in expansions.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::ArgDecl;
use crate::error::BuildError;
use crate::shell;

/// The args Docker allows without an ARG line.
pub const BUILTIN_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub fn is_builtin(name: &str) -> bool {
    BUILTIN_ARGS.contains(&name)
}

/// The meta args with their values: build args override defaults; defaults may refer to
/// earlier meta args.
pub fn meta_values(
    decls: &[ArgDecl],
    build_args: &BTreeMap<String, String>,
    escape: char,
) -> Result<BTreeMap<String, String>, BuildError> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for d in decls {
        let value = match (build_args.get(&d.name), &d.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(def)) => Some(
                shell::process_word(def, &values, escape)
                    .map_err(|e| BuildError::InvalidInput(e.0))?,
            ),
            (None, None) => None,
        };
        match value {
            Some(v) => {
                values.insert(d.name.clone(), v);
            }
            None => {
                values.remove(&d.name);
            }
        }
    }
    Ok(values)
}

/// The ARG state of one stage.
#[derive(Debug, Clone, Default)]
pub struct StageArgs {
    /// Declared args in declaration order with their values (`None`: declared without value).
    declared: Vec<(String, Option<String>)>,
}

impl StageArgs {
    /// Declares an arg: `value` is the expanded default (if any). Build args win, then the
    /// default, then the meta arg of the same name.
    pub fn declare(
        &mut self,
        name: &str,
        default: Option<String>,
        build_args: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) {
        let value = build_args
            .get(name)
            .cloned()
            .or(default)
            .or_else(|| meta.get(name).cloned());
        self.declared.retain(|(n, _)| n != name);
        self.declared.push((name.to_string(), value));
    }

    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.iter().any(|(n, _)| n == name)
    }

    /// The args with values, plus builtin args given as build args (`KEY=value`, sorted by
    /// key), minus those the image Env sets.
    pub fn in_effect(
        &self,
        build_args: &BTreeMap<String, String>,
        env: &[String],
    ) -> BTreeMap<String, String> {
        let env_keys: BTreeSet<&str> = env
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
            .collect();
        let mut out = BTreeMap::new();
        for (name, value) in &self.declared {
            if let Some(v) = value {
                out.insert(name.clone(), v.clone());
            }
        }
        for (k, v) in build_args {
            if is_builtin(k) && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        out.retain(|k, _| !env_keys.contains(k.as_str()));
        out
    }

    /// The variables an expansion sees: args with values, then the Env (which wins).
    pub fn lookup_vars(&self, env: &[String]) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .declared
            .iter()
            .filter_map(|(n, v)| v.clone().map(|v| (n.clone(), v)))
            .collect();
        vars.extend(env.iter().map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        }));
        vars
    }
}

/// The `|N K=V …` prefix of a RUN's history (`prependEnvOnCmd`): the args in effect, without
/// the undeclared builtin ones.
pub fn history_prefix(
    args: &StageArgs,
    in_effect: &BTreeMap<String, String>,
) -> Option<Vec<String>> {
    if in_effect.is_empty() {
        return None;
    }
    let kept: Vec<String> = in_effect
        .iter()
        .filter(|(k, _)| !is_builtin(k) || args.is_declared(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut out = vec![format!("|{}", kept.len())];
    out.extend(kept);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn meta_args_defaults_and_overrides() {
        let decls = vec![
            ArgDecl {
                name: "V".into(),
                default: Some("1".into()),
            },
            ArgDecl {
                name: "IMG".into(),
                default: Some("busybox:$V".into()),
            },
            ArgDecl {
                name: "NONE".into(),
                default: None,
            },
        ];
        let m = meta_values(&decls, &BTreeMap::new(), '\\').unwrap();
        assert_eq!(m, map(&[("IMG", "busybox:1"), ("V", "1")]));
        let m = meta_values(&decls, &map(&[("V", "2"), ("NONE", "x")]), '\\').unwrap();
        assert_eq!(m, map(&[("IMG", "busybox:2"), ("NONE", "x"), ("V", "2")]));
    }

    #[test]
    fn stage_scope_and_precedence() {
        let meta = map(&[("V", "meta")]);
        let build = map(&[("B", "from-cli"), ("HTTP_PROXY", "http://p")]);
        let mut a = StageArgs::default();
        assert!(a.in_effect(&build, &[]).contains_key("HTTP_PROXY"));
        a.declare("V", None, &build, &meta);
        a.declare("B", Some("default".into()), &build, &meta);
        a.declare("C", None, &build, &meta);
        let eff = a.in_effect(&build, &["B=env".into()]);
        assert_eq!(eff, map(&[("HTTP_PROXY", "http://p"), ("V", "meta")]));
        let vars = a.lookup_vars(&["B=env".into()]);
        assert_eq!(
            shell::process_word("$B $V", &vars, '\\').unwrap(),
            "env meta"
        );
        let prefix = history_prefix(&a, &eff).unwrap();
        assert_eq!(
            prefix,
            vec!["|1", "V=meta"],
            "undeclared proxy args stay out of history"
        );
    }
}
