//! Talking to one machine through the system `ssh`: the options every call shares,
//! the master connection, the probe of a new host, the remote line of a job, and file
//! transfers (by rsync, or by tar through [`super::transfer`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::hosts::Host;
use super::login::SshLogin;
use super::transfer::{RelativePath, Unpacked};
use crate::process::{CancelToken, Cmd, quote_backslash_bytes};

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
pub(super) struct Probe {
    pub(super) cores: usize,
    pub(super) run_dir: Vec<u8>,
    pub(super) rsync: bool,
}

impl Ssh {
    /// `ssh` with the options every call shares: batch mode (never a password
    /// prompt), the master's socket, the port and the user.
    pub(super) fn base(&self, login: &SshLogin) -> Cmd {
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
    pub(super) fn start_master_until(
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
    pub(super) fn probe(
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
    /// stopped too. A job that reads its own stdin (`--pipe`) cannot be watched so:
    /// give it a `pid_file` instead, and [`stop_group`](Self::stop_group) it.
    #[allow(clippy::too_many_arguments)]
    pub fn wrap(
        &self,
        host: &Host,
        line: &[u8],
        workdir: &[u8],
        watch: Option<Duration>,
        pid_file: Option<&[u8]>,
        env: &[(String, Vec<u8>)],
        create: bool,
    ) -> Cmd {
        let login = &host.login;
        match &login.host {
            None => Cmd::shell(std::os::unix::ffi::OsStrExt::from_bytes(line) as &std::ffi::OsStr),
            Some(name) => {
                let remote = RemoteLine {
                    line,
                    workdir,
                    watch,
                    pid_file,
                    env,
                    create,
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

    /// Stops, from a session of its own over the master connection, the process group
    /// of a job that was started with `pid_file` ([`RemoteLine::pid_file`]): SIGTERM,
    /// then SIGKILL if it is still there after `grace` (rounded up to whole seconds).
    /// Returns as soon as the group is gone (it looks every 0.1 s, or every second
    /// where `sleep` takes whole seconds only). Nothing is done if the job is over (its
    /// file is gone) or never wrote the file. This is how a job whose stdin is its data
    /// (`--pipe`), and so cannot be watched through it, is stopped on its host when it
    /// times out or the run is interrupted.
    pub fn stop_group(&self, host: &Host, pid_file: &[u8], grace: Duration) -> Result<(), String> {
        let file = quote_backslash_bytes(pid_file);
        let mut script = b"p=$(cat ".to_vec();
        script.extend_from_slice(&file);
        script.extend_from_slice(
            format!(
                " 2>/dev/null) && [ -n \"$p\" ] || exit 0\n\
                 kill -TERM -\"$p\" 2>/dev/null || exit 0\n\
                 n={}\n\
                 while kill -0 -\"$p\" 2>/dev/null; do\n\
                 if [ \"$n\" -le 0 ]; then kill -KILL -\"$p\" 2>/dev/null; break; fi\n\
                 sleep 0.1 2>/dev/null || {{ sleep 1; n=$((n - 9)); }}; n=$((n - 1))\n\
                 done\n\
                 rm -f ",
                whole_seconds(grace) * 10
            )
            .as_bytes(),
        );
        script.extend_from_slice(&file);
        let Some(name) = &host.login.host else {
            return Ok(());
        };
        let cmd = self
            .base(&host.login)
            .args(["--", name])
            .arg(os_from_bytes(&script))
            .timeout(grace + Duration::from_secs(30));
        checked(cmd.output()).map_err(|e| format!("cannot stop the job on {}: {e}", host.login))
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

    /// Runs `script` on `host` over its master connection, within the transfer
    /// timeout (nothing to do for this machine).
    fn run_script(&self, host: &Host, script: &[u8]) -> Result<(), String> {
        let Some(name) = &host.login.host else {
            return Ok(());
        };
        let cmd = self
            .base(&host.login)
            .args(["--", name])
            .arg(os_from_bytes(script));
        checked(cmd.timeout(TRANSFER_TIMEOUT).output())
    }

    /// Removes directory `dir` on `host`, whatever it holds (`--workdir ...`).
    pub fn remove_dir(&self, host: &Host, dir: &[u8]) -> Result<(), String> {
        let mut script = b"rm -rf -- ".to_vec();
        script.extend_from_slice(&quote_backslash_bytes(dir));
        self.run_script(host, &script)
    }

    /// Removes `paths` (relative to `workdir`, or absolute) on `host`.
    pub fn remove(&self, host: &Host, paths: &[Vec<u8>], workdir: &[u8]) -> Result<(), String> {
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
        self.run_script(host, &script)
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
    /// A file (on the host) to write the job's process group into first, and to
    /// remove when its shell exits, so that [`Ssh::stop_group`] can stop it from
    /// another session. For jobs that cannot be watched through stdin (`--pipe`).
    pub pid_file: Option<&'a [u8]>,
    /// Variables to set and export first (`--env`, `PARALLEL_SEQ`, …): name, value.
    /// A value that is an exported bash function (`() {…`) defines the function.
    pub env: &'a [(String, Vec<u8>)],
    /// Make the work directory first (`--workdir ...`: one per job).
    pub create: bool,
}

impl RemoteLine<'_> {
    /// The text sent to the remote shell.
    ///
    /// ```
    /// use concur::runner::RemoteLine;
    ///
    /// let env = [("V".to_owned(), b"a b".to_vec())];
    /// let line = RemoteLine {
    ///     line: b"echo hi",
    ///     workdir: b"/tmp/w d",
    ///     watch: None,
    ///     pid_file: None,
    ///     env: &env,
    ///     create: false,
    /// };
    /// assert_eq!(line.render(), b"V=a\\ b; export V\ncd -- /tmp/w\\ d || exit 255\necho hi");
    /// ```
    pub fn render(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(self.line.len() + 200);
        if let Some(file) = self.pid_file {
            // sshd makes the session's shell a process group leader: $$ is the group.
            text.extend_from_slice(b"concur_pid_file=");
            text.extend_from_slice(&quote_backslash_bytes(file));
            text.extend_from_slice(
                b"\necho $$ > \"$concur_pid_file\" || exit 255\n\
                  trap 'rm -f \"$concur_pid_file\"' EXIT\n",
            );
        }
        if let Some(grace) = self.watch {
            let grace = whole_seconds(grace);
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
        for (name, value) in self.env {
            if let Some(body) = value.strip_prefix(b"() {") {
                // An exported bash function (BASH_FUNC_name%%): define it again.
                let name = name
                    .strip_prefix("BASH_FUNC_")
                    .and_then(|n| n.strip_suffix("%%").or_else(|| n.strip_suffix("()")))
                    .unwrap_or(name);
                text.extend_from_slice(format!("{name}() {{").as_bytes());
                text.extend_from_slice(body);
                text.extend_from_slice(format!("\nexport -f {name} 2>/dev/null\n").as_bytes());
            } else {
                text.extend_from_slice(name.as_bytes());
                text.push(b'=');
                text.extend_from_slice(&quote_backslash_bytes(value));
                text.extend_from_slice(format!("; export {name}\n").as_bytes());
            }
        }
        if self.create {
            text.extend_from_slice(b"mkdir -p -- ");
            text.extend_from_slice(&quote_backslash_bytes(self.workdir));
            text.extend_from_slice(b" || exit 255\n");
        }
        text.extend_from_slice(b"cd -- ");
        text.extend_from_slice(&quote_backslash_bytes(self.workdir));
        text.extend_from_slice(b" || exit 255\n");
        text.extend_from_slice(self.line);
        text
    }
}

/// `grace` in whole seconds, rounded up (what `sleep` and a count of seconds take).
fn whole_seconds(grace: Duration) -> u64 {
    grace.as_secs() + u64::from(grace.subsec_nanos() > 0)
}

pub(super) fn os_from_bytes(bytes: &[u8]) -> OsString {
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
    fn remote_lines_keep_the_job_line_whole() {
        let line = RemoteLine {
            line: b"echo 'a b' $HOME",
            workdir: b"w",
            watch: Some(Duration::from_millis(1500)),
            pid_file: None,
            env: &[],
            create: false,
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

    #[test]
    fn a_pid_file_holds_the_shell_while_it_runs_and_is_removed_after() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job 1's.pgid");
        let line = RemoteLine {
            line: b"cat \"$concur_pid_file\"; exit 3",
            workdir: b".",
            watch: None,
            pid_file: Some(file.as_os_str().as_bytes()),
            env: &[],
            create: false,
        }
        .render();
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(&line))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "the job's status is kept");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
        assert!(!file.exists(), "removed when the shell exits");
    }

    #[test]
    fn env_values_and_functions_reach_the_remote_shell_intact() {
        use std::os::unix::ffi::OsStrExt;
        let env = [
            ("V".to_owned(), b"it's $HOME\nline 2".to_vec()),
            (
                "BASH_FUNC_greet%%".to_owned(),
                b"() {  echo hi \"$1\"\n}".to_vec(),
            ),
        ];
        let line = RemoteLine {
            line: b"greet \"$V\"",
            workdir: b".",
            watch: None,
            pid_file: None,
            env: &env,
            create: false,
        }
        .render();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(&line))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi it's $HOME\nline 2\n",
            "{}",
            String::from_utf8_lossy(&line)
        );
    }
}
