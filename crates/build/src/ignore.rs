//! `.dockerignore` with Docker's pattern rules (moby/patternmatcher): one pattern a line, `#`
//! comments, `!` exceptions, paths cleaned (`./a` → `a`, a leading `/` dropped), `*` and `?`
//! within one path element, `**` across any number of elements, `[...]` classes, `\` escapes; a
//! pattern also matches everything under a directory it matches; the last matching line wins.
//! `NAME.Dockerfile.dockerignore` next to the Dockerfile takes precedence over the context's
//! `.dockerignore`. [`kept_files`] lists the context paths a build sees.

use std::path::{Path, PathBuf};

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    tokens: Vec<Token>,
    exclusion: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    Question,
    /// `**/` in the middle: `(.*/)?`.
    AnyDirs,
    /// `**` at the end: `.*`.
    AnyAll,
    /// `[...]`: ranges, `^` negation.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A set of ignore patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

/// A bad pattern (e.g. an unclosed `[`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error parsing .dockerignore: {0}")]
pub struct PatternError(pub String);

impl IgnoreMatcher {
    /// Parses the contents of a `.dockerignore` file.
    pub fn parse(contents: &str) -> Result<Self, PatternError> {
        let lines: Vec<String> = contents
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        Self::from_patterns(&lines)
    }

    /// Compiles patterns (already read, without comments).
    pub fn from_patterns(lines: &[String]) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for raw in lines {
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(PatternError("illegal exclusion pattern: \"!\"".into()));
                }
            }
            let cleaned = clean_path(p);
            let cleaned = cleaned.trim_start_matches('/');
            if cleaned.is_empty() || cleaned == "." {
                // "/" or "." match the whole context.
                patterns.push(Pattern {
                    tokens: vec![Token::AnyAll],
                    exclusion,
                });
                continue;
            }
            patterns.push(Pattern {
                tokens: compile(cleaned)?,
                exclusion,
            });
        }
        Ok(IgnoreMatcher { patterns })
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded: the last pattern
    /// that matches it or one of its parent directories decides.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        let path = path.trim_start_matches('/');
        let parents: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = matches(&pattern.tokens, &path.chars().collect::<Vec<_>>());
            if !hit && parents.len() > 1 {
                for i in 1..parents.len() {
                    let parent = parents[..i].join("/");
                    if matches(&pattern.tokens, &parent.chars().collect::<Vec<_>>()) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether some exception (`!`) pattern exists: then excluded directories must still be
    /// walked, since files below them may be kept.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

/// `filepath.Clean` on `/`-separated paths.
pub fn clean_path(p: &str) -> String {
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn compile(pattern: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    tokens.push(Token::AnyAll);
                } else {
                    tokens.push(Token::AnyDirs);
                }
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Question),
            '\\' => match chars.get(i) {
                Some(n) => {
                    tokens.push(Token::Literal(*n));
                    i += 1;
                }
                None => tokens.push(Token::Literal('\\')),
            },
            '[' => {
                let mut negated = false;
                if matches!(chars.get(i), Some('^') | Some('!')) {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                let mut first = true;
                while i < chars.len() {
                    let mut lo = chars[i];
                    if lo == ']' && !first {
                        i += 1;
                        closed = true;
                        break;
                    }
                    first = false;
                    i += 1;
                    if lo == '\\' && i < chars.len() {
                        lo = chars[i];
                        i += 1;
                    }
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        hi = chars[i + 1];
                        i += 2;
                        if hi == '\\' && i < chars.len() {
                            hi = chars[i];
                            i += 1;
                        }
                    }
                    ranges.push((lo, hi));
                }
                if !closed {
                    return Err(PatternError(format!("syntax error in pattern: {pattern}")));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            other => tokens.push(Token::Literal(other)),
        }
    }
    Ok(tokens)
}

/// Backtracking match of the whole `text` (anchored at both ends).
fn matches(tokens: &[Token], text: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match first {
        Token::Literal(c) => text.first() == Some(c) && matches(rest, &text[1..]),
        Token::Question => text.first().is_some_and(|c| *c != '/') && matches(rest, &text[1..]),
        Token::Class { negated, ranges } => match text.first() {
            Some(c) if *c != '/' => {
                let inside = ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
                inside != *negated && matches(rest, &text[1..])
            }
            _ => false,
        },
        Token::Star => {
            let mut i = 0;
            loop {
                if matches(rest, &text[i..]) {
                    return true;
                }
                if i >= text.len() || text[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Token::AnyAll => (0..=text.len()).any(|i| matches(rest, &text[i..])),
        Token::AnyDirs => {
            // Zero directories, or any prefix ending in '/'.
            if matches(rest, text) {
                return true;
            }
            (0..text.len()).any(|i| text[i] == '/' && matches(rest, &text[i + 1..]))
        }
    }
}

/// `filepath.Match`-style matching of one path element against a COPY source pattern element
/// (`*`, `?`, `[...]`, `\` escapes). An invalid pattern matches nothing.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    compile(pattern).is_ok_and(|t| matches(&t, &name.chars().collect::<Vec<_>>()))
}

/// Reads the ignore file for a build: `<dockerfile>.dockerignore` next to the Dockerfile if it
/// exists, else `<context>/.dockerignore`, else no patterns.
pub fn load(context: &Path, dockerfile: Option<&Path>) -> Result<IgnoreMatcher, PatternError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(df) = dockerfile {
        let df = if df.is_absolute() {
            df.to_path_buf()
        } else {
            context.join(df)
        };
        if let Some(name) = df.file_name() {
            let mut n = name.to_os_string();
            n.push(".dockerignore");
            candidates.push(df.with_file_name(n));
        }
    }
    candidates.push(context.join(".dockerignore"));
    for c in candidates {
        match std::fs::read_to_string(&c) {
            Ok(text) => return IgnoreMatcher::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(PatternError(format!("{}: {e}", c.display()))),
        }
    }
    Ok(IgnoreMatcher::default())
}

/// What a context entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// A context path the build keeps (relative, `/`-separated), in sorted walk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub path: String,
    pub kind: EntryKind,
}

/// Walks `context` and returns the entries not excluded by `matcher`. Directories that are
/// excluded but hold re-included files are listed (they must exist for those files).
pub fn kept_files(context: &Path, matcher: &IgnoreMatcher) -> std::io::Result<Vec<ContextEntry>> {
    let mut out = Vec::new();
    walk(context, "", matcher, &mut out)?;
    Ok(out)
}

fn walk(
    root: &Path,
    rel: &str,
    matcher: &IgnoreMatcher,
    out: &mut Vec<ContextEntry>,
) -> std::io::Result<bool> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut any = false;
    for name in names {
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::symlink_metadata(root.join(&path))?;
        let excluded = matcher.is_excluded(&path);
        if meta.is_dir() {
            if excluded && !matcher.has_exceptions() {
                continue;
            }
            let pos = out.len();
            out.push(ContextEntry {
                path: path.clone(),
                kind: EntryKind::Dir,
            });
            let child_kept = walk(root, &path, matcher, out)?;
            if excluded && !child_kept {
                out.remove(pos);
            } else {
                any = true;
            }
        } else if !excluded {
            let kind = if meta.file_type().is_symlink() {
                EntryKind::Symlink
            } else {
                EntryKind::File
            };
            out.push(ContextEntry { path, kind });
            any = true;
        }
    }
    Ok(any)
}

#[cfg(test)]
mod tests;
