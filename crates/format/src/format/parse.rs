//! The template parser: splits the source into text and `{{...}}` actions (with trim
//! markers), tokenizes actions, and builds the node tree (pipes, commands, `range`/`if`/`with`
//! blocks) that `eval` walks.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

#[derive(Debug, Clone)]
pub(super) enum Term {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Lit(Value),
    Ident(String),
    Sub(Pipe),
}

pub(super) type Cmd = Vec<Term>;

#[derive(Debug, Clone, Default)]
pub(super) struct Pipe {
    pub(super) decl: Vec<String>,
    pub(super) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    Range(Pipe, Vec<Node>, Vec<Node>),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// Parses template source into its node tree.
pub(super) fn parse(src: &str) -> Result<Vec<Node>> {
    let segs = split_segments(src)?;
    let mut pos = 0;
    let (nodes, _) =
        parse_nodes(&segs, &mut pos, false).map_err(|e| anyhow!("template parsing error: {e}"))?;
    Ok(nodes)
}

enum Seg {
    Text(String),
    Action(String),
}

fn split_segments(src: &str) -> Result<Vec<Seg>> {
    let mut segs = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next_text {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let end = find_action_end(after).ok_or_else(|| anyhow!("template: unclosed action"))?;
        let mut inner = &after[..end];
        if inner.starts_with("- ") || inner == "-" {
            text = text.trim_end().to_string();
            inner = &inner[1..];
        }
        trim_next_text = false;
        if inner.ends_with(" -") {
            trim_next_text = true;
            inner = &inner[..inner.len() - 1];
        }
        if !text.is_empty() {
            segs.push(Seg::Text(text));
        }
        segs.push(Seg::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next_text {
        text = text.trim_start().to_string();
    }
    if !text.is_empty() {
        segs.push(Seg::Text(text));
    }
    Ok(segs)
}

/// Finds the closing `}}` of an action, skipping string literals.
fn find_action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if i + 1 < b.len() && b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(String),
    Ident(String),
    Pipe,
    LParen,
    RParen,
    Assign,
    Comma,
}

fn field_path(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.to_string())
        .collect()
}

fn tokenize(s: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            toks.push(Tok::Pipe);
            i += 1;
        } else if c == '(' {
            toks.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            toks.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            toks.push(Tok::Comma);
            i += 1;
        } else if c == ':' && chars.get(i + 1) == Some(&'=') {
            toks.push(Tok::Assign);
            i += 2;
        } else if c == '=' {
            toks.push(Tok::Assign);
            i += 1;
        } else if c == '"' {
            let mut out = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    out.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        c => c,
                    });
                } else {
                    out.push(chars[i]);
                }
                i += 1;
            }
            if i >= chars.len() {
                bail!("template: unterminated quoted string");
            }
            i += 1;
            toks.push(Tok::Str(out));
        } else if c == '`' {
            let mut out = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '`' {
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            toks.push(Tok::Str(out));
        } else if c == '.' {
            let start = i;
            i += 1;
            while i < chars.len() && word_char(chars[i]) {
                i += 1;
            }
            let w: String = chars[start..i].iter().collect();
            toks.push(Tok::Field(field_path(&w)));
        } else if c == '$' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let fstart = i;
            while i < chars.len() && word_char(chars[i]) {
                i += 1;
            }
            let path: String = chars[fstart..i].iter().collect();
            toks.push(Tok::Var(name, field_path(&path)));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            bail!("template: unexpected {c:?} in command");
        }
    }
    Ok(toks)
}

fn parse_pipe(toks: &[Tok]) -> Result<Pipe> {
    let mut pos = 0;
    let mut decl = Vec::new();
    // variable declarations: $a := / $k, $v :=
    if toks.contains(&Tok::Assign) {
        while pos < toks.len() {
            match &toks[pos] {
                Tok::Var(n, p) if p.is_empty() => decl.push(n.clone()),
                Tok::Comma => {}
                Tok::Assign => {
                    pos += 1;
                    break;
                }
                _ => bail!("template: bad variable declaration"),
            }
            pos += 1;
        }
    }
    let (p, used) = parse_cmds(&toks[pos..])?;
    if pos + used != toks.len() {
        bail!("template: unexpected token in command");
    }
    Ok(Pipe { decl, cmds: p })
}

/// Parses commands separated by `|` until the end or an unmatched `)`.
fn parse_cmds(toks: &[Tok]) -> Result<(Vec<Cmd>, usize)> {
    let mut cmds = Vec::new();
    let mut cur: Cmd = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if cur.is_empty() {
                    bail!("template: missing command");
                }
                cmds.push(std::mem::take(&mut cur));
            }
            Tok::RParen => break,
            Tok::LParen => {
                let (sub, used) = parse_cmds(&toks[i + 1..])?;
                i += used + 1;
                if toks.get(i) != Some(&Tok::RParen) {
                    bail!("template: unclosed left paren");
                }
                cur.push(Term::Sub(Pipe {
                    decl: Vec::new(),
                    cmds: sub,
                }));
            }
            Tok::Field(p) => cur.push(Term::Field(p.clone())),
            Tok::Var(n, p) => cur.push(Term::Var(n.clone(), p.clone())),
            Tok::Str(s) => cur.push(Term::Str(s.clone())),
            Tok::Num(n) => cur.push(Term::Lit(
                serde_json::from_str(n).map_err(|_| anyhow!("template: bad number {n}"))?,
            )),
            Tok::Ident(id) => match id.as_str() {
                "true" => cur.push(Term::Lit(Value::Bool(true))),
                "false" => cur.push(Term::Lit(Value::Bool(false))),
                "nil" => cur.push(Term::Lit(Value::Null)),
                _ => cur.push(Term::Ident(id.clone())),
            },
            Tok::Assign | Tok::Comma => bail!("template: unexpected token"),
        }
        i += 1;
    }
    if cur.is_empty() {
        bail!("template: missing value for command");
    }
    cmds.push(cur);
    Ok((cmds, i))
}

fn keyword(action: &str) -> (&str, &str) {
    let (first, rest) = action
        .split_once(char::is_whitespace)
        .unwrap_or((action, ""));
    match first {
        "range" | "if" | "with" | "else" | "end" => (first, rest.trim()),
        _ => ("", action),
    }
}

fn parse_nodes(segs: &[Seg], pos: &mut usize, nested: bool) -> Result<(Vec<Node>, &'static str)> {
    let mut nodes = Vec::new();
    while *pos < segs.len() {
        let seg = &segs[*pos];
        *pos += 1;
        match seg {
            Seg::Text(t) => nodes.push(Node::Text(t.clone())),
            Seg::Action(a) => {
                if a.starts_with("/*") {
                    continue;
                }
                let (kw, rest) = keyword(a);
                match kw {
                    "end" if nested => return Ok((nodes, "end")),
                    "else" if nested => return Ok((nodes, "else")),
                    "end" | "else" => bail!("template: unexpected {{{{{kw}}}}}"),
                    "range" | "if" | "with" => {
                        let pipe = parse_pipe(&tokenize(rest)?)?;
                        let (body, term) = parse_nodes(segs, pos, true)?;
                        let els = if term == "else" {
                            let (e, t2) = parse_nodes(segs, pos, true)?;
                            if t2 != "end" {
                                bail!("template: expected end");
                            }
                            e
                        } else {
                            Vec::new()
                        };
                        nodes.push(match kw {
                            "range" => Node::Range(pipe, body, els),
                            "if" => Node::If(pipe, body, els),
                            _ => Node::With(pipe, body, els),
                        });
                    }
                    _ => nodes.push(Node::Action(parse_pipe(&tokenize(rest)?)?)),
                }
            }
        }
    }
    if nested {
        bail!("template: unexpected EOF");
    }
    Ok((nodes, ""))
}
