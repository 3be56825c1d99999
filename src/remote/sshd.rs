//! A private `sshd` on the loopback interface, for the tour and the tests: generated
//! host and user keys in a temporary directory, a free port, and nothing reachable
//! from outside this machine. Stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where OpenSSH's server is installed on Debian.
const SSHD: &str = "/usr/sbin/sshd";

/// A running private sshd.
#[derive(Debug)]
pub struct LocalSshd {
    child: Child,
    /// The port it listens on, on every one of its addresses.
    pub port: u16,
    dir: tempfile::TempDir,
    /// The address waited on at start.
    address: String,
}

/// Starts sshd in the foreground on the config in `dir`.
fn spawn(dir: &Path) -> Result<Child, String> {
    // Privilege separation needs this directory when sshd runs as root.
    let _ = std::fs::create_dir_all("/run/sshd");
    Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {SSHD}: {e}"))
}

impl LocalSshd {
    /// Why a private sshd cannot be started here, if it cannot: the server, the
    /// client or `ssh-keygen` is missing.
    pub fn missing() -> Option<&'static str> {
        let found = |program: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !Path::new(SSHD).exists() {
            Some("sshd is not installed (apt-get install openssh-server)")
        } else if !found("ssh") || !found("ssh-keygen") {
            Some("ssh or ssh-keygen is not installed (apt-get install openssh-client)")
        } else {
            None
        }
    }

    /// Starts sshd on `addresses` (loopback addresses such as 127.0.0.2), and waits
    /// until it accepts connections.
    pub fn start(addresses: &[&str]) -> Result<Self, String> {
        if let Some(why) = Self::missing() {
            return Err(why.into());
        }
        let first = *addresses.first().ok_or("no address to listen on")?;
        let dir = tempfile::Builder::new()
            .prefix("concur-sshd-")
            .tempdir()
            .map_err(|e| format!("cannot make a directory for sshd: {e}"))?;
        for key in ["host_key", "user_key"] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(key))
                .status()
                .is_ok_and(|s| s.success());
            if !made {
                return Err(format!("ssh-keygen could not make {key}"));
            }
        }
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .map_err(|e| format!("cannot write authorized_keys: {e}"))?;
        // A free port (the race until sshd binds it is harmless here).
        let port = TcpListener::bind((first, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on {first}: {e}"))?
            .port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let listen: String = addresses
            .iter()
            .map(|a| format!("ListenAddress {a}\n"))
            .collect();
        let config = format!(
            "Port {port}\n{listen}HostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {}\n\
             LogLevel ERROR\nMaxStartups 200:30:400\nMaxSessions 200\n",
            path("host_key"),
            path("authorized_keys"),
            path("sshd.pid"),
        );
        std::fs::write(dir.path().join("sshd_config"), config)
            .map_err(|e| format!("cannot write sshd_config: {e}"))?;
        let child = spawn(dir.path())?;
        let mut sshd = LocalSshd {
            child,
            port,
            dir,
            address: addresses[addresses.len() - 1].to_owned(),
        };
        sshd.wait_until_listening()?;
        Ok(sshd)
    }

    /// Starts it again, on the same addresses, port and keys, after it was killed
    /// (a machine coming back).
    pub fn restart(&mut self) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.dir.path())?;
        self.wait_until_listening()
    }

    fn wait_until_listening(&mut self) -> Result<(), String> {
        let start = Instant::now();
        while TcpStream::connect((self.address.as_str(), self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("sshd exited at start ({status})"));
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err("sshd did not accept connections within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The `--ssh` command for this server: its user key, no host-key prompts.
    pub fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.dir.path().join("user_key").display()
        )
    }

    /// The login `N/host:port` for `host`, one of its addresses.
    pub fn login(&self, host: &str, jobs: usize) -> String {
        format!("{jobs}/{host}:{}", self.port)
    }

    /// Its directory: keys, `authorized_keys`, config.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The listener's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the listener after it was killed from outside.
    pub fn reap(&mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for LocalSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
