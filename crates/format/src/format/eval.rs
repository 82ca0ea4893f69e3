//! The template evaluator: walks a parsed node tree against a JSON value, with Go's
//! printing rules (`%v`, truthiness), variables, and the built-in functions.

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

use super::parse::{Cmd, Node, Pipe, Term};

pub(super) struct Eval<'a> {
    pub(super) vars: Vec<(String, Value)>,
    pub(super) header: Option<&'a Map<String, Value>>,
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
    pub(super) fn nodes(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
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
                // method call, e.g. {{.Label "com.example"}}; dot itself takes no argument
                let Some((name, parent_path)) = path.split_last() else {
                    bail!("template: can't give argument to non-function .");
                };
                let name = name.clone();
                if self.header.is_some() {
                    return Ok(self.header_of(&name));
                }
                let mut arg = None;
                if let Some(t) = c.get(1) {
                    arg = self.term(t, dot)?;
                } else if let Some(p) = piped {
                    arg = p;
                }
                let parent = navigate(Some(dot.clone()), parent_path);
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
