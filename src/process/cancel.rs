//! A cancellation signal that threads, channels and `poll(2)` can all wait on.

use std::io::{PipeReader, PipeWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender};

#[derive(Debug)]
struct Inner {
    cancelled: AtomicBool,
    /// Why: a signal number (`SIGINT` = 2, `SIGTERM` = 15), or 0 when cancelled in code.
    reason: AtomicI32,
    /// Readable once cancelled, so a `poll` loop can wait on it with its other fds.
    readable: PipeReader,
    writer: Mutex<Option<PipeWriter>>,
    /// Dropped on cancel, which wakes every `select!` on a [`CancelToken::subscribe`] receiver.
    notify: Mutex<Option<Sender<()>>>,
    subscribers: Receiver<()>,
}

/// A one-way switch: once [`cancel`](Self::cancel)led it stays cancelled. Clones share it.
///
/// Three ways to wait on it: [`is_cancelled`](Self::is_cancelled) for a quick check,
/// [`fd`](Self::fd) inside a `poll(2)` loop (the process code), and
/// [`subscribe`](Self::subscribe) inside a crossbeam `select!` (the job runner).
///
/// ```
/// use concur::process::CancelToken;
///
/// let token = CancelToken::new().unwrap();
/// let woken = token.subscribe();
/// assert!(!token.is_cancelled());
/// token.cancel_with(15);
/// assert!(woken.recv().is_err()); // ready at once: the channel is closed
/// assert_eq!(token.reason(), Some(15));
/// ```
#[derive(Clone, Debug)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl CancelToken {
    /// A token that is not cancelled yet. Fails only if the OS has no pipes left.
    pub fn new() -> std::io::Result<Self> {
        let (readable, writer) = std::io::pipe()?;
        let (notify, subscribers) = crossbeam_channel::bounded(0);
        Ok(Self {
            inner: Arc::new(Inner {
                cancelled: AtomicBool::new(false),
                reason: AtomicI32::new(0),
                readable,
                writer: Mutex::new(Some(writer)),
                notify: Mutex::new(Some(notify)),
                subscribers,
            }),
        })
    }

    /// Cancels, with no particular reason.
    pub fn cancel(&self) {
        self.cancel_with(0);
    }

    /// Cancels because of signal `signal` (recorded only by the first cancel).
    pub fn cancel_with(&self, signal: i32) {
        if self.inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.reason.store(signal, Ordering::SeqCst);
        if let Some(mut writer) = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            // One byte makes the read end readable for every poller; it is never read.
            let _ = writer.write_all(&[1]);
        }
        drop(
            self.inner
                .notify
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// The signal that cancelled it, if it was cancelled by a signal.
    pub fn reason(&self) -> Option<i32> {
        match self.inner.reason.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// A file descriptor that becomes readable when cancelled (for `poll(2)`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inner.readable.as_fd()
    }

    /// A receiver that becomes ready (disconnected) when cancelled, for `select!`.
    pub fn subscribe(&self) -> Receiver<()> {
        self.inner.subscribers.clone()
    }
}
