//! The machines of a run: their health, their job slots, their run directories, and
//! the master connections that [`Hosts`] opens and closes.

use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::agent::Agent;
use super::login::SshLogin;
use super::ssh::{Probe, Ssh, os_from_bytes};
use crate::process::{CancelToken, quote_backslash_bytes};

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
    /// `--basefile`s were sent there.
    based: Mutex<bool>,
    /// Its `--remote-agent` session, once started.
    agent: Mutex<Option<Arc<Agent>>>,
    /// Its run directory was removed (by its agent, at the end).
    removed: std::sync::atomic::AtomicBool,
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
            based: Mutex::new(false),
            agent: Mutex::new(None),
            removed: Default::default(),
        }
    }

    fn run_dir_removed(&self) {
        self.removed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn run_dir_gone(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Relaxed)
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

/// How many job slots a machine with so many cores gets (`-j` resolved against each
/// host's own cores).
pub type SlotRule = Arc<dyn Fn(usize) -> NonZeroUsize + Send + Sync>;

/// Where a run's remote jobs run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Workdir {
    /// A directory made for this run on each host, removed at the end (the default).
    #[default]
    RunDir,
    /// This directory on every host (relative to the login directory unless
    /// absolute), made if missing and kept.
    Path(Vec<u8>),
    /// `--workdir ...`: a directory of each job's own in the run's directory, made
    /// before the job and removed after it (and its `--return` files).
    PerJob,
}

/// The machines of a run, each job slot bound to one; master connections and run
/// directories are closed and removed when this is dropped.
pub struct Hosts {
    hosts: Mutex<Vec<Arc<Host>>>,
    /// How `ssh` is run.
    pub ssh: Ssh,
    /// Where jobs run on each host.
    pub workdir: Workdir,
    /// How many jobs a host without `N/` runs, from its cores (default: its cores).
    jobs: Option<SlotRule>,
    /// `--basefile`: sent to each host before its first job.
    pub basefiles: Vec<Vec<u8>>,
    /// `--cleanup`: the basefiles are removed at the end (with the run's own
    /// directory, they go with it anyway).
    pub cleanup_basefiles: bool,
    /// `--env`: variables set in every remote job (name, value).
    pub env: Vec<(String, Vec<u8>)>,
    /// `--remote-agent`: the `concur` executable on the hosts, run as `concur agent`
    /// once per host; jobs go to it instead of each being a session of its own.
    pub agent_program: Option<String>,
    /// Holds the masters' sockets; removed last.
    _control_dir: Option<tempfile::TempDir>,
    /// Whether dropping this closes the masters and removes the run directories
    /// (not for a view made by [`only`](Hosts::only)).
    owner: bool,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts")
            .field("hosts", &self.hosts)
            .field("ssh", &self.ssh)
            .field("workdir", &self.workdir)
            .finish_non_exhaustive()
    }
}

impl Hosts {
    /// Opens one master connection per login and asks each host what it has. A
    /// host that cannot be reached is named through `report` and skipped; with
    /// none left, the error names each host's. When `cancel` fires (Ctrl-C), the
    /// connections under way are given up at once, and it fails. With `agent` (the
    /// `concur` executable there), each host's agent is started too, and a host whose
    /// agent does not start is skipped as unreachable.
    pub fn connect(
        logins: Vec<SshLogin>,
        ssh_command: Vec<String>,
        jobs: Option<SlotRule>,
        workdir: Workdir,
        agent: Option<String>,
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
            basefiles: Vec::new(),
            cleanup_basefiles: false,
            env: Vec::new(),
            agent_program: agent,
            _control_dir: Some(dir),
            owner: true,
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

    /// Gives a host connected beside the run ([`Joining`]) the next job slots.
    /// Returns its slot count.
    pub fn admit(&self, host: Host) -> usize {
        let slots = host.slots;
        self.list().push(Arc::new(host));
        slots
    }

    /// Opens the master connection to `login` and asks the host what it has.
    fn open(&self, login: SshLogin, cancel: Option<&CancelToken>) -> Result<Host, String> {
        let wanted = login.jobs;
        let slots_for = |cores: usize| match (wanted, &self.jobs) {
            (Some(n), _) => n,
            (None, Some(rule)) => rule(cores).get(),
            (None, None) => cores,
        };
        let host = if login.is_local() {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            Host::local(login, slots_for(cores))
        } else {
            self.ssh
                .start_master_until(&login, Duration::from_secs(10), cancel)?;
            let workdir = match &self.workdir {
                Workdir::RunDir | Workdir::PerJob => None,
                Workdir::Path(path) => Some(path.as_slice()),
            };
            // With an agent, its one login also answers the probe.
            let (probe, agent) = match &self.agent_program {
                Some(_) => self.start_agent(&login, cancel).and_then(|agent| {
                    let prepared = agent.prepare(workdir)?;
                    let probe = Probe {
                        cores: prepared.cores,
                        run_dir: prepared.run_dir,
                        rsync: prepared.rsync,
                    };
                    Ok((probe, Some(agent)))
                }),
                None => self.ssh.probe(&login, workdir, cancel).map(|p| (p, None)),
            }
            .inspect_err(|_| self.ssh.stop_master(&login))?;
            Host {
                slots: slots_for(probe.cores),
                run_dir: probe.run_dir,
                rsync: probe.rsync,
                login,
                health: Mutex::new(Health::Up),
                based: Mutex::new(false),
                agent: Mutex::new(agent),
                removed: Default::default(),
            }
        };
        Ok(host)
    }

    /// Starts `concur agent` on `login`'s machine (`--remote-agent`).
    fn start_agent(
        &self,
        login: &SshLogin,
        cancel: Option<&CancelToken>,
    ) -> Result<Arc<Agent>, String> {
        let program = self
            .agent_program
            .as_deref()
            .ok_or("no --remote-agent for this run")?;
        let mut line = b"exec ".to_vec();
        line.extend_from_slice(&quote_backslash_bytes(program.as_bytes()));
        line.extend_from_slice(b" agent");
        let argv = self.ssh.argv(login, &line);
        Agent::start(&argv, Duration::from_secs(30), cancel)
            .map_err(|e| format!("its agent ({program} agent) did not start: {e}"))
    }

    /// `host`'s agent (`--remote-agent`): the one running, or a new one if there is
    /// none yet or its session ended. One at a time per host; the others of its slots
    /// wait for it.
    pub fn agent_for(
        &self,
        host: &Host,
        cancel: Option<&CancelToken>,
    ) -> Result<Arc<Agent>, String> {
        let mut slot = host.agent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(agent) = slot.as_ref().filter(|agent| !agent.is_lost()) {
            return Ok(agent.clone());
        }
        let agent = self.start_agent(&host.login, cancel)?;
        *slot = Some(agent.clone());
        Ok(agent)
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

    /// Brings the hosts in line with `logins` (a `--slf` file read again): retires
    /// those no longer listed, at once. Returns the job slots removed, and the logins
    /// that are new, for the caller to connect beside the run ([`Joining`]): connecting
    /// here would hold the caller for as long as a host takes not to answer.
    pub fn update(&self, logins: &[SshLogin]) -> (usize, Vec<SshLogin>) {
        let mut removed = 0;
        let present = self.all();
        for host in &present {
            if !logins.contains(&host.login) && host.retire() {
                removed += host.slots;
            }
        }
        let new = logins
            .iter()
            .filter(|login| {
                !present
                    .iter()
                    .any(|h| h.login == **login && !h.is_retired())
            })
            .cloned()
            .collect();
        (removed, new)
    }

    /// The work directory of remote jobs on `host`.
    pub fn workdir_on<'a>(&'a self, host: &'a Host) -> &'a [u8] {
        match &self.workdir {
            Workdir::RunDir | Workdir::PerJob => &host.run_dir,
            Workdir::Path(path) => path,
        }
    }

    /// Where job `seq` runs on `host`: [`workdir_on`](Self::workdir_on), or with
    /// [`Workdir::PerJob`] a directory of its own in the run's directory.
    pub fn workdir_for(&self, host: &Host, seq: usize) -> Vec<u8> {
        let mut dir = self.workdir_on(host).to_vec();
        if self.workdir == Workdir::PerJob {
            dir.extend_from_slice(format!("/job-{seq}").as_bytes());
        }
        dir
    }
}

/// A host connected beside the run: the login, and the host or why it could not be.
pub type Joined = (SshLogin, Result<Host, String>);

/// Hosts being connected while a run goes on (`--slf` files that gained a host): each
/// on a thread of its own, so that one that does not answer holds up nothing else. The
/// results come on [`receiver`](Self::receiver). Dropping this gives up the
/// connections still under way (at once: they are cancelled) and waits for their
/// threads; a host that connected meanwhile is admitted retired, so that its master and
/// run directory are closed and removed with the rest.
pub struct Joining {
    hosts: Arc<Hosts>,
    cancel: CancelToken,
    threads: Vec<(SshLogin, std::thread::JoinHandle<()>)>,
    sender: crossbeam_channel::Sender<Joined>,
    receiver: crossbeam_channel::Receiver<Joined>,
}

impl Joining {
    /// Connections to hosts of `hosts`.
    pub fn new(hosts: Arc<Hosts>) -> std::io::Result<Self> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Ok(Self {
            hosts,
            cancel: CancelToken::new()?,
            threads: Vec::new(),
            sender,
            receiver,
        })
    }

    /// Where the connected hosts (or their errors) come, one message per
    /// [`start`](Self::start); pass each to [`done`](Self::done).
    pub fn receiver(&self) -> &crossbeam_channel::Receiver<Joined> {
        &self.receiver
    }

    /// Whether `login` is being connected now.
    pub fn is_pending(&self, login: &SshLogin) -> bool {
        self.threads.iter().any(|(l, _)| l == login)
    }

    /// Starts connecting to `login` (unless that is under way already).
    pub fn start(&mut self, login: SshLogin) -> std::io::Result<()> {
        if self.is_pending(&login) {
            return Ok(());
        }
        let (hosts, cancel, sender) = (
            Arc::clone(&self.hosts),
            self.cancel.clone(),
            self.sender.clone(),
        );
        let name = login.clone();
        let thread = std::thread::Builder::new()
            .name(format!("connect {login}"))
            .spawn(move || {
                let opened = hosts.open(name.clone(), Some(&cancel));
                if opened.is_err() && cancel.is_cancelled() {
                    // A master that had just put itself in the background.
                    hosts.ssh.stop_master(&name);
                }
                let _ = sender.send((name, opened));
            })?;
        self.threads.push((login, thread));
        Ok(())
    }

    /// Reaps the thread that connected `login`, once its result came.
    pub fn done(&mut self, login: &SshLogin) {
        if let Some(at) = self.threads.iter().position(|(l, _)| l == login) {
            let (_, thread) = self.threads.swap_remove(at);
            let _ = thread.join();
        }
    }
}

impl Drop for Joining {
    fn drop(&mut self) {
        self.cancel.cancel();
        for (_, thread) in self.threads.drain(..) {
            let _ = thread.join();
        }
        while let Ok((_, opened)) = self.receiver.try_recv() {
            if let Ok(host) = opened {
                host.retire();
                self.hosts.admit(host);
            }
        }
    }
}

impl Hosts {
    /// Sends the `--basefile`s to `host` once, before its first job; later callers
    /// wait for the first to finish. The error names the file and the host.
    pub fn ensure_basefiles(
        &self,
        host: &Host,
        cancel: Option<&CancelToken>,
    ) -> Result<(), String> {
        if self.basefiles.is_empty() || host.login.is_local() {
            return Ok(());
        }
        let mut based = host.based.lock().unwrap_or_else(PoisonError::into_inner);
        if !*based {
            let workdir = self.workdir_on(host);
            for path in &self.basefiles {
                self.ssh.send(host, path, workdir, cancel)?;
            }
            *based = true;
        }
        Ok(())
    }
}

impl Hosts {
    /// A view of one of these hosts with `slots` job slots (`--onall`: each host runs
    /// the jobs on its own). It shares the master connection and run directory, and
    /// dropping it closes and removes nothing.
    pub fn only(&self, host: &Host, slots: usize) -> Hosts {
        let view = Host {
            login: host.login.clone(),
            slots: slots.max(1),
            run_dir: host.run_dir.clone(),
            rsync: host.rsync,
            health: Mutex::new(Health::Up),
            based: Mutex::new(false),
            agent: Mutex::new(None),
            removed: Default::default(),
        };
        Hosts {
            hosts: Mutex::new(vec![Arc::new(view)]),
            ssh: self.ssh.clone(),
            workdir: self.workdir.clone(),
            jobs: None,
            basefiles: self.basefiles.clone(),
            cleanup_basefiles: false,
            env: self.env.clone(),
            agent_program: self.agent_program.clone(),
            _control_dir: None,
            owner: false,
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Agents first: each ends its session, stopping nothing (the run is over). A
        // host's agent removes its run directory, sparing a login for that.
        let agents: Vec<_> = self
            .list()
            .iter()
            .map(|host| {
                let agent = host
                    .agent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                agent.filter(|agent| !agent.is_lost())
            })
            .collect();
        if !self.owner {
            return;
        }
        for (host, agent) in self.list().iter().zip(&agents) {
            if let Some(agent) = agent
                && host.is_up()
                && !host.run_dir.is_empty()
                && agent.remove(&host.run_dir).is_ok()
            {
                host.run_dir_removed();
            }
        }
        drop(agents);
        for host in self.list().iter().filter(|h| !h.login.is_local()) {
            let based = *host.based.lock().unwrap_or_else(PoisonError::into_inner);
            if based && self.cleanup_basefiles && matches!(self.workdir, Workdir::Path(_)) {
                let _ = self
                    .ssh
                    .remove(host, &self.basefiles, self.workdir_on(host));
            }
            // Up, or retired from the run (its master is still there): not lost.
            if host.error().is_none() && !host.run_dir.is_empty() && !host.run_dir_gone() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_to_hosts_in_order() {
        let host = |spec: &str, slots| Arc::new(Host::local(spec.parse().unwrap(), slots));
        let hosts = Hosts {
            hosts: Mutex::new(vec![host("a", 2), host(":", 1)]),
            ssh: Ssh {
                command: vec!["ssh".into()],
                control_dir: std::path::PathBuf::from("/tmp"),
            },
            workdir: Workdir::RunDir,
            jobs: None,
            basefiles: Vec::new(),
            cleanup_basefiles: false,
            env: Vec::new(),
            agent_program: None,
            _control_dir: None,
            owner: true,
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

    #[test]
    fn the_control_directory_is_private() {
        let hosts = Hosts::connect(
            vec![":".parse().unwrap()],
            vec!["ssh".into()],
            None,
            Workdir::RunDir,
            None,
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
}
