//! Running jobs on other machines over OpenSSH (`-S`, `--sshlogin`), as GNU parallel
//! does: the system `ssh` client, one master connection per host (`ControlMaster`,
//! in a private directory), and each job one multiplexed session on it.
//!
//! A job's command line is the one that would run here, with its arguments already
//! backslash-quoted; it goes to `ssh` as one argument, so the remote shell reads it
//! exactly once, as the local one would have.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::process::Cmd;

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

/// How `ssh` is run: GNU parallel's `--ssh` (the program and its own options).
#[derive(Clone, Debug)]
pub struct Ssh {
    /// `ssh` and any options of the user's, e.g. `ssh -i key`.
    pub command: Vec<String>,
    /// Where the master connections' sockets live (private to this run).
    pub control_dir: PathBuf,
}

impl Ssh {
    /// `ssh` with the options every call shares: batch mode (never a password
    /// prompt), the master's socket, the port and the user.
    fn base(&self, login: &SshLogin) -> Cmd {
        let program = self.command.first().map_or("ssh", String::as_str);
        let mut cmd = Cmd::new(program).args(self.command.iter().skip(1));
        cmd = cmd
            .args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(control_path(&self.control_dir));
        if let Some(port) = login.port {
            cmd = cmd.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &login.user {
            cmd = cmd.arg("-l").arg(user);
        }
        cmd
    }

    /// Opens the master connection to `login` (it backgrounds itself once
    /// authenticated), waiting at most `timeout`.
    pub fn start_master(&self, login: &SshLogin, timeout: Duration) -> Result<(), String> {
        let Some(host) = &login.host else {
            return Ok(());
        };
        let cmd = self
            .base(login)
            .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=yes"])
            .args([
                "-o",
                &format!("ConnectTimeout={}", timeout.as_secs().max(1)),
            ])
            .args(["-N", "-f", "--"])
            .arg(host)
            .timeout(timeout);
        match cmd.output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(crate::lines::excerpt(
                String::from_utf8_lossy(&out.stderr).trim(),
                200,
            )),
            Err(err) => Err(crate::error_chain(&err)),
        }
    }

    /// Closes the master connection to `login`.
    pub fn stop_master(&self, login: &SshLogin) {
        if let Some(host) = &login.host {
            let _ = self
                .base(login)
                .args(["-O", "exit", "--"])
                .arg(host)
                .timeout(Duration::from_secs(5))
                .output();
        }
    }

    /// The number of cores of `login`'s machine, asked once (`nproc`).
    pub fn cores(&self, login: &SshLogin) -> Result<usize, String> {
        let Some(host) = &login.host else {
            return Ok(std::thread::available_parallelism().map_or(1, usize::from));
        };
        let out = self
            .base(login)
            .args(["--", host, "nproc"])
            .timeout(Duration::from_secs(30))
            .output()
            .map_err(|e| crate::error_chain(&e))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|&n: &usize| n > 0)
            .ok_or_else(|| format!("{login}: nproc did not answer with a number"))
    }

    /// The command that runs shell command `line` on `login`'s machine.
    pub fn wrap(&self, login: &SshLogin, line: &[u8]) -> Cmd {
        match &login.host {
            None => Cmd::shell(std::os::unix::ffi::OsStrExt::from_bytes(line) as &std::ffi::OsStr),
            Some(host) => self
                .base(login)
                .arg("--")
                .arg(host)
                .arg(os_from_bytes(line)),
        }
    }
}

fn os_from_bytes(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes.to_vec())
}

fn control_path(dir: &Path) -> OsString {
    // %C: a hash of the connection's host, port and user, short enough for a socket.
    let mut option = OsString::from("ControlPath=");
    option.push(dir.join("%C"));
    option
}

/// Which host each job slot runs on: slot 1 to the first host's count, and so on.
#[derive(Clone, Debug)]
pub struct Hosts {
    /// The hosts, with how many jobs each runs at once.
    pub hosts: Vec<(SshLogin, usize)>,
    /// How `ssh` is run.
    pub ssh: Ssh,
}

impl Hosts {
    /// Job slots in all.
    pub fn slots(&self) -> usize {
        self.hosts.iter().map(|(_, n)| n).sum()
    }

    /// The host of job slot `slot` (1-based).
    pub fn for_slot(&self, slot: usize) -> &SshLogin {
        let mut left = slot.saturating_sub(1);
        for (login, n) in &self.hosts {
            if left < *n {
                return login;
            }
            left -= n;
        }
        &self.hosts[self.hosts.len() - 1].0
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

    #[test]
    fn slots_are_given_to_hosts_in_order() {
        let hosts = Hosts {
            hosts: vec![("a".parse().unwrap(), 2), (":".parse().unwrap(), 1)],
            ssh: Ssh {
                command: vec!["ssh".into()],
                control_dir: PathBuf::from("/tmp"),
            },
        };
        assert_eq!(hosts.slots(), 3);
        let names: Vec<String> = (1..=3).map(|s| hosts.for_slot(s).to_string()).collect();
        assert_eq!(names, ["a", "a", ":"]);
    }
}
