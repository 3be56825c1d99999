//! Ctrl-C and SIGTERM as a [`CancelToken`], for every command that stops cleanly.

use std::thread::{self, JoinHandle};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::process::CancelToken;

/// What a second SIGINT or SIGTERM does once the first has fired the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SecondSignal {
    /// Nothing more: the command is already stopping, and stops in bounded time.
    Wait,
    /// Ends the process at once with 128 + its number, whatever is still running (a
    /// server whose shutdown waits on clients or on a stalled output).
    Exit,
}

/// While alive, SIGINT and SIGTERM fire its token (recording which signal) instead of
/// killing the process. Dropping it restores the default handling and joins its thread.
pub(crate) struct SignalCancel {
    token: CancelToken,
    /// With [`SignalCancel::install_with_hangup`]: fired by SIGHUP.
    hangup: Option<CancelToken>,
    handle: Handle,
    listener: Option<JoinHandle<()>>,
}

impl SignalCancel {
    /// Starts listening; `name` names the listening thread.
    pub(crate) fn install(name: &str) -> Result<Self> {
        Self::install_with(name, SecondSignal::Wait)
    }

    /// Starts listening, with `second` deciding what a second signal does.
    pub(crate) fn install_with(name: &str, second: SecondSignal) -> Result<Self> {
        Self::listen(name, second, None)
    }

    /// Starts listening, with SIGHUP firing a token of its own ([`Self::hangup`]):
    /// for `concur run`, where a hang-up starts no new job but lets the running ones
    /// finish, as in GNU parallel.
    pub(crate) fn install_with_hangup(name: &str) -> Result<Self> {
        let hangup = CancelToken::new().context("cannot create the hang-up pipe")?;
        Self::listen(name, SecondSignal::Wait, Some(hangup))
    }

    fn listen(name: &str, second: SecondSignal, hangup: Option<CancelToken>) -> Result<Self> {
        let token = CancelToken::new().context("cannot create the cancel pipe")?;
        let mut wanted = vec![SIGINT, SIGTERM];
        if hangup.is_some() {
            wanted.push(SIGHUP);
        }
        let mut signals = Signals::new(&wanted).context("cannot handle SIGINT and SIGTERM")?;
        let handle = signals.handle();
        let trigger = token.clone();
        let hung_up = hangup.clone();
        let listener = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for signal in signals.forever() {
                    if signal == SIGHUP {
                        if let Some(hangup) = &hung_up {
                            hangup.cancel_with(signal);
                        }
                    } else if !trigger.is_cancelled() {
                        trigger.cancel_with(signal);
                    } else if second == SecondSignal::Exit {
                        // Nothing is flushed: whatever waits (a stalled stdout) is what
                        // the user asked to abandon.
                        std::process::exit(128 + signal);
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(Self {
            token,
            hangup,
            handle,
            listener: Some(listener),
        })
    }

    /// With [`Self::install_with_hangup`]: the token SIGHUP fires.
    pub(crate) fn hangup(&self) -> Option<&CancelToken> {
        self.hangup.as_ref()
    }

    /// The token the signals fire.
    pub(crate) fn token(&self) -> &CancelToken {
        &self.token
    }

    /// The shell's exit status for the signal that fired: 128 + its number (130 for
    /// Ctrl-C, 143 for SIGTERM); 130 when the token fired without one.
    pub(crate) fn exit_status(&self) -> u8 {
        let signal = self.token.reason().unwrap_or(SIGINT);
        u8::try_from(128 + signal).unwrap_or(130)
    }
}

impl Drop for SignalCancel {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}
