//! The line layer of the Dockerfile parser (BuildKit's `parser.Parse`): parser directives at the
//! top (`# syntax=`, `# escape=`, `# check=`), comments, line continuations with the escape
//! character (comment and empty lines inside a continuation are skipped), and heredoc bodies
//! (`<<EOF`, `<<-EOF`, quoted delimiters) collected after the line that opens them.

use crate::dockerfile::{Directives, Heredoc};
use crate::error::ParseError;

/// One logical line: an instruction with its continuation lines joined and its heredocs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based line of the instruction's first line.
    pub start_line: usize,
    /// 1-based last line (including heredoc bodies).
    pub end_line: usize,
    /// The joined text, continuation characters removed, leading whitespace trimmed.
    pub text: String,
    pub heredocs: Vec<Heredoc>,
}

/// Splits a Dockerfile into directives and logical lines.
pub fn split(source: &str) -> Result<(Directives, Vec<LogicalLine>), ParseError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines: Vec<&str> = source.lines().collect();
    let mut directives = Directives::default();
    let mut idx = 0;
    // Directives: only at the very top, each once; any other line ends them.
    let mut seen = std::collections::BTreeSet::new();
    while idx < lines.len() {
        let Some((key, value)) = parse_directive(lines[idx]) else {
            break;
        };
        if !seen.insert(key.clone()) {
            return Err(ParseError::at(
                idx + 1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => {
                if value != "`" && value != "\\" {
                    return Err(ParseError::at(
                        idx + 1,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ));
                }
                directives.escape = value.chars().next().unwrap_or('\\');
            }
            "syntax" => directives.syntax = Some(value),
            _ => directives.check = Some(value),
        }
        idx += 1;
    }
    let escape = directives.escape;
    let mut out = Vec::new();
    while idx < lines.len() {
        let raw = lines[idx];
        idx += 1;
        let start_line = idx;
        let trimmed = raw.trim_start();
        if is_comment(trimmed) {
            continue;
        }
        let (first, mut complete) = trim_continuation(trimmed, escape);
        if complete && first.trim().is_empty() {
            continue;
        }
        let mut text = first.to_string();
        while !complete && idx < lines.len() {
            let next = lines[idx];
            idx += 1;
            if is_comment(next.trim_start()) || next.trim().is_empty() {
                continue;
            }
            let (part, done) = trim_continuation(next, escape);
            text.push_str(part);
            complete = done;
        }
        let mut line = LogicalLine {
            start_line,
            end_line: idx,
            text,
            heredocs: Vec::new(),
        };
        if can_have_heredoc(&line.text) {
            for mut heredoc in heredocs_in(&line.text, escape) {
                let mut terminated = false;
                while idx < lines.len() {
                    let body = lines[idx];
                    idx += 1;
                    let candidate = if heredoc.chomp {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    heredoc.content.push_str(body);
                    heredoc.content.push('\n');
                }
                if !terminated {
                    return Err(ParseError::at(start_line, "unterminated heredoc"));
                }
                if heredoc.chomp {
                    heredoc.content = chomp(&heredoc.content);
                }
                line.heredocs.push(heredoc);
            }
            line.end_line = idx;
        }
        out.push(line);
    }
    Ok((directives, out))
}

fn is_comment(trimmed: &str) -> bool {
    trimmed.starts_with('#')
}

/// `# key=value` with a known key (BuildKit's `reDirective` and `validDirectives`).
fn parse_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let key = &rest[..key_len];
    if key.is_empty() || !key.chars().next()?.is_ascii_alphabetic() {
        return None;
    }
    let value = rest[key_len..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    let key = key.to_ascii_lowercase();
    matches!(key.as_str(), "syntax" | "escape" | "check").then(|| (key, value.to_string()))
}

/// Strips a trailing escape character (followed only by blanks); returns whether the line is
/// complete (had none).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let stripped = line.trim_end_matches([' ', '\t']);
    match stripped.strip_suffix(escape) {
        Some(rest) => (rest, false),
        None => (line, true),
    }
}

/// RUN, COPY and ADD may open heredocs.
fn can_have_heredoc(text: &str) -> bool {
    let word = text.split_whitespace().next().unwrap_or("");
    matches!(word.to_ascii_lowercase().as_str(), "run" | "copy" | "add") && text.contains("<<")
}

/// Finds the heredoc openers of a line, in order: words of the form `[n]<<[-]NAME`, where NAME
/// may be quoted (which disables expansion of the body).
pub(crate) fn heredocs_in(text: &str, escape: char) -> Vec<Heredoc> {
    let mut out = Vec::new();
    for word in shell_like_words(text, escape) {
        let digits = word.chars().take_while(|c| c.is_ascii_digit()).count();
        let Some(rest) = word[digits..].strip_prefix("<<") else {
            continue;
        };
        let (chomp, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let quoted = rest.contains(['"', '\'']);
        let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
        if name.is_empty() {
            continue;
        }
        out.push(Heredoc {
            name,
            content: String::new(),
            expand: !quoted,
            chomp,
        });
    }
    out
}

/// Splits on unquoted whitespace keeping quotes (enough to find heredoc openers).
fn shell_like_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == escape => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `<<-`: leading tabs are removed from every body line.
fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}
