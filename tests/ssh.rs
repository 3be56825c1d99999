//! `concur run -S` against a real `sshd`, started by the tests on 127.0.0.2 and
//! 127.0.0.3 with generated keys. Nothing is sent outside the loopback range.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Dir, eventually};

/// A private sshd, killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: Dir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_sshd() -> bool {
    std::env::var("CONCUR_REQUIRE_SSHD").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true")
}

impl Sshd {
    /// Starts sshd, or says in one line why not (a failure under CONCUR_REQUIRE_SSHD=1
    /// or CI=true).
    fn start() -> Option<Self> {
        let sshd = Path::new("/usr/sbin/sshd");
        let tools = sshd.exists() && which("ssh") && which("ssh-keygen");
        if !tools {
            assert!(
                !require_sshd(),
                "sshd, ssh and ssh-keygen are required (.ci/run installs openssh-server)"
            );
            eprintln!("skipped: sshd is not installed (apt-get install openssh-server)");
            return None;
        }
        let dir = Dir::new();
        for key in ["host_key", "user_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(key))
                .status()
                .unwrap();
            assert!(status.success(), "ssh-keygen failed");
        }
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // A free port on 127.0.0.2 (the race until sshd binds it is harmless here).
        let port = TcpListener::bind("127.0.0.2:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.2\nListenAddress 127.0.0.3\nHostKey {}\n\
             AuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {}\n\
             LogLevel ERROR\nMaxStartups 200:30:400\nMaxSessions 200\n",
            path("host_key"),
            path("authorized_keys"),
            path("sshd.pid"),
        );
        dir.create("sshd_config", config);
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sshd = Sshd { child, port, dir };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.3", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sshd)
    }

    /// The `--ssh` command for this server: its user key, no host-key prompts.
    fn ssh(&self) -> String {
        format!(
            "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.dir.path().join("user_key").display()
        )
    }

    fn login(&self, host: &str, jobs: usize) -> String {
        format!("{jobs}/{host}:{}", self.port)
    }
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Processes whose command line holds both pieces (the masters of a run).
fn processes_holding(a: &str, b: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    let cmdline = String::from_utf8_lossy(&cmdline);
                    cmdline.contains(a) && cmdline.contains(b)
                })
                .count()
        })
        .unwrap_or(0)
}

fn made_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// Jobs run on both hosts, each input exactly as it would run here (spaces, quotes,
/// `$`, backticks, a newline with -0, a non-UTF-8 byte), the joblog names the host,
/// and the master connections are gone after the run.
#[test]
fn jobs_run_on_every_host_with_inputs_intact() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    let work = Dir::new(); // where hostile input would create files if it ran
    let inputs: Vec<&[u8]> = vec![
        b"a  b",
        b"it's",
        b"\"q\"",
        b"$HOME `touch pw1`",
        b"$(touch pw2); touch pw3",
        b"two\nlines",
        b"caf\xe9",
    ];
    let mut stdin = Vec::new();
    for input in &inputs {
        stdin.extend_from_slice(input);
        stdin.push(0);
    }
    let script = format!("cd {} && printf '[%s]\\n' {{}}", work.path().display());
    let run = dir
        .concur([
            "run",
            "-0",
            "-k",
            "--joblog",
            "log",
            "--ssh",
            &sshd.ssh(),
            "-S",
        ])
        .arg(format!(
            "{},{}",
            sshd.login("127.0.0.2", 2),
            sshd.login("127.0.0.3", 1)
        ))
        .arg(&script)
        .stdin(stdin)
        .run()
        .expect_success();
    let mut expected = Vec::new();
    for input in &inputs {
        expected.push(b'[');
        expected.extend_from_slice(input);
        expected.extend_from_slice(b"]\n");
    }
    assert_eq!(run.output.stdout, expected, "{run}");
    assert!(
        made_files(work.path()).is_empty(),
        "input ran as code on the remote"
    );
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    for host in ["127.0.0.2", "127.0.0.3"] {
        assert!(
            log.lines()
                .skip(1)
                .any(|l| l.split('\t').nth(1) == Some(&format!("{host}:{}", sshd.port))),
            "no job logged on {host}:\n{log}"
        );
    }
    eventually("the master connections to close", || {
        processes_holding("ControlMaster=yes", "concur-ssh-") == 0
    });
}

/// A host that cannot be reached is reported once and skipped; with none left, the
/// run exits 255 naming each host's error.
#[test]
fn unreachable_hosts_are_skipped_and_none_left_is_255() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    // Nothing listens on port 1 of 127.0.0.3.
    let dead = "127.0.0.3:1";
    let run = dir
        .concur(["run", "-k", "--ssh", &sshd.ssh(), "-S", dead, "-S"])
        .arg(sshd.login("127.0.0.2", 1))
        .args(["echo", ":::", "x", "y"])
        .run()
        .expect_success()
        .expect_stderr("127.0.0.3:1 is unreachable, skipped");
    assert_eq!(run.stdout(), "x\ny\n");
    dir.concur(["run", "--ssh", &sshd.ssh(), "-S", dead, "echo", ":::", "x"])
        .run()
        .expect_code(255)
        .expect_stderr("no host is reachable: 127.0.0.3:1:");
}
