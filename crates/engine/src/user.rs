//! Resolving `--user` (`name`, `uid`, `name:group`, `uid:gid`) against the container's own
//! `/etc/passwd` and `/etc/group`, as Docker does at start.

/// The process identity the runtime sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or("/"),
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || l.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (empty = root) with the container's passwd and group file contents.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let (uid, mut gid, name, home) = if let Ok(uid) = user.parse::<u32>() {
        match passwd_entries(passwd).find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, Some(e.name.to_string()), e.home.to_string()),
            None => (uid, 0, None, "/".to_string()),
        }
    } else {
        let e = passwd_entries(passwd)
            .find(|e| e.name == user)
            .ok_or_else(|| {
                format!("unable to find user {user}: no matching entries in passwd file")
            })?;
        (e.uid, e.gid, Some(e.name.to_string()), e.home.to_string())
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|(n, _, _)| *n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let Some(name) = &name {
        for (_, id, members) in group_entries(group) {
            if members.contains(&name.as_str()) && id != gid && !additional_gids.contains(&id) {
                additional_gids.push(id);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n";

    #[test]
    fn resolves_names_ids_and_groups() {
        assert_eq!(
            resolve("", PASSWD, GROUP).unwrap(),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        let app = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1000, vec![10])
        );
        assert_eq!(resolve("65534", PASSWD, GROUP).unwrap().gid, 65534);
        assert_eq!(
            resolve("4242:4243", PASSWD, GROUP).unwrap(),
            ResolvedUser {
                uid: 4242,
                gid: 4243,
                additional_gids: vec![],
                home: "/".into()
            }
        );
        assert_eq!(resolve("nobody:wheel", PASSWD, GROUP).unwrap().gid, 10);
        assert!(resolve("ghost", PASSWD, GROUP)
            .unwrap_err()
            .contains("unable to find user ghost"));
        assert!(resolve("app:ghosts", PASSWD, GROUP).is_err());
    }
}
