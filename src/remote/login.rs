//! Naming the machines: GNU parallel's `--sshlogin` syntax, and `--slf` files of them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One `--sshlogin` entry: `[N/][user@]host[:port]`, or `:` for this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshLogin {
    /// `N/`: at most this many jobs at once there (default: its core count).
    pub jobs: Option<usize>,
    /// `user@`.
    pub user: Option<String>,
    /// The host; `None` for this machine (`:`).
    pub host: Option<String>,
    /// `:port`.
    pub port: Option<u16>,
}

impl SshLogin {
    /// Whether this is the local machine (`:`).
    pub fn is_local(&self) -> bool {
        self.host.is_none()
    }
}

impl fmt::Display for SshLogin {
    /// The login as the joblog's Host column shows it: `:` here, else
    /// `[user@]host[:port]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(host) = &self.host else {
            return f.write_str(":");
        };
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl FromStr for SshLogin {
    type Err = String;

    /// Parses `[N/][user@]host[:port]`; `:` (or `N/:`) is this machine.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("invalid --sshlogin {spec:?}: {why}");
        let spec_trim = spec.trim();
        let (jobs, rest) = match spec_trim.split_once('/') {
            Some((n, rest)) => {
                let n: usize = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad("the N in N/ must be a whole number above 0"))?;
                (Some(n), rest)
            }
            None => (None, spec_trim),
        };
        if rest == ":" {
            return Ok(SshLogin {
                jobs,
                user: None,
                host: None,
                port: None,
            });
        }
        let (user, rest) = match rest.split_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
            Some(_) => return Err(bad("the user before @ is empty")),
            None => (None, rest),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| bad("the port after : must be 1-65535"))?;
                (host, Some(port))
            }
            None => (rest, None),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
        if host.is_empty() || !host.chars().all(valid) || host.starts_with('-') {
            return Err(bad(
                "expected [N/][user@]host[:port], or : for this machine",
            ));
        }
        Ok(SshLogin {
            jobs,
            user,
            host: Some(host.to_owned()),
            port,
        })
    }
}

/// The largest `--slf` file concur reads: 1 MiB (some 20,000 hosts).
pub const MAX_LOGIN_FILE: u64 = 1 << 20;

/// Reads a `--slf` file: one login per line; blank lines and `#` comments are
/// skipped. Errors name the file and line; a file past [`MAX_LOGIN_FILE`] is refused.
pub fn read_login_file(path: &Path) -> Result<Vec<SshLogin>, String> {
    let bytes = crate::limits::read_bounded(path, MAX_LOGIN_FILE, "a --slf file")
        .map_err(|e| format!("cannot read the --slf file {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| format!("the --slf file {} is not UTF-8 text: {e}", path.display()))?;
    let mut logins = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let login = line
            .parse::<SshLogin>()
            .map_err(|e| format!("{}, line {}: {e}", path.display(), i + 1))?;
        logins.push(login);
    }
    Ok(logins)
}

/// A `--slf` file, read again when it changes: new logins join the run, and
/// logins no longer in it take no new jobs.
#[derive(Clone, Debug)]
pub struct LoginFile {
    /// The file.
    pub path: PathBuf,
}

impl LoginFile {
    /// Its modification time, to tell whether it changed.
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_parse_as_gnu_parallel_writes_them() {
        let login: SshLogin = "4/alice@box.example:2222".parse().unwrap();
        assert_eq!(
            login,
            SshLogin {
                jobs: Some(4),
                user: Some("alice".into()),
                host: Some("box.example".into()),
                port: Some(2222)
            }
        );
        assert_eq!(login.to_string(), "alice@box.example:2222");
        let local: SshLogin = "2/:".parse().unwrap();
        assert!(local.is_local() && local.jobs == Some(2));
        assert_eq!(local.to_string(), ":");
        assert_eq!(
            "127.0.0.2".parse::<SshLogin>().unwrap().host.as_deref(),
            Some("127.0.0.2")
        );
        for bad in [
            "",
            "0/h",
            "x/h",
            "@h",
            "h:0",
            "h:x",
            "-oProxyCommand=x",
            "a b",
            "h;rm",
        ] {
            let err = bad.parse::<SshLogin>().unwrap_err();
            assert!(err.contains("--sshlogin"), "{bad}: {err}");
        }
    }
}
