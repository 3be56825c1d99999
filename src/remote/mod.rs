//! Other machines, over OpenSSH (items 52 and 64 past one machine): the system `ssh`
//! client, one master connection per host (`ControlMaster`, in a private directory),
//! and each job or worker one multiplexed session on it. `concur run -S` runs jobs this
//! way, as GNU parallel does ([`crate::runner`]); `concur gcd --hosts` starts its
//! pool's workers this way ([`crate::parallel::pool`]).
//!
//! * [`login`](SshLogin): GNU parallel's `[N/][user@]host[:port]`, and `--slf` files;
//! * [`Ssh`]: how `ssh` is run, the master connection and the probe of a new host, a
//!   job's [`RemoteLine`], and file transfers (by rsync, or by tar through
//!   [`transfer`], which reads a host's archive as hostile);
//! * [`Hosts`]: the machines of a run, each job slot bound to one. A host is
//!   [`Hosts::connect`]ed once per run: master connection, then one session that asks
//!   for its cores, makes a run directory and looks for `rsync`. A host lost during the
//!   run is [`Host::mark_down`]; [`Host::revive`] tries a new master after a back-off
//!   (1 s, doubling, at most 60 s);
//! * [`sshd`]: a private loopback sshd with generated keys, for the tour and the tests.
//!
//! A job's command line is the one that would run here, with its arguments already
//! quoted; it goes to `ssh` as one argument, so the remote shell reads it exactly once,
//! as the local one would have.

pub mod agent;
mod hosts;
mod login;
mod ssh;
// A private sshd for the test suite; not part of the API.
#[doc(hidden)]
pub mod sshd;
pub mod transfer;

pub use hosts::{Host, Hosts, Joined, Joining, SlotRule, Workdir};
pub use login::{LoginFile, MAX_LOGIN_FILE, SshLogin, read_login_file};
pub use ssh::{RemoteLine, Ssh};
