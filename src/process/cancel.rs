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
    /// Cancelled with it, for async code.
    #[cfg(feature = "async")]
    task: tokio_util::sync::CancellationToken,
    /// When it was cancelled.
    at: std::sync::OnceLock<std::time::Instant>,
}

/// A one-way switch: once [`cancel`](Self::cancel)led it stays cancelled. Clones share it.
///
/// Four ways to wait on it: [`is_cancelled`](Self::is_cancelled) for a quick check,
/// [`fd`](Self::fd) inside a `poll(2)` loop (the process code),
/// [`subscribe`](Self::subscribe) inside a crossbeam `select!` (the job runner), and
/// [`cancelled`](Self::cancelled) in async code (the async server).
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
/// assert!(token.cancelled_at().is_some());
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
                #[cfg(feature = "async")]
                task: tokio_util::sync::CancellationToken::new(),
                at: std::sync::OnceLock::new(),
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
        let _ = self.inner.at.set(std::time::Instant::now());
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
        #[cfg(feature = "async")]
        self.inner.task.cancel();
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// When it was cancelled, if it was: where a grace period that bounds a whole
    /// shutdown starts.
    pub fn cancelled_at(&self) -> Option<std::time::Instant> {
        self.inner.at.get().copied()
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

    /// Runs `work` (a blocking call that no signal interrupts: opening a FIFO that
    /// nobody has opened from the other end, reading one that nobody writes) on a
    /// thread of its own, and returns its result, or `None` as soon as this token is
    /// cancelled. In that case the thread is left behind, still blocked: it holds only
    /// what `work` holds, and the caller is expected to end the process soon.
    ///
    /// ```
    /// use concur::process::CancelToken;
    ///
    /// let token = CancelToken::new().unwrap();
    /// assert_eq!(token.unless_cancelled(|| 6 * 7), Some(42));
    /// token.cancel();
    /// let never = token.unless_cancelled(|| std::thread::sleep(std::time::Duration::MAX));
    /// assert_eq!(never, None);
    /// ```
    pub fn unless_cancelled<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        if self.is_cancelled() {
            return None;
        }
        let (done, result) = crossbeam_channel::bounded(1);
        // Shared, so that the work can still be done here if no thread can start.
        let work = Arc::new(Mutex::new(Some(work)));
        let theirs = Arc::clone(&work);
        let spawned = std::thread::Builder::new()
            .name("blocking-call".into())
            .spawn(move || {
                let work = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(work) = work {
                    let _ = done.send(work());
                }
            });
        if spawned.is_err() {
            let work = work.lock().unwrap_or_else(PoisonError::into_inner).take();
            return work.map(|work| work());
        }
        let cancelled = self.subscribe();
        crossbeam_channel::select! {
            recv(result) -> value => value.ok(),
            recv(cancelled) -> _ => None,
        }
    }

    #[cfg(feature = "async")]
    /// A future that completes when cancelled (with the `async` feature) (at once if it already is). It needs no
    /// runtime of its own, and owns what it waits on, so it can be spawned.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let token = concur::process::CancelToken::new().unwrap();
    /// let waiting = token.cancelled();
    /// token.cancel();
    /// runtime.block_on(waiting); // ready: the token was cancelled after the wait began
    /// ```
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.inner.task.clone().cancelled_owned()
    }
}
