//! Other machines, over OpenSSH: the system `ssh` client, one master connection per
//! host (`ControlMaster`, in a private directory), and each job or worker one
//! multiplexed session on it. `concur run -S` runs jobs this way, as GNU parallel
//! does; `concur gcd --hosts` starts its pool's workers this way.
//!
//! A job's command line is the one that would run here, with its arguments already
//! backslash-quoted; it goes to `ssh` as one argument, so the remote shell reads it
//! exactly once, as the local one would have.
//!
//! A host is [`Hosts::connect`]ed once per run: master connection, then one
//! session that asks for its cores, makes a run directory and looks for `rsync`.
//! A host lost during the run is [`Host::mark_down`]; [`Host::revive`] tries a new
//! master after a back-off (1 s, doubling, at most 60 s).

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::process::runner::JobCount;
use crate::process::transfer::{RelativePath, Unpacked};
use crate::process::{CancelToken, Cmd, quote_backslash_bytes};

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

/// How `ssh` is run: GNU parallel's `--ssh` (the program and its own options).
#[derive(Clone, Debug)]
pub struct Ssh {
    /// `ssh` and any options of the user's, e.g. `ssh -i key`.
    pub command: Vec<String>,
    /// Where the master connections' sockets live (private to this run).
    pub control_dir: PathBuf,
}

/// What one question to a new host found out.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Probe {
    cores: usize,
    run_dir: Vec<u8>,
    rsync: bool,
}

impl Ssh {
    /// `ssh` with the options every call shares: batch mode (never a password
    /// prompt), the master's socket, the port and the user.
    fn base(&self, login: &SshLogin) -> Cmd {
        let program = self.command.first().map_or("ssh", String::as_str);
        Cmd::new(program)
            .args(self.command.iter().skip(1))
            .args(self.options(login))
    }

    /// The options of [`base`](Self::base) after the program and the user's own.
    fn options(&self, login: &SshLogin) -> Vec<OsString> {
        let mut options: Vec<OsString> = vec!["-o".into(), "BatchMode=yes".into(), "-o".into()];
        options.push(control_path(&self.control_dir));
        if let Some(port) = login.port {
            options.extend(["-p".into(), port.to_string().into()]);
        }
        if let Some(user) = &login.user {
            options.extend(["-l".into(), user.into()]);
        }
        options
    }

    /// Opens the master connection to `login` (it backgrounds itself once
    /// authenticated), waiting at most `timeout`.
    pub fn start_master(&self, login: &SshLogin, timeout: Duration) -> Result<(), String> {
        self.start_master_until(login, timeout, None)
    }

    /// [`start_master`](Self::start_master), given up as soon as `cancel` fires.
    fn start_master_until(
        &self,
        login: &SshLogin,
        timeout: Duration,
        cancel: Option<&CancelToken>,
    ) -> Result<(), String> {
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
        checked(cmd.output_until(cancel))
    }

    /// Whether a session to `login` that exited with `code` failed because the
    /// connection did: `ssh` exits 255 then (and so may the remote command), and the
    /// master connection is gone too.
    pub fn connection_lost(&self, login: &SshLogin, code: Option<i32>) -> bool {
        code == Some(255) && !self.master_alive(login)
    }

    /// Whether the master connection to `login` is still up.
    pub fn master_alive(&self, login: &SshLogin) -> bool {
        let Some(host) = &login.host else {
            return true;
        };
        self.base(login)
            .args(["-O", "check", "--"])
            .arg(host)
            .timeout(Duration::from_secs(5))
            .output()
            .is_ok_and(|out| out.status.success())
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

    /// Asks a host, in one session, for its core count, a fresh directory for this
    /// run (made there, mode 700), whether it has `rsync`, and makes `workdir`.
    fn probe(
        &self,
        login: &SshLogin,
        workdir: Option<&[u8]>,
        cancel: Option<&CancelToken>,
    ) -> Result<Probe, String> {
        let Some(host) = &login.host else {
            return Err("the local machine is not probed".into());
        };
        let mut script = b"nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; \
            mktemp -d \"${TMPDIR:-/tmp}/concur-run.XXXXXX\" || exit 1; \
            if command -v rsync >/dev/null 2>&1; then echo rsync; else echo tar; fi"
            .to_vec();
        if let Some(dir) = workdir {
            script.extend_from_slice(b"; mkdir -p -- ");
            script.extend_from_slice(&quote_backslash_bytes(dir));
        }
        let out = self
            .base(login)
            .args(["--", host])
            .arg(os_from_bytes(&script))
            .timeout(Duration::from_secs(30))
            .output_until(cancel)
            .map_err(|e| crate::error_chain(&e))?;
        let mut lines = out.stdout.split(|&b| b == b'\n');
        let mut next = || lines.next().map(|l| l.trim_ascii().to_vec());
        let cores = next()
            .and_then(|l| String::from_utf8(l).ok()?.parse().ok())
            .filter(|&n: &usize| n > 0);
        let (run_dir, tool) = (next().unwrap_or_default(), next().unwrap_or_default());
        match cores {
            Some(cores) if out.status.success() && run_dir.starts_with(b"/") => Ok(Probe {
                cores,
                run_dir,
                rsync: tool == b"rsync",
            }),
            _ => Err(format!(
                "it did not answer as expected (exit {}): {}",
                crate::process::returncode(out.status),
                crate::lines::excerpt(String::from_utf8_lossy(&out.stderr).trim(), 200)
            )),
        }
    }

    /// The program and arguments that run shell command `line` on `login`'s
    /// machine, over its master connection.
    pub fn argv(&self, login: &SshLogin, line: &[u8]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = self.command.iter().map(OsString::from).collect();
        if argv.is_empty() {
            argv.push("ssh".into());
        }
        argv.extend(self.options(login));
        argv.push("--".into());
        argv.extend(login.host.as_deref().map(OsString::from));
        argv.push(os_from_bytes(line));
        argv
    }

    /// The command that runs shell command `line` on `host`'s machine, in `workdir`.
    ///
    /// With `watch`, the job gets a held stdin (see [`RemoteLine`]): when this `ssh`
    /// ends (a timeout, Ctrl-C, or this process dying), the remote process group is
    /// stopped too. A job that reads its own stdin (`--pipe`) cannot be watched so.
    pub fn wrap(&self, host: &Host, line: &[u8], workdir: &[u8], watch: Option<Duration>) -> Cmd {
        let login = &host.login;
        match &login.host {
            None => Cmd::shell(std::os::unix::ffi::OsStrExt::from_bytes(line) as &std::ffi::OsStr),
            Some(name) => {
                let remote = RemoteLine {
                    line,
                    workdir,
                    watch,
                };
                let cmd = self
                    .base(login)
                    .arg("--")
                    .arg(name)
                    .arg(os_from_bytes(&remote.render()));
                if watch.is_some() {
                    cmd.stdin(crate::process::Input::Held)
                } else {
                    cmd
                }
            }
        }
    }

    /// Copies local `path` to `host`, under `workdir` if it is relative (as
    /// `rsync --relative` places it), over the master connection. A path with a `..`
    /// component is refused, by either transport (see [`transfer`](super::transfer)).
    /// Ctrl-C (`cancel`) stops a transfer under way.
    pub fn send(
        &self,
        host: &Host,
        path: &[u8],
        workdir: &[u8],
        cancel: Option<&CancelToken>,
    ) -> Result<(), String> {
        let Some(name) = &host.login.host else {
            return Ok(());
        };
        let failed = |e: String| {
            format!(
                "cannot send {} to {}: {e}",
                String::from_utf8_lossy(path),
                host.login
            )
        };
        let wanted = RelativePath::parse(path).map_err(failed)?;
        let dest: &[u8] = if wanted.absolute { b"/" } else { workdir };
        let local = os_from_bytes(&wanted.to_bytes());
        if host.rsync && local_rsync() {
            let mut target = remote_path(&host.login, name);
            target.push(os_from_bytes(dest));
            target.push("/");
            let cmd = self.rsync(&host.login).arg("--").arg(local).arg(target);
            return checked(cmd.timeout(TRANSFER_TIMEOUT).output_until(cancel)).map_err(failed);
        }
        // tar | ssh 'tar -x', each end's status checked (a shell pipeline reports
        // only the last, so a missing file used to pass).
        let mut remote = b"mkdir -p -- ".to_vec();
        remote.extend_from_slice(&quote_backslash_bytes(dest));
        remote.extend_from_slice(b" && tar -xf - -C ");
        remote.extend_from_slice(&quote_backslash_bytes(dest));
        let pipeline = crate::process::Pipeline::new([
            Cmd::new("tar").args(["-cf", "-", "--"]).arg(local),
            self.base(&host.login)
                .args(["--", name])
                .arg(os_from_bytes(&remote)),
        ])
        .timeout(TRANSFER_TIMEOUT);
        match pipeline.output_until(cancel) {
            Ok(out) => match out.statuses.iter().position(|s| !s.success()) {
                None => Ok(()),
                Some(stage) => Err(failed(crate::lines::excerpt(
                    String::from_utf8_lossy(&out.stderr[stage]).trim(),
                    200,
                ))),
            },
            Err(err) => Err(failed(crate::error_chain(&err))),
        }
    }

    /// Copies `path` (relative to `workdir`, or absolute) from `host` to the same
    /// relative path here. Only that path is taken, as a file or a directory: by
    /// rsync, which checks what it receives against what it asked for, or by tar,
    /// whose archive is read member by member ([`Unpacked`]). A link on the host
    /// comes as what it points to, by either. A path that is not there fails.
    /// Ctrl-C (`cancel`) stops a transfer under way.
    pub fn fetch(
        &self,
        host: &Host,
        path: &[u8],
        workdir: &[u8],
        cancel: Option<&CancelToken>,
    ) -> Result<(), String> {
        let Some(name) = &host.login.host else {
            return Ok(());
        };
        let failed = |e: String| {
            format!(
                "cannot fetch {} from {}: {e}",
                String::from_utf8_lossy(path),
                host.login
            )
        };
        let wanted = RelativePath::parse(path).map_err(failed)?;
        let base: &[u8] = if wanted.absolute { b"/" } else { workdir };
        let rest = wanted.rest();
        if host.rsync && local_rsync() {
            // `/./` marks where the path to recreate here begins.
            let mut source = remote_path(&host.login, name);
            source.push(os_from_bytes(base));
            source.push("/./");
            source.push(os_from_bytes(&rest));
            let local = if wanted.absolute { "/" } else { "." };
            let cmd = self
                .rsync(&host.login)
                .arg("--copy-links")
                .arg("--")
                .arg(source)
                .arg(local);
            return checked(cmd.timeout(TRANSFER_TIMEOUT).output_until(cancel)).map_err(failed);
        }
        let dir = Unpacked::private_dir(&wanted).map_err(failed)?;
        let mut remote = b"tar -chf - -C ".to_vec();
        remote.extend_from_slice(&quote_backslash_bytes(base));
        remote.extend_from_slice(b" -- ");
        remote.extend_from_slice(&quote_backslash_bytes(&rest));
        let cmd = self
            .base(&host.login)
            .args(["--", name])
            .arg(os_from_bytes(&remote))
            .timeout(TRANSFER_TIMEOUT);
        // The archive waits on disk, in the private directory, not in memory.
        let mut archive = tempfile::tempfile_in(dir.path())
            .map_err(|e| failed(format!("cannot spool the archive: {e}")))?;
        let mut stderr = crate::process::Spool::default();
        let run = cmd
            .execute(&mut archive, &mut stderr, cancel)
            .map_err(|e| failed(crate::error_chain(&e)))?;
        if run.ending == crate::process::Ending::Cancelled {
            return Err(failed("cancelled".into()));
        }
        if run.ending != crate::process::Ending::Exited || !run.status.success() {
            let said = String::from_utf8_lossy(&stderr.tail(400)).trim().to_owned();
            return Err(failed(if run.ending == crate::process::Ending::TimedOut {
                format!(
                    "timed out after {}",
                    crate::process::format_duration(TRANSFER_TIMEOUT)
                )
            } else if said.is_empty() {
                format!("exit status {}", crate::process::returncode(run.status))
            } else {
                crate::lines::excerpt(&said, 200)
            }));
        }
        std::io::Seek::rewind(&mut archive)
            .map_err(|e| failed(format!("cannot read the archive back: {e}")))?;
        Unpacked::read(std::io::BufReader::new(archive), &wanted, dir)
            .and_then(|unpacked| unpacked.place(&wanted))
            .map_err(failed)
    }

    /// Removes `paths` (relative to `workdir`, or absolute) on `host`.
    pub fn remove(&self, host: &Host, paths: &[Vec<u8>], workdir: &[u8]) -> Result<(), String> {
        let Some(name) = &host.login.host else {
            return Ok(());
        };
        // Only what could have been sent or fetched: `--cleanup` of a refused
        // `../x` must not remove a file outside the work directory.
        let paths: Vec<Vec<u8>> = paths
            .iter()
            .filter_map(|p| RelativePath::parse(p).ok())
            .map(|p| p.to_bytes())
            .collect();
        if paths.is_empty() {
            return Ok(());
        }
        let mut script = b"cd -- ".to_vec();
        script.extend_from_slice(&quote_backslash_bytes(workdir));
        script.extend_from_slice(b" && rm -rf --");
        for path in &paths {
            script.push(b' ');
            script.extend_from_slice(&quote_backslash_bytes(path));
        }
        let cmd = self
            .base(&host.login)
            .args(["--", name])
            .arg(os_from_bytes(&script));
        checked(cmd.timeout(TRANSFER_TIMEOUT).output())
            .map_err(|e| format!("cannot clean up on {}: {e}", host.login))
    }

    /// `rsync` speaking through this run's `ssh` and master connection.
    fn rsync(&self, login: &SshLogin) -> Cmd {
        // rsync splits -e on spaces; the control directory is ours and has none, and
        // a user name with a space is no user name.
        let mut e = OsString::new();
        let words = self
            .command
            .iter()
            .map(OsString::from)
            .chain(self.options(login));
        for (i, word) in words.enumerate() {
            if i > 0 {
                e.push(" ");
            }
            e.push(word);
        }
        Cmd::new("rsync").args(["-a", "-R", "-s", "-e"]).arg(e)
    }
}

/// How long one file transfer or clean-up may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);

/// Whether this machine has `rsync` (asked once). `CONCUR_RSYNC=0` makes files go
/// by `tar` through `ssh` even so.
fn local_rsync() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        std::env::var_os("CONCUR_RSYNC").is_none_or(|v| v != "0")
            && Cmd::shell("command -v rsync")
                .output()
                .is_ok_and(|o| o.status.success())
    })
}

/// `[user@]host:` for rsync.
fn remote_path(login: &SshLogin, name: &str) -> OsString {
    let mut path = OsString::new();
    if let Some(user) = &login.user {
        path.push(user);
        path.push("@");
    }
    path.push(name);
    path.push(":");
    path
}

/// `Ok` for a command that exited 0; else its stderr's last words.
fn checked(
    output: Result<crate::process::Output, crate::process::ProcessError>,
) -> Result<(), String> {
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(crate::lines::excerpt(
            String::from_utf8_lossy(&out.stderr).trim(),
            200,
        )),
        Err(err) => Err(crate::error_chain(&err)),
    }
}

/// The shell line a remote job runs as: in its work directory and, when watched,
/// with a watcher that stops the job's process group once `ssh` lets it go.
///
/// sshd starts each session's command as a process group leader, so `kill 0` from
/// inside the session reaches the job and everything it started. The watcher reads
/// the session's stdin, which the local side holds open and never writes
/// ([`Input::Held`](crate::process::Input::Held)); end of input means the local `ssh`
/// is gone, or the session is closing. If the job's shell still runs, the group gets
/// SIGTERM, then SIGKILL after the grace period; if the job is over, what it left
/// behind gets SIGTERM. The job itself reads `/dev/null`, as local jobs do.
#[derive(Clone, Copy, Debug)]
pub struct RemoteLine<'a> {
    /// The command line, as it would run here.
    pub line: &'a [u8],
    /// Where it runs.
    pub workdir: &'a [u8],
    /// The grace between SIGTERM and SIGKILL, if the job is watched.
    pub watch: Option<Duration>,
}

impl RemoteLine<'_> {
    /// The text sent to the remote shell.
    ///
    /// ```
    /// use concur::process::runner::RemoteLine;
    ///
    /// let line = RemoteLine { line: b"echo hi", workdir: b"/tmp/w d", watch: None };
    /// assert_eq!(line.render(), b"cd -- /tmp/w\\ d || exit 255\necho hi");
    /// ```
    pub fn render(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(self.line.len() + 200);
        if let Some(grace) = self.watch {
            let grace = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
            text.extend_from_slice(
                format!(
                    "exec 3<&0 </dev/null\n\
                     {{ trap '' TERM; cat <&3 >/dev/null 2>&1; \
                     if kill -0 $$ 2>/dev/null; then kill -TERM 0; sleep {grace}; kill -KILL 0; \
                     else kill -TERM 0; fi; }} >/dev/null 2>&1 &\nexec 3<&-\n"
                )
                .as_bytes(),
            );
        }
        text.extend_from_slice(b"cd -- ");
        text.extend_from_slice(&quote_backslash_bytes(self.workdir));
        text.extend_from_slice(b" || exit 255\n");
        text.extend_from_slice(self.line);
        text
    }
}

/// Whether a host takes jobs.
#[derive(Clone, Debug)]
enum Health {
    Up,
    /// Taken out of the `--slf` file: it runs no more jobs.
    Retired,
    /// Lost; tried again at `retry_at`, each failure doubling `backoff`.
    Down {
        error: String,
        retry_at: Instant,
        backoff: Duration,
    },
}

/// The first wait before a lost host is tried again, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One machine of a run: its login, job slots, run directory and health.
#[derive(Debug)]
pub struct Host {
    /// How it was named.
    pub login: SshLogin,
    /// Jobs at once there.
    pub slots: usize,
    /// The directory made there for this run (empty for this machine).
    pub run_dir: Vec<u8>,
    /// Whether it has `rsync` (else files go by `tar` over `ssh`).
    pub rsync: bool,
    health: Mutex<Health>,
}

impl Host {
    /// This machine, with `slots` job slots.
    pub fn local(login: SshLogin, slots: usize) -> Self {
        Self {
            login,
            slots,
            run_dir: Vec::new(),
            rsync: false,
            health: Mutex::new(Health::Up),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether it takes jobs now.
    pub fn is_up(&self) -> bool {
        matches!(*self.health(), Health::Up)
    }

    /// Its error while it is down.
    pub fn error(&self) -> Option<String> {
        match &*self.health() {
            Health::Up | Health::Retired => None,
            Health::Down { error, .. } => Some(error.clone()),
        }
    }

    /// Whether it was taken out of the run (its workers end).
    pub fn is_retired(&self) -> bool {
        matches!(*self.health(), Health::Retired)
    }

    /// Takes it out of the run: it starts no more jobs. Returns whether it was in.
    pub fn retire(&self) -> bool {
        let mut health = self.health();
        let was_in = !matches!(*health, Health::Retired);
        *health = Health::Retired;
        was_in
    }

    /// Marks it lost with `error`; it is tried again after a back-off. Returns
    /// whether it was up until now (so the loss is reported once).
    pub fn mark_down(&self, error: String) -> bool {
        let mut health = self.health();
        let was_up = matches!(*health, Health::Up);
        if was_up {
            *health = Health::Down {
                error,
                retry_at: Instant::now() + FIRST_BACKOFF,
                backoff: FIRST_BACKOFF,
            };
        }
        was_up
    }

    /// If it is down and its back-off has passed, opens a new master connection.
    /// Returns when it may next be tried (`None`: it is up). One caller at a time
    /// tries; the lock is not held while it does, so others are never stalled by a
    /// slow host.
    pub fn revive(&self, ssh: &Ssh) -> Option<Instant> {
        let backoff = {
            let mut health = self.health();
            let Health::Down {
                retry_at, backoff, ..
            } = &mut *health
            else {
                return None;
            };
            let now = Instant::now();
            if now < *retry_at {
                return Some(*retry_at);
            }
            // Claim this try: the others wait for the next back-off.
            let next = (*backoff * 2).min(MAX_BACKOFF);
            *backoff = next;
            *retry_at = now + next;
            next
        };
        ssh.stop_master(&self.login);
        let started = ssh.start_master(&self.login, Duration::from_secs(10));
        let mut health = self.health();
        match (started, &mut *health) {
            (_, Health::Up | Health::Retired) => None,
            (Ok(()), health) => {
                *health = Health::Up;
                None
            }
            (
                Err(err),
                Health::Down {
                    error, retry_at, ..
                },
            ) => {
                *error = err;
                *retry_at = Instant::now() + backoff;
                Some(*retry_at)
            }
        }
    }
}

/// Where a run's remote jobs run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Workdir {
    /// A directory made for this run on each host, removed at the end (the default).
    #[default]
    RunDir,
    /// This directory on every host (relative to the login directory unless
    /// absolute), made if missing and kept.
    Path(Vec<u8>),
}

/// The machines of a run, each job slot bound to one; master connections and run
/// directories are closed and removed when this is dropped.
#[derive(Debug)]
pub struct Hosts {
    hosts: Mutex<Vec<Arc<Host>>>,
    /// How `ssh` is run.
    pub ssh: Ssh,
    /// Where jobs run on each host.
    pub workdir: Workdir,
    /// How many jobs a host without `N/` runs (default: its cores).
    jobs: Option<JobCount>,
    /// Holds the masters' sockets; removed last.
    _control_dir: Option<tempfile::TempDir>,
}

impl Hosts {
    /// Opens one master connection per login and asks each host what it has. A
    /// host that cannot be reached is named through `report` and skipped; with
    /// none left, the error names each host's. When `cancel` fires (Ctrl-C), the
    /// connections under way are given up at once, and it fails.
    pub fn connect(
        logins: Vec<SshLogin>,
        ssh_command: Vec<String>,
        jobs: Option<JobCount>,
        workdir: Workdir,
        report: &mut dyn FnMut(&str),
        cancel: Option<&CancelToken>,
    ) -> Result<Self, String> {
        // A short path: a socket's path must fit in about 100 bytes. Private (0700):
        // whoever can reach a master's socket can run commands on its host as us.
        // tempfile leaves a directory's mode to the umask (0755 under the usual 022).
        let dir = tempfile::Builder::new()
            .prefix("concur-ssh-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in("/tmp")
            .map_err(|e| format!("cannot make a directory for the SSH master connections: {e}"))?;
        let hosts = Hosts {
            hosts: Mutex::new(Vec::new()),
            ssh: Ssh {
                command: ssh_command,
                control_dir: dir.path().to_owned(),
            },
            workdir,
            jobs,
            _control_dir: Some(dir),
        };
        let mut unique: Vec<SshLogin> = Vec::new();
        for login in logins {
            if !unique.contains(&login) {
                unique.push(login);
            }
        }
        // Every host at once: a slow or dead one costs its timeout once, not per host.
        let opened: Vec<Result<Host, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = unique
                .iter()
                .map(|login| scope.spawn(|| hosts.open(login.clone(), cancel)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("the connection thread panicked".into()))
                })
                .collect()
        });
        if cancel.is_some_and(CancelToken::is_cancelled) {
            // A master that had just put itself in the background is closed too.
            for login in &unique {
                hosts.ssh.stop_master(login);
            }
            return Err("cancelled while connecting".into());
        }
        let mut errors = Vec::new();
        for (login, host) in unique.into_iter().zip(opened) {
            match host {
                Ok(host) => hosts.list().push(Arc::new(host)),
                Err(err) => {
                    report(&format!("{login} is unreachable, skipped: {err}"));
                    errors.push(format!("{login}: {err}"));
                }
            }
        }
        if hosts.is_empty() {
            return Err(format!("no host is reachable: {}", errors.join("; ")));
        }
        Ok(hosts)
    }

    /// Connects to one more host and gives it the next job slots. Returns its
    /// slot count.
    pub fn add(&self, login: SshLogin) -> Result<usize, String> {
        let host = self.open(login, None)?;
        let slots = host.slots;
        self.list().push(Arc::new(host));
        Ok(slots)
    }

    /// Opens the master connection to `login` and asks the host what it has.
    fn open(&self, login: SshLogin, cancel: Option<&CancelToken>) -> Result<Host, String> {
        let wanted = login.jobs;
        let slots_for = |cores: usize| match (wanted, self.jobs) {
            (Some(n), _) => n,
            (None, Some(count)) => count.resolve(cores).get(),
            (None, None) => cores,
        };
        let host = if login.is_local() {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            Host::local(login, slots_for(cores))
        } else {
            self.ssh
                .start_master_until(&login, Duration::from_secs(10), cancel)?;
            let workdir = match &self.workdir {
                Workdir::RunDir => None,
                Workdir::Path(path) => Some(path.as_slice()),
            };
            let probe = self
                .ssh
                .probe(&login, workdir, cancel)
                .inspect_err(|_| self.ssh.stop_master(&login))?;
            Host {
                slots: slots_for(probe.cores),
                run_dir: probe.run_dir,
                rsync: probe.rsync,
                login,
                health: Mutex::new(Health::Up),
            }
        };
        Ok(host)
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Host>>> {
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hosts connected.
    pub fn len(&self) -> usize {
        self.list().len()
    }

    /// Whether no host is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hosts, in slot order.
    pub fn all(&self) -> Vec<Arc<Host>> {
        self.list().clone()
    }

    /// Job slots in all.
    pub fn slots(&self) -> usize {
        self.list().iter().map(|h| h.slots).sum()
    }

    /// The host of job slot `slot` (1-based).
    pub fn for_slot(&self, slot: usize) -> Arc<Host> {
        let hosts = self.list();
        let mut left = slot.saturating_sub(1);
        for host in hosts.iter() {
            if left < host.slots {
                return Arc::clone(host);
            }
            left -= host.slots;
        }
        Arc::clone(&hosts[hosts.len() - 1])
    }

    /// With every host down (or retired): each lost one's error, for the message
    /// that ends the run.
    pub fn all_down(&self) -> Option<String> {
        let hosts = self.list();
        if hosts.iter().any(|h| h.is_up()) {
            return None;
        }
        let errors: Vec<String> = hosts
            .iter()
            .filter_map(|h| h.error().map(|e| format!("{}: {e}", h.login)))
            .collect();
        Some(errors.join("; "))
    }

    /// Brings the hosts in line with `logins` (a `--slf` file read again): connects
    /// to the new ones and retires those no longer listed. Returns the job slots
    /// added and removed, and a note for each host that could not join.
    pub fn update(&self, logins: &[SshLogin]) -> (usize, usize, Vec<String>) {
        let (mut added, mut removed, mut notes) = (0, 0, Vec::new());
        let present = self.all();
        for host in &present {
            if !logins.contains(&host.login) && host.retire() {
                removed += host.slots;
            }
        }
        for login in logins {
            if present.iter().any(|h| h.login == *login && !h.is_retired()) {
                continue;
            }
            match self.add(login.clone()) {
                Ok(slots) => added += slots,
                Err(err) => notes.push(format!("{login} is unreachable, not added: {err}")),
            }
        }
        (added, removed, notes)
    }

    /// The work directory of remote jobs on `host`.
    pub fn workdir_on<'a>(&'a self, host: &'a Host) -> &'a [u8] {
        match &self.workdir {
            Workdir::RunDir => &host.run_dir,
            Workdir::Path(path) => path,
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in self.list().iter().filter(|h| !h.login.is_local()) {
            if host.is_up() && !host.run_dir.is_empty() {
                let mut script = b"rm -rf -- ".to_vec();
                script.extend_from_slice(&quote_backslash_bytes(&host.run_dir));
                if let Some(name) = &host.login.host {
                    let _ = self
                        .ssh
                        .base(&host.login)
                        .args(["--", name])
                        .arg(os_from_bytes(&script))
                        .timeout(Duration::from_secs(10))
                        .output();
                }
            }
            self.ssh.stop_master(&host.login);
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
        let host = |spec: &str, slots| Arc::new(Host::local(spec.parse().unwrap(), slots));
        let hosts = Hosts {
            hosts: Mutex::new(vec![host("a", 2), host(":", 1)]),
            ssh: Ssh {
                command: vec!["ssh".into()],
                control_dir: PathBuf::from("/tmp"),
            },
            workdir: Workdir::RunDir,
            jobs: None,
            _control_dir: None,
        };
        assert_eq!(hosts.slots(), 3);
        let names: Vec<String> = (1..=3)
            .map(|s| hosts.for_slot(s).login.to_string())
            .collect();
        assert_eq!(names, ["a", "a", ":"]);
        assert_eq!(hosts.all_down(), None);
        for host in hosts.all() {
            assert!(host.mark_down(format!("{} fell", host.login)));
            assert!(!host.mark_down("again".into()), "a loss is reported once");
        }
        assert_eq!(hosts.all_down().as_deref(), Some("a: a fell; :: : fell"));
    }

    /// Whoever can reach a master's socket can run commands on its host as this user,
    /// so the directory holding the sockets is the user's alone, whatever the umask.
    #[test]
    fn the_control_directory_is_private() {
        let hosts = Hosts::connect(
            vec![":".parse().unwrap()],
            vec!["ssh".into()],
            None,
            Workdir::RunDir,
            &mut |_| {},
            None,
        )
        .unwrap();
        let mode = std::fs::metadata(&hosts.ssh.control_dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    /// The remote line changes to the work directory, and a watched one starts its
    /// watcher first, on lines of its own, so the job's line is untouched.
    #[test]
    fn remote_lines_keep_the_job_line_whole() {
        let line = RemoteLine {
            line: b"echo 'a b' $HOME",
            workdir: b"w",
            watch: Some(Duration::from_millis(1500)),
        }
        .render();
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.ends_with("\ncd -- w || exit 255\necho 'a b' $HOME"),
            "{text}"
        );
        assert!(text.contains("sleep 2;"), "the grace is rounded up: {text}");
        assert!(text.starts_with("exec 3<&0 </dev/null\n"), "{text}");
    }
}
