//! `login` and `logout`: credentials checked by the daemon (`POST /auth`) and kept in
//! docker's `config.json` (see `credentials.rs`).

use std::io::Read;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::credentials::{self, server_key, Login};
use crate::client::{read_json, Client, Exit};
use berth_sys::names::login_domain;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long = "password")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

pub async fn login(c: &Client, a: LoginArgs) -> Result<i32> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| credentials::INDEX_SERVER.into());
    let domain = login_domain(&server);
    let mut password = a.password.clone();
    if a.password_stdin {
        if password.is_some() {
            return Err(Exit::msg(
                1,
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        if a.username.is_none() {
            return Err(Exit::msg(
                1,
                "Must provide --username with --password-stdin",
            ));
        }
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        password = Some(s.trim_end_matches(['\n', '\r']).to_string());
    } else if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let (username, password) = match (a.username.clone(), password) {
        (Some(u), Some(p)) => (u, p),
        (u, p) => {
            // No interactive prompt: fall back to stored credentials.
            match credentials::get(&domain)? {
                Some(l) if u.is_none() && p.is_none() => (l.username, l.secret),
                _ => {
                    return Err(Exit::msg(
                        1,
                        "Error: Cannot perform an interactive login from a non TTY device",
                    ))
                }
            }
        }
    };
    let body = json!({
        "username": username,
        "password": password,
        "serveraddress": server_key(&domain),
    });
    let resp = c.post_json("/auth", &[], &body).await?;
    let v: serde_json::Value = read_json(resp).await?;
    if !credentials::uses_helper(&domain)? {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
            credentials::config_file().display()
        );
    }
    credentials::store(
        &domain,
        &Login {
            username,
            secret: password,
        },
    )?;
    println!(
        "{}",
        v.get("Status")
            .and_then(|s| s.as_str())
            .unwrap_or("Login Succeeded")
    );
    Ok(0)
}

pub async fn logout(_c: &Client, a: LogoutArgs) -> Result<i32> {
    let server = a.server.unwrap_or_else(|| credentials::INDEX_SERVER.into());
    let domain = login_domain(&server);
    if credentials::erase(&domain)? {
        println!("Removing login credentials for {}", server_key(&domain));
    } else {
        println!("Not logged in to {}", server_key(&domain));
    }
    Ok(0)
}
