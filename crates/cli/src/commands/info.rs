//! `info` / `system info`.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{Client, Exit};
use crate::format::{replace_escapes, Template};
use crate::human::fmt_g;

#[derive(Args, Debug)]
pub struct InfoArgs {
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

/// `units.BytesSize` (binary units, 4 significant digits).
fn bytes_size(n: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", fmt_g(v, 4), UNITS[i])
}

pub async fn run(c: &Client, a: InfoArgs) -> Result<i32> {
    let info: Value = c.get_json("/info", &[]).await?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let t = Template::parse(&replace_escapes(if f == "json" { "{{json .}}" } else { f }))
            .map_err(|e| Exit::msg(125, e.to_string()))?;
        println!(
            "{}",
            t.render(&info).map_err(|e| Exit::msg(125, e.to_string()))?
        );
        return Ok(0);
    }
    let mut o = String::new();
    o.push_str("Client:\n");
    o.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    o.push_str(" Context:    default\n Debug Mode: false\n\nServer:\n");
    o.push_str(&format!(" Containers: {}\n", s(&info, "Containers")));
    o.push_str(&format!("  Running: {}\n", s(&info, "ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", s(&info, "ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", s(&info, "ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", s(&info, "Images")));
    o.push_str(&format!(" Server Version: {}\n", s(&info, "ServerVersion")));
    o.push_str(&format!(" Storage Driver: {}\n", s(&info, "Driver")));
    if let Some(ds) = info["DriverStatus"].as_array() {
        for pair in ds {
            if let (Some(k), Some(v)) = (pair[0].as_str(), pair[1].as_str()) {
                o.push_str(&format!("  {k}: {v}\n"));
            }
        }
    }
    o.push_str(&format!(" Logging Driver: {}\n", s(&info, "LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", s(&info, "CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", s(&info, "CgroupVersion")));
    if let Some(rt) = info["Runtimes"].as_object() {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        o.push_str(&format!(
            " Runtimes: {}\n",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    o.push_str(&format!(
        " Default Runtime: {}\n",
        s(&info, "DefaultRuntime")
    ));
    o.push_str(&format!(" Init Binary: {}\n", s(&info, "InitBinary")));
    if let Some(so) = info["SecurityOptions"].as_array() {
        if !so.is_empty() {
            o.push_str(" Security Options:\n");
            for opt in so {
                let opt = opt.as_str().unwrap_or("");
                for (i, kv) in opt.split(',').enumerate() {
                    let (k, v) = kv.split_once('=').unwrap_or(("", kv));
                    if i == 0 {
                        o.push_str(&format!("  {v}\n"));
                    } else {
                        o.push_str(&format!("   {}: {v}\n", capitalize(k)));
                    }
                }
            }
        }
    }
    o.push_str(&format!(" Kernel Version: {}\n", s(&info, "KernelVersion")));
    o.push_str(&format!(
        " Operating System: {}\n",
        s(&info, "OperatingSystem")
    ));
    o.push_str(&format!(" OSType: {}\n", s(&info, "OSType")));
    o.push_str(&format!(" Architecture: {}\n", s(&info, "Architecture")));
    o.push_str(&format!(" CPUs: {}\n", s(&info, "NCPU")));
    o.push_str(&format!(
        " Total Memory: {}\n",
        bytes_size(info["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    o.push_str(&format!(" Name: {}\n", s(&info, "Name")));
    o.push_str(&format!(" ID: {}\n", s(&info, "ID")));
    o.push_str(&format!(
        " Docker Root Dir: {}\n",
        s(&info, "DockerRootDir")
    ));
    o.push_str(&format!(
        " Debug Mode: {}\n",
        info["Debug"].as_bool().unwrap_or(false)
    ));
    o.push_str(&format!(
        " Experimental: {}\n",
        info["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
    o.push_str(&format!(
        " Live Restore Enabled: {}\n",
        info["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    print!("{o}");
    if let Some(w) = info["Warnings"].as_array() {
        if !w.is_empty() {
            eprintln!();
            for x in w {
                eprintln!("{}", x.as_str().unwrap_or(""));
            }
        }
    }
    Ok(0)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes() {
        assert_eq!(super::bytes_size(67_324_641_280.0), "62.7GiB");
        assert_eq!(super::bytes_size(1024.0), "1KiB");
    }
}
