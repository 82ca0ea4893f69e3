//! A subset of Go's `text/template` as docker's `--format` uses it, evaluated on JSON values.
//!
//! Supported: literal text, `{{.A.B}}`, `{{.}}`, `{{json .X}}`, `{{index .M "k"}}`,
//! `{{.Label "k"}}` (method call: looks up the hidden `__Label` map), pipes (`|`),
//! `upper lower title join split len truncate pad printf print println eq ne not and or`,
//! `{{range}}`/`{{if}}`/`{{with}}` with `{{else}}` and `{{end}}`, variables (`$`, `$v`,
//! `range $k, $v := ...`), trim markers (`{{-`, `-}}`), and docker's `table` prefix.

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
enum Term {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Lit(Value),
    Ident(String),
    Sub(Pipe),
}

type Cmd = Vec<Term>;

#[derive(Debug, Clone, Default)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    Range(Pipe, Vec<Node>, Vec<Node>),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
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

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let segs = split_segments(src)?;
        let mut pos = 0;
        let (nodes, _) = parse_nodes(&segs, &mut pos, false)
            .map_err(|e| anyhow!("template parsing error: {e}"))?;
        Ok(Template { nodes })
    }

    /// Renders the template with `data` as dot.
    pub fn render(&self, data: &Value) -> Result<String> {
        let mut ev = Eval {
            vars: vec![("".to_string(), data.clone())],
            header: None,
        };
        let mut out = String::new();
        ev.nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }

    /// Renders the header row: every field evaluates to its header name.
    pub fn render_header(&self, headers: &Map<String, Value>) -> Result<String> {
        let mut ev = Eval {
            vars: vec![("".to_string(), Value::Null)],
            header: Some(headers),
        };
        let mut out = String::new();
        ev.nodes(&self.nodes, &Value::Null, &mut out)?;
        Ok(out)
    }
}

struct Eval<'a> {
    vars: Vec<(String, Value)>,
    header: Option<&'a Map<String, Value>>,
}

/// Go's `%v` for JSON-decoded values.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| !k.starts_with("__")).collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_print(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

fn print_opt(v: &Option<Value>) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => go_print(v),
    }
}

fn strip_hidden(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        v => v.clone(),
    }
}

fn truthy(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().map(|f| f != 0.0).unwrap_or(true),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

fn navigate(mut v: Option<Value>, path: &[String]) -> Option<Value> {
    for p in path {
        v = match v {
            Some(Value::Object(m)) => m.get(p).cloned(),
            _ => None,
        };
    }
    v
}

fn as_str(v: &Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => go_print(v),
        None => String::new(),
    }
}

impl Eval<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        out.push_str(&print_opt(&v));
                    }
                }
                Node::If(p, body, els) => {
                    let v = self.pipe(p, dot)?;
                    if truthy(&v) || self.header.is_some() {
                        self.nodes(body, dot, out)?;
                    } else {
                        self.nodes(els, dot, out)?;
                    }
                }
                Node::With(p, body, els) => {
                    let v = self.pipe(p, dot)?;
                    if truthy(&v) {
                        self.nodes(body, v.as_ref().unwrap_or(&Value::Null), out)?;
                    } else {
                        self.nodes(els, dot, out)?;
                    }
                }
                Node::Range(p, body, els) => {
                    let mut p2 = p.clone();
                    p2.decl.clear();
                    let v = self.pipe(&p2, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Some(Value::Array(a)) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::from(i), v))
                            .collect(),
                        Some(Value::Object(m)) => {
                            let mut keys: Vec<String> = m.keys().cloned().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| {
                                    let v = m[&k].clone();
                                    (Value::String(k), v)
                                })
                                .collect()
                        }
                        Some(Value::Number(n)) => (0..n.as_i64().unwrap_or(0))
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        _ => Vec::new(),
                    };
                    if items.is_empty() {
                        self.nodes(els, dot, out)?;
                    }
                    for (k, v) in items {
                        let saved = self.vars.len();
                        match p.decl.len() {
                            0 => {}
                            1 => self.vars.push((p.decl[0].clone(), v.clone())),
                            _ => {
                                self.vars.push((p.decl[0].clone(), k));
                                self.vars.push((p.decl[1].clone(), v.clone()));
                            }
                        }
                        self.nodes(body, &v, out)?;
                        self.vars.truncate(saved);
                    }
                }
            }
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Option<Value>> {
        let mut last: Option<Option<Value>> = None;
        for c in &p.cmds {
            last = Some(self.cmd(c, dot, last)?);
        }
        let v = last.unwrap_or(None);
        if let Some(name) = p.decl.first() {
            self.vars
                .push((name.clone(), v.clone().unwrap_or(Value::Null)));
        }
        Ok(v)
    }

    fn header_of(&self, name: &str) -> Option<Value> {
        let h = self.header?;
        Some(
            h.get(name)
                .cloned()
                .unwrap_or_else(|| Value::String(name.to_uppercase())),
        )
    }

    fn term(&mut self, t: &Term, dot: &Value) -> Result<Option<Value>> {
        Ok(match t {
            Term::Field(p) => {
                if self.header.is_some() {
                    return Ok(match p.last() {
                        Some(n) => self.header_of(n),
                        None => Some(Value::String(String::new())),
                    });
                }
                navigate(Some(dot.clone()), p)
            }
            Term::Var(n, p) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| anyhow!("template: undefined variable: ${n}"))?;
                navigate(Some(v), p)
            }
            Term::Str(s) => Some(Value::String(s.clone())),
            Term::Lit(v) => Some(v.clone()),
            Term::Sub(p) => self.pipe(p, dot)?,
            Term::Ident(id) => self.call(id, Vec::new())?,
        })
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, piped: Option<Option<Value>>) -> Result<Option<Value>> {
        match &c[0] {
            Term::Ident(name) => {
                let mut args = Vec::new();
                for t in &c[1..] {
                    args.push(self.term(t, dot)?);
                }
                if let Some(p) = piped {
                    args.push(p);
                }
                if self.header.is_some() {
                    // headers: the first field's header, whatever the function
                    return Ok(args
                        .into_iter()
                        .find(|a| matches!(a, Some(Value::String(_))))
                        .unwrap_or(None));
                }
                self.call(name, args)
            }
            Term::Field(path) if c.len() > 1 || (piped.is_some() && !path.is_empty()) => {
                // method call, e.g. {{.Label "com.example"}}
                let name = path.last().cloned().unwrap_or_default();
                if self.header.is_some() {
                    return Ok(self.header_of(&name));
                }
                let mut arg = None;
                if let Some(t) = c.get(1) {
                    arg = self.term(t, dot)?;
                } else if let Some(p) = piped {
                    arg = p;
                }
                let parent = navigate(Some(dot.clone()), &path[..path.len() - 1]);
                let map = navigate(parent, &[format!("__{name}")]);
                let key = as_str(&arg);
                Ok(match map {
                    Some(Value::Object(m)) => {
                        Some(m.get(&key).cloned().unwrap_or(Value::String(String::new())))
                    }
                    _ => bail!("template: can't call method/function \"{name}\""),
                })
            }
            t => {
                if c.len() > 1 {
                    bail!("template: can't give argument to non-function");
                }
                self.term(t, dot)
            }
        }
    }

    fn call(&mut self, name: &str, args: Vec<Option<Value>>) -> Result<Option<Value>> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(None);
        let s = |i: usize| as_str(&args.get(i).cloned().unwrap_or(None));
        let need = |n: usize| -> Result<()> {
            if args.len() < n {
                bail!(
                    "template: wrong number of args for {name}: want {n} got {}",
                    args.len()
                );
            }
            Ok(())
        };
        Ok(Some(match name {
            "json" => {
                need(1)?;
                let v = arg(0).map(|v| strip_hidden(&v)).unwrap_or(Value::Null);
                Value::String(serde_json::to_string(&v)?)
            }
            "upper" => Value::String(s(0).to_uppercase()),
            "lower" => Value::String(s(0).to_lowercase()),
            "title" => Value::String(
                s(0).split(' ')
                    .map(|w| {
                        let mut c = w.chars();
                        match c.next() {
                            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                            None => String::new(),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "split" => {
                need(2)?;
                Value::Array(
                    s(0).split(&s(1))
                        .map(|p| Value::String(p.to_string()))
                        .collect(),
                )
            }
            "join" => {
                need(2)?;
                match arg(0) {
                    Some(Value::Array(a)) => Value::String(
                        a.iter()
                            .map(|v| as_str(&Some(v.clone())))
                            .collect::<Vec<_>>()
                            .join(&s(1)),
                    ),
                    other => Value::String(as_str(&other)),
                }
            }
            "len" => {
                need(1)?;
                Value::from(match arg(0) {
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::Object(m)) => m.len(),
                    Some(Value::String(s)) => s.len(),
                    _ => bail!("template: len of invalid value"),
                })
            }
            "truncate" => {
                need(2)?;
                let n = arg(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
                Value::String(s(0).chars().take(n).collect())
            }
            "pad" => {
                need(3)?;
                let l = arg(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
                let r = arg(2).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
                Value::String(format!("{}{}{}", " ".repeat(l), s(0), " ".repeat(r)))
            }
            "index" => {
                need(1)?;
                let mut v = arg(0);
                for k in args.iter().skip(1) {
                    v = match (v, k) {
                        (Some(Value::Object(m)), Some(Value::String(k))) => m.get(k).cloned(),
                        (Some(Value::Array(a)), Some(Value::Number(n))) => {
                            let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                            match a.get(i) {
                                Some(v) => Some(v.clone()),
                                None => bail!("template: index out of range: {i}"),
                            }
                        }
                        _ => None,
                    };
                }
                return Ok(v);
            }
            "print" => Value::String(args.iter().map(print_opt).collect::<Vec<_>>().join("")),
            "println" => {
                Value::String(args.iter().map(print_opt).collect::<Vec<_>>().join(" ") + "\n")
            }
            "printf" => {
                need(1)?;
                Value::String(printf(&s(0), &args[1..]))
            }
            "eq" => {
                need(2)?;
                let a = arg(0);
                Value::Bool(args[1..].contains(&a))
            }
            "ne" => {
                need(2)?;
                Value::Bool(arg(0) != arg(1))
            }
            "not" => Value::Bool(!truthy(&arg(0))),
            "and" => {
                return Ok(args
                    .iter()
                    .find(|a| !truthy(a))
                    .cloned()
                    .unwrap_or(arg(args.len().saturating_sub(1))))
            }
            "or" => {
                return Ok(args
                    .iter()
                    .find(|a| truthy(a))
                    .cloned()
                    .unwrap_or(arg(args.len().saturating_sub(1))))
            }
            _ => bail!("template: function \"{name}\" not defined"),
        }))
    }
}

fn printf(fmt: &str, args: &[Option<Value>]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(&crate::human::go_quote(&as_str(it.next().unwrap_or(&None)))),
            Some(_) => out.push_str(&print_opt(it.next().unwrap_or(&None))),
            None => out.push('%'),
        }
    }
    out
}

/// Docker's format argument handling: `\t`/`\n` escapes, `json`, and the `table` prefix.
pub struct Format {
    pub table: bool,
    pub tmpl: Template,
}

pub fn replace_escapes(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

impl Format {
    /// `default` is used for "" and "table" (a `table ...` template).
    pub fn new(format: &str, default: &str) -> Result<Format> {
        let f = if format.is_empty() || format == "table" {
            default.to_string()
        } else if format == "json" {
            "{{json .}}".to_string()
        } else {
            format.to_string()
        };
        let f = replace_escapes(&f);
        let (table, body) = match f.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start_matches(' ').to_string())
            }
            _ => (false, f.clone()),
        };
        Ok(Format {
            table,
            tmpl: Template::parse(&body)?,
        })
    }

    /// Renders every row (and the header in table mode); returns the text to print.
    pub fn render_all(&self, rows: &[Value], headers: &Map<String, Value>) -> Result<String> {
        let mut out = String::new();
        if self.table {
            out.push_str(&self.tmpl.render_header(headers)?);
            out.push('\n');
        }
        for r in rows {
            out.push_str(&self.tmpl.render(r)?);
            out.push('\n');
        }
        if self.table {
            out = crate::table::align(&out);
        }
        Ok(out)
    }
}

/// Builds a headers map from (field, header) pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().render(&v).unwrap()
    }

    #[test]
    fn fields_and_text() {
        let v = json!({"State": {"Status": "running", "Pid": 42}, "Id": "abc", "Config": {"Image": "busybox"}});
        assert_eq!(r("{{.State.Status}}", v.clone()), "running");
        assert_eq!(
            r("id={{.Id}} pid={{.State.Pid}}", v.clone()),
            "id=abc pid=42"
        );
        assert_eq!(r("{{.Config.Image}}", v.clone()), "busybox");
        assert_eq!(r("{{.Nope}}", v.clone()), "<no value>");
        assert_eq!(
            r("{{json .State}}", v.clone()),
            r#"{"Pid":42,"Status":"running"}"#
        );
        assert_eq!(r("{{ .Id }}", v), "abc");
    }

    #[test]
    fn functions() {
        let v = json!({"Labels": {"a.b": "x", "c": "y"}, "Names": ["n1", "n2"], "Name": "Foo", "__Label": {"a.b": "x"}});
        assert_eq!(r(r#"{{index .Labels "a.b"}}"#, v.clone()), "x");
        assert_eq!(r(r#"{{.Label "a.b"}}"#, v.clone()), "x");
        assert_eq!(r(r#"{{.Label "zz"}}"#, v.clone()), "");
        assert_eq!(r("{{upper .Name}} {{lower .Name}}", v.clone()), "FOO foo");
        assert_eq!(r("{{.Name | upper}}", v.clone()), "FOO");
        assert_eq!(r(r#"{{join .Names ","}}"#, v.clone()), "n1,n2");
        assert_eq!(r("{{len .Names}}", v.clone()), "2");
        assert_eq!(
            r("{{json .}}", v.clone()),
            r#"{"Labels":{"a.b":"x","c":"y"},"Name":"Foo","Names":["n1","n2"]}"#
        );
        assert_eq!(r("{{.Names}}", v.clone()), "[n1 n2]");
        assert_eq!(r("{{.Labels}}", v), "map[a.b:x c:y]");
    }

    #[test]
    fn control() {
        let v = json!({"Mounts": [{"S": "/a"}, {"S": "/b"}], "L": {"k1": "v1", "k2": "v2"}, "On": true});
        assert_eq!(r("{{range .Mounts}}{{.S}};{{end}}", v.clone()), "/a;/b;");
        assert_eq!(
            r("{{range $k, $v := .L}}{{$k}}={{$v}} {{end}}", v.clone()),
            "k1=v1 k2=v2 "
        );
        assert_eq!(r("{{if .On}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(r("{{if .Off}}yes{{else}}no{{end}}", v.clone()), "no");
        assert_eq!(r(r#"{{if eq .L.k1 "v1"}}eq{{end}}"#, v.clone()), "eq");
        assert_eq!(r("{{with .L}}{{.k2}}{{end}}", v.clone()), "v2");
        assert_eq!(r("a {{- .L.k1 -}} b", v.clone()), "av1b");
        assert_eq!(r("{{range .Mounts}}{{$.On}}{{end}}", v), "truetrue");
    }

    #[test]
    fn table_format() {
        let f = Format::new("table {{.ID}}\\t{{.Names}}", "").unwrap();
        assert!(f.table);
        let h = headers(&[("ID", "CONTAINER ID"), ("Names", "NAMES")]);
        let out = f
            .render_all(&[json!({"ID": "abcdef123456", "Names": "x"})], &h)
            .unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabcdef123456   x\n");
        let f = Format::new("{{.ID}}: {{.Names}}", "").unwrap();
        assert!(!f.table);
        let out = f
            .render_all(&[json!({"ID": "a", "Names": "x"})], &h)
            .unwrap();
        assert_eq!(out, "a: x\n");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{range .A}}").is_err());
        assert!(Template::parse("{{nosuch .A}}")
            .unwrap()
            .render(&json!({}))
            .is_err());
    }
}
