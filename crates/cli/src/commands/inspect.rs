//! `inspect`, `container inspect`, `image inspect`: raw daemon JSON, pretty or templated.

use anyhow::Result;
use clap::Args;

use crate::client::{is_not_found, read_bytes, seg, Client, Exit};
use crate::format::{replace_escapes, Template};
use crate::jsonfmt::indent;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
    Any,
}

async fn fetch(c: &Client, kind: Kind, name: &str, size: bool) -> Result<Vec<u8>> {
    let q: Vec<(&str, String)> = if size {
        vec![("size", "1".to_string())]
    } else {
        Vec::new()
    };
    match kind {
        Kind::Container => {
            let r = c
                .get(&format!("/containers/{}/json", seg(name)), &q)
                .await?;
            Ok(read_bytes(r).await?.to_vec())
        }
        Kind::Image => {
            let r = c.get(&format!("/images/{}/json", seg(name)), &[]).await?;
            Ok(read_bytes(r).await?.to_vec())
        }
        Kind::Network => {
            let r = c.get(&format!("/networks/{}", seg(name)), &[]).await?;
            Ok(read_bytes(r).await?.to_vec())
        }
        Kind::Volume => {
            let r = c.get(&format!("/volumes/{}", seg(name)), &[]).await?;
            Ok(read_bytes(r).await?.to_vec())
        }
        Kind::Any => match Box::pin(fetch(c, Kind::Container, name, size)).await {
            Ok(b) => Ok(b),
            Err(e) if is_not_found(&e) => {
                match Box::pin(fetch(c, Kind::Image, name, false)).await {
                    Ok(b) => Ok(b),
                    Err(e) if is_not_found(&e) => {
                        Err(anyhow::anyhow!("Error: No such object: {name}"))
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        },
    }
}

async fn inspect(
    c: &Client,
    kind: Kind,
    names: &[String],
    format: Option<&str>,
    size: bool,
) -> Result<i32> {
    let tmpl = match format {
        Some(f) if !f.is_empty() && f != "json" => {
            Some(Template::parse(&replace_escapes(f)).map_err(|e| Exit::msg(125, e.to_string()))?)
        }
        _ => None,
    };
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match fetch(c, kind, n, size).await {
            Ok(b) => raws.push(b),
            Err(e) => {
                if let Some(x) = e.downcast_ref::<Exit>() {
                    if x.code == 125 {
                        return Err(e);
                    }
                }
                errors.push(e.to_string());
            }
        }
    }
    let mut out = String::new();
    match tmpl {
        Some(t) => {
            for r in &raws {
                let v: serde_json::Value = serde_json::from_slice(r)?;
                match t.render(&v) {
                    Ok(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    Err(e) => {
                        print!("{out}");
                        return Err(Exit::msg(1, format!("{e}")));
                    }
                }
            }
        }
        None => {
            let items: Vec<String> = raws
                .iter()
                .map(|r| indent(String::from_utf8_lossy(r).trim(), "", "    "))
                .collect();
            if items.is_empty() {
                out.push_str("[]\n");
            } else {
                let joined = items.join(",\n");
                let body = joined
                    .lines()
                    .map(|l| format!("    {l}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                out.push_str(&format!("[\n{body}\n]\n"));
            }
        }
    }
    print!("{out}");
    if !errors.is_empty() {
        return Err(Exit::msg(1, errors.join("\n")));
    }
    Ok(0)
}

pub async fn run(c: &Client, a: InspectArgs) -> Result<i32> {
    let kind = match a.kind.as_deref() {
        None | Some("") => Kind::Any,
        Some("container") => Kind::Container,
        Some("image") => Kind::Image,
        Some(t) => {
            return Err(Exit::msg(
                125,
                format!("\"{t}\" is not a valid value for --type"),
            ))
        }
    };
    inspect(c, kind, &a.names, a.format.as_deref(), a.size).await
}

pub async fn run_typed(c: &Client, a: TypedInspectArgs, kind: Kind) -> Result<i32> {
    inspect(c, kind, &a.names, a.format.as_deref(), a.size).await
}
