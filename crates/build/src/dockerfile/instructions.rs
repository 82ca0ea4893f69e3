//! Parsing of one logical line into an instruction: the keyword (case-insensitive), its flags,
//! and its arguments in the instruction's own syntax (JSON exec form or shell form, key=value
//! pairs, whitespace lists), with BuildKit's error messages.

use super::flags::{self, FlagKind};
use super::{
    ArgDecl, CommandLine, CopyArgs, Directives, From, Healthcheck, Heredoc, Instruction, KeyValue,
    Run,
};
use crate::error::ParseError;

/// The result of parsing one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    From(From),
    Instruction(Instruction),
}

/// Parses one logical line (`text`, starting at `line`) with its heredocs.
pub fn parse_instruction(
    text: &str,
    line: usize,
    directives: &Directives,
    heredocs: Vec<Heredoc>,
) -> Result<Parsed, ParseError> {
    let err = |m: String| ParseError::at(line, m);
    let text = text.trim();
    let (keyword, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    let upper = keyword.to_ascii_uppercase();
    let (flag_words, rest) = flags::extract(rest);
    let rest = rest.trim();
    let known: &[(&str, FlagKind)] = match upper.as_str() {
        "FROM" => &[("platform", FlagKind::String)],
        "RUN" => &[
            ("mount", FlagKind::Strings),
            ("network", FlagKind::String),
            ("security", FlagKind::String),
        ],
        "COPY" => &[
            ("from", FlagKind::String),
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("parents", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ],
        "ADD" => &[
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("checksum", FlagKind::String),
            ("keep-git-dir", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ],
        "HEALTHCHECK" => &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
        _ => &[],
    };
    let is_known_keyword = matches!(
        upper.as_str(),
        "FROM"
            | "RUN"
            | "CMD"
            | "ENTRYPOINT"
            | "COPY"
            | "ADD"
            | "ENV"
            | "ARG"
            | "LABEL"
            | "EXPOSE"
            | "USER"
            | "WORKDIR"
            | "VOLUME"
            | "HEALTHCHECK"
            | "SHELL"
            | "STOPSIGNAL"
            | "ONBUILD"
            | "MAINTAINER"
    );
    if !is_known_keyword {
        return Err(err(format!("unknown instruction: {upper}")));
    }
    let fl = flags::parse(&flag_words, known).map_err(&err)?;
    let escape = directives.escape;
    let instruction = match upper.as_str() {
        "FROM" => {
            let args: Vec<&str> = rest.split_whitespace().collect();
            let name = match args.as_slice() {
                [_] => None,
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    let name = name.to_ascii_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            crate::gofmt::quote(&name)
                        )));
                    }
                    Some(name)
                }
                _ => return Err(err("FROM requires either one or three arguments".into())),
            };
            return Ok(Parsed::From(From {
                image: args[0].to_string(),
                platform: fl.get("platform").map(str::to_string),
                name,
            }));
        }
        "RUN" => {
            if rest.is_empty() {
                return Err(err("RUN requires at least one argument".into()));
            }
            Instruction::Run(Run {
                command: maybe_json(rest).map_err(&err)?,
                mounts: fl.all("mount"),
                network: fl.get("network").map(str::to_string),
                security: fl.get("security").map(str::to_string),
                heredocs,
            })
        }
        "CMD" => Instruction::Cmd(maybe_json(rest).map_err(&err)?),
        "ENTRYPOINT" => Instruction::Entrypoint(maybe_json(rest).map_err(&err)?),
        "COPY" | "ADD" => {
            let args = json_or_whitespace_list(rest).map_err(&err)?;
            if args.len() < 2 {
                return Err(err(format!(
                    "{upper} requires at least two arguments, but only one was provided. Destination could not be determined."
                )));
            }
            let (dest, sources) = args.split_last().expect("two or more");
            let copy = CopyArgs {
                sources: sources.to_vec(),
                dest: dest.clone(),
                from: fl.get("from").map(str::to_string),
                chown: fl.get("chown").map(str::to_string),
                chmod: fl.get("chmod").map(str::to_string),
                link: fl.bool("link"),
                checksum: fl.get("checksum").map(str::to_string),
                keep_git_dir: fl.bool("keep-git-dir"),
                parents: fl.bool("parents"),
                excludes: fl.all("exclude"),
                heredocs,
            };
            if upper == "COPY" {
                Instruction::Copy(copy)
            } else {
                Instruction::Add(copy)
            }
        }
        "ENV" | "LABEL" => {
            let pairs = name_values(rest, &upper, escape).map_err(&err)?;
            if pairs.is_empty() {
                return Err(err(format!("{upper} requires at least one argument")));
            }
            if pairs.iter().any(|p| p.key.is_empty()) {
                return Err(err(format!("{upper} names can not be blank")));
            }
            if upper == "ENV" {
                Instruction::Env(pairs)
            } else {
                Instruction::Label(pairs)
            }
        }
        "ARG" => {
            let words = parse_words(rest, escape);
            if words.is_empty() {
                return Err(err("ARG requires at least one argument".into()));
            }
            let mut args = Vec::new();
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (w, None),
                };
                if name.is_empty() {
                    return Err(err("ARG names can not be blank".into()));
                }
                args.push(ArgDecl { name, default });
            }
            Instruction::Arg(args)
        }
        "EXPOSE" => {
            let ports: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            if ports.is_empty() {
                return Err(err("EXPOSE requires at least one argument".into()));
            }
            Instruction::Expose(ports)
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
            if rest.is_empty() {
                return Err(err(format!("{upper} requires exactly one argument")));
            }
            let value = rest.to_string();
            match upper.as_str() {
                "USER" => Instruction::User(value),
                "WORKDIR" => Instruction::Workdir(value),
                "STOPSIGNAL" => Instruction::StopSignal(value),
                _ => Instruction::Maintainer(value),
            }
        }
        "VOLUME" => {
            let vols = json_or_whitespace_list(rest).map_err(&err)?;
            if vols.is_empty() {
                return Err(err("VOLUME requires at least one argument".into()));
            }
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err(err("VOLUME specified can not be an empty string".into()));
            }
            Instruction::Volume(vols)
        }
        "SHELL" => match maybe_json(rest).map_err(&err)? {
            CommandLine::Exec(v) if !v.is_empty() => Instruction::Shell(v),
            CommandLine::Exec(_) => return Err(err("SHELL requires at least one argument".into())),
            CommandLine::Shell(s) if s.is_empty() => {
                return Err(err("SHELL requires at least one argument".into()))
            }
            CommandLine::Shell(_) => {
                return Err(err("SHELL requires the arguments to be in JSON form".into()))
            }
        },
        "HEALTHCHECK" => Instruction::Healthcheck(healthcheck(rest, &fl).map_err(&err)?),
        "ONBUILD" => {
            if rest.is_empty() {
                return Err(err("ONBUILD requires at least one argument".into()));
            }
            let trigger = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err(err(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                    ))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(err(format!(
                        "{trigger} isn't allowed as an ONBUILD trigger"
                    )))
                }
                _ => {}
            }
            parse_instruction(rest, line, directives, Vec::new())?;
            Instruction::OnBuild(rest.to_string())
        }
        _ => unreachable!("checked above"),
    };
    Ok(Parsed::Instruction(instruction))
}

/// BuildKit's stage name rule: `^[a-z][a-z0-9-_\.]*$`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// A JSON array of strings is the exec form; anything else (even invalid JSON) the shell form;
/// a JSON array with a non-string is an error.
fn maybe_json(rest: &str) -> Result<CommandLine, String> {
    match json_strings(rest)? {
        Some(v) => Ok(CommandLine::Exec(v)),
        None => Ok(CommandLine::Shell(rest.to_string())),
    }
}

fn json_strings(rest: &str) -> Result<Option<Vec<String>>, String> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(
                    "when using JSON array syntax, arrays must be comprised of strings only"
                        .to_string(),
                ),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Err(_) => Ok(None),
    }
}

fn json_or_whitespace_list(rest: &str) -> Result<Vec<String>, String> {
    Ok(match json_strings(rest)? {
        Some(v) => v,
        None => rest.split_whitespace().map(str::to_string).collect(),
    })
}

/// ENV/LABEL: `KEY value` (old form, when the first word has no `=`) or `K=v K2="v 2"`.
fn name_values(rest: &str, keyword: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or("").to_string();
        let value = parts.next().map(str::trim_start).unwrap_or("");
        if value.is_empty() {
            return Err(format!("{keyword} must have two arguments"));
        }
        return Ok(vec![KeyValue {
            key,
            value: value.to_string(),
        }]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            None => Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                crate::gofmt::quote(&w)
            )),
        })
        .collect()
}

/// BuildKit's `parseWords`: splits on whitespace outside quotes, keeping quotes and escapes.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
                word.push(c);
            } else if c == escape && q != '\'' {
                if i + 1 < chars.len() {
                    word.push(c);
                    i += 1;
                    word.push(chars[i]);
                }
            } else {
                word.push(c);
            }
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            i += 1;
            continue;
        }
        in_word = true;
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
            word.push(c);
        } else if c == escape {
            if i + 1 < chars.len() {
                word.push(c);
                i += 1;
                word.push(chars[i]);
            }
        } else {
            word.push(c);
        }
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

fn healthcheck(rest: &str, fl: &flags::Flags) -> Result<Healthcheck, String> {
    let (typ, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    if typ.is_empty() {
        return Err("HEALTHCHECK requires at least one argument".into());
    }
    let typ = typ.to_ascii_uppercase();
    let mut hc = Healthcheck {
        test: Vec::new(),
        interval: 0,
        timeout: 0,
        start_period: 0,
        start_interval: 0,
        retries: 0,
    };
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        hc.test = vec!["NONE".into()];
        return Ok(hc);
    }
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            crate::gofmt::quote(&typ)
        ));
    }
    hc.test = match maybe_json(args)? {
        CommandLine::Exec(v) if !v.is_empty() => {
            std::iter::once("CMD".to_string()).chain(v).collect()
        }
        CommandLine::Shell(s) if !s.is_empty() => vec!["CMD-SHELL".into(), s],
        _ => return Err("Missing command after HEALTHCHECK CMD".into()),
    };
    let interval = |name: &str| -> Result<i64, String> {
        let Some(v) = fl.get(name) else {
            return Ok(0);
        };
        if v.is_empty() {
            return Ok(0);
        }
        let d = crate::gofmt::parse_duration(v)?;
        if d == 0 {
            return Ok(0);
        }
        if d < 0 {
            return Err(format!(
                "Interval {} cannot be negative",
                crate::gofmt::quote(name)
            ));
        }
        if d < 1_000_000 {
            return Err(format!(
                "Interval {} cannot be less than 1ms",
                crate::gofmt::quote(name)
            ));
        }
        Ok(d)
    };
    hc.interval = interval("interval")?;
    hc.timeout = interval("timeout")?;
    hc.start_period = interval("start-period")?;
    hc.start_interval = interval("start-interval")?;
    if let Some(r) = fl.get("retries") {
        let n: i64 = r.parse().map_err(|_| {
            format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                crate::gofmt::quote(r)
            )
        })?;
        if n < 1 {
            return Err(format!("--retries must be at least 1 (not {n})"));
        }
        hc.retries = n;
    }
    Ok(hc)
}
