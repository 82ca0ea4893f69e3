//! `version`.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{Client, Exit};
use crate::format::{replace_escapes, Template};

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        o => o.to_string(),
    }
}

pub async fn run(c: &Client, a: VersionArgs) -> Result<i32> {
    let client = json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": berth_api::API_VERSION,
        "DefaultAPIVersion": berth_api::API_VERSION,
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "GoVersion": "rust",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    });
    let server: Result<Value> = c.get_json("/version", &[]).await;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let data = json!({"Client": client, "Server": server.as_ref().ok()});
        let t = Template::parse(&replace_escapes(if f == "json" { "{{json .}}" } else { f }))
            .map_err(|e| Exit::msg(125, e.to_string()))?;
        println!(
            "{}",
            t.render(&data).map_err(|e| Exit::msg(125, e.to_string()))?
        );
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Err(Exit::msg(1, e.to_string())),
        };
    }
    println!("Client:");
    println!(" Version:           {}", s(&client, "Version"));
    println!(" API version:       {}", s(&client, "ApiVersion"));
    println!(" Go version:        {}", s(&client, "GoVersion"));
    println!(" Git commit:        {}", s(&client, "GitCommit"));
    println!(" Built:             {}", s(&client, "BuildTime"));
    println!(
        " OS/Arch:           {}/{}",
        s(&client, "Os"),
        s(&client, "Arch")
    );
    println!(" Context:           default");
    let server = match server {
        Ok(v) => v,
        Err(e) => {
            println!();
            return Err(Exit::msg(1, e.to_string()));
        }
    };
    println!();
    let name = server["Platform"]["Name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    println!("Server: {name}");
    println!(" Engine:");
    println!("  Version:          {}", s(&server, "Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s(&server, "ApiVersion"),
        if server["MinAPIVersion"].is_string() {
            s(&server, "MinAPIVersion")
        } else {
            s(&server, "MinApiVersion")
        }
    );
    println!("  Go version:       {}", s(&server, "GoVersion"));
    println!("  Git commit:       {}", s(&server, "GitCommit"));
    println!("  Built:            {}", s(&server, "BuildTime"));
    println!(
        "  OS/Arch:          {}/{}",
        s(&server, "Os"),
        s(&server, "Arch")
    );
    println!(
        "  Experimental:     {}",
        server["Experimental"].as_bool().unwrap_or(false)
    );
    if let Some(comps) = server["Components"].as_array() {
        for comp in comps {
            let n = s(comp, "Name");
            if n == "Engine" {
                continue;
            }
            println!(" {n}:");
            println!("  Version:          {}", s(comp, "Version"));
            if let Some(d) = comp["Details"].as_object() {
                for (k, v) in d {
                    let label = format!("{k}:");
                    println!(
                        "  {label:<18}{}",
                        v.as_str()
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| v.to_string())
                    );
                }
            }
        }
    }
    Ok(0)
}

pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
