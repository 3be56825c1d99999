//! `ClosableQueue`: the book's bounded, closable, joinable queue.
//!
//! # How it works
//!
//! Items travel through a lock-free ring from crossbeam-queue (`ArrayQueue` when
//! bounded, `SegQueue` when not), so a producer and a consumer that both keep busy never
//! touch a lock. Blocking, closing and joining are built around it here:
//!
//! * **Sleeping without lost wake-ups.** A thread that finds the ring full (or empty)
//!   spins briefly, then takes the mutex, registers in `waiting_putters` (or
//!   `waiting_getters`), issues a `SeqCst` fence, re-checks the ring, and only then
//!   waits on the condvar. The other side pushes (or pops), fences, and notifies if it
//!   sees a registered waiter. The two fences order "register, then check" against
//!   "change, then look for waiters": at least one side sees the other, so either the
//!   sleeper finds the change or the changer finds the sleeper (and, taking the mutex to
//!   notify, cannot slip in before the sleeper waits).
//! * **Closing without stranding items.** `putting` counts puts between their closed
//!   check and the end of their push. Consumers return `None` only when the queue is
//!   closed, `putting` is zero and the ring is empty, so a put that raced with `close`
//!   is either refused (the item comes back in [`Closed`]) or drained by a consumer.
//! * **`task_done` and `join`.** `unfinished` is an atomic counter; joiners register in
//!   `waiting_joiners` the same fenced way, and the mutex is taken only when the count
//!   reaches zero while someone joins.
//!
//! `tests/loom.rs` model-checks the protocol; under `--cfg concur_loom` the ring is a
//! mutex-guarded deque and the spinning is skipped.

use std::fmt;
use std::sync::PoisonError;

use crossbeam_utils::CachePadded;
use thiserror::Error;

use crate::shim::{AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, fence};

/// The largest capacity a bounded queue takes; larger requests get this much. A bounded
/// ring allocates its capacity up front.
pub(crate) const MAX_CAPACITY: usize = 1 << 20;

/// The capacity both closable queues give a request for `requested` items: `None`
/// (no limit) for 0, as Python's `maxsize=0`; otherwise at most [`MAX_CAPACITY`].
pub(crate) fn capacity_for(requested: usize) -> Option<usize> {
    (requested > 0).then(|| requested.min(MAX_CAPACITY))
}

/// `puts` layout: bits 0-23 count puts in flight, bit 24 is the closed flag, and the
/// bits above count getters asleep.
const PUTTING: u64 = 1;
const PUTTING_MASK: u64 = (1 << 24) - 1;
const CLOSED: u64 = 1 << 24;
const GETTER: u64 = 1 << 25;

fn putting(word: u64) -> u64 {
    word & PUTTING_MASK
}

fn is_closed(word: u64) -> bool {
    word & CLOSED != 0
}

/// About one put in this many samples the length for [`ClosableQueue::peak_len`].
const PEAK_SAMPLE: u32 = 64;

/// Whether this put should sample the length: one in `PEAK_SAMPLE` per thread, counted
/// in a thread-local so that the decision touches no shared memory.
fn sample_peak() -> bool {
    #[cfg(not(concur_loom))]
    {
        thread_local!(static PUTS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        PUTS.with(|puts| {
            let n = puts.get().wrapping_add(1);
            puts.set(n);
            n % PEAK_SAMPLE == 1
        })
    }
    #[cfg(concur_loom)]
    true
}

/// A `put` on a closed queue; the item comes back so nothing is lost.
#[derive(Clone, PartialEq, Eq, Error)]
#[error("put on a closed queue")]
pub struct Closed<T>(pub T);

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

/// `task_done` was called more times than items were put, like Python's
/// `ValueError: task_done() called too many times`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("task_done() called more times than items were put")]
pub struct TooManyTaskDone;

/// The lock-free ring under the queue.
#[cfg(not(concur_loom))]
enum Ring<T> {
    Bounded(crossbeam_queue::ArrayQueue<T>),
    Unbounded(crossbeam_queue::SegQueue<T>),
}

#[cfg(not(concur_loom))]
impl<T> Ring<T> {
    fn new(capacity: Option<usize>) -> Self {
        match capacity {
            Some(capacity) => Ring::Bounded(crossbeam_queue::ArrayQueue::new(capacity)),
            None => Ring::Unbounded(crossbeam_queue::SegQueue::new()),
        }
    }

    fn push(&self, item: T) -> Result<(), T> {
        match self {
            Ring::Bounded(ring) => ring.push(item),
            Ring::Unbounded(ring) => {
                ring.push(item);
                Ok(())
            }
        }
    }

    fn pop(&self) -> Option<T> {
        match self {
            Ring::Bounded(ring) => ring.pop(),
            Ring::Unbounded(ring) => ring.pop(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Ring::Bounded(ring) => ring.len(),
            Ring::Unbounded(ring) => ring.len(),
        }
    }

    fn is_full(&self) -> bool {
        match self {
            Ring::Bounded(ring) => ring.is_full(),
            Ring::Unbounded(_) => false,
        }
    }
}

/// Under loom: a model of the ring with the same interface.
#[cfg(concur_loom)]
struct Ring<T> {
    items: Mutex<std::collections::VecDeque<T>>,
    capacity: usize,
}

#[cfg(concur_loom)]
impl<T> Ring<T> {
    fn new(capacity: Option<usize>) -> Self {
        Self {
            items: Mutex::new(std::collections::VecDeque::new()),
            capacity: capacity.unwrap_or(usize::MAX),
        }
    }

    fn lock(&self) -> MutexGuard<'_, std::collections::VecDeque<T>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, item: T) -> Result<(), T> {
        let mut items = self.lock();
        if items.len() >= self.capacity {
            return Err(item);
        }
        items.push_back(item);
        Ok(())
    }

    fn pop(&self) -> Option<T> {
        self.lock().pop_front()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_full(&self) -> bool {
        self.lock().len() >= self.capacity
    }
}

/// Yields, spins, then yields, a few times before a thread goes to sleep; skipped under
/// loom.
///
/// Each wait starts with `sched_yield`: the thread that would fill an empty ring (or
/// empty a full one) may be waiting for this very core. With more threads than cores
/// (three stages, a feeder and a collector on two cores), spinning first held the
/// core the other side needed: the no-op pipeline bench ran at 0.71x a raw crossbeam
/// chain, and at 1.41x with the yield first. With a core to spare, the yield finds
/// nothing else to run and returns at once.
struct Patience {
    #[cfg(not(concur_loom))]
    backoff: crossbeam_utils::Backoff,
}

impl Patience {
    fn new() -> Self {
        Self {
            #[cfg(not(concur_loom))]
            backoff: crossbeam_utils::Backoff::new(),
        }
    }

    /// Waits a little and returns true, or returns false when it is time to sleep.
    fn wait_a_little(&self) -> bool {
        #[cfg(not(concur_loom))]
        if !self.backoff.is_completed() {
            std::thread::yield_now();
            self.backoff.snooze();
            return true;
        }
        false
    }
}

/// Why [`ClosableQueue::try_get`] or [`get_timeout`](ClosableQueue::get_timeout)
/// returned no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryGet {
    /// Nothing is queued (now, or before the timeout).
    #[error("the queue is empty")]
    Empty,
    /// The queue is closed and drained: nothing will come.
    #[error("the queue is closed and drained")]
    Closed,
}

/// A multi-producer, multi-consumer FIFO queue that can be closed: the book's
/// `ClosableQueue` (item 55).
///
/// * `put` blocks while the queue is full (when it is bounded), which stops a fast stage
///   from exploding memory ahead of a slow one.
/// * `get` blocks until an item arrives, so workers never busy-wait for long: they spin
///   for a few microseconds, then sleep on a condvar.
/// * `close` ends the stream: consumers drain what is queued, then `get` returns `None`
///   and iteration ends. A later `put` hands its item back in [`Closed`].
/// * `task_done` and `join` track finished work, as Python's `Queue` does.
/// * [`shutdown_now`](Self::shutdown_now) is Python 3.13's
///   `shutdown(immediate=True)`, except that the dropped items are handed back.
///
/// Where the book puts a sentinel object per consumer, closing here is a flag that wakes
/// every waiter at once, so one `close` stops any number of workers. See the module
/// documentation for how it is built and model-checked.
///
/// ```
/// use concur::queue::ClosableQueue;
/// use std::thread;
///
/// let queue = ClosableQueue::bounded(2);
/// thread::scope(|s| {
///     s.spawn(|| {
///         for n in 0..5 {
///             queue.put(n).unwrap(); // blocks while two items wait
///         }
///         queue.close();
///     });
///     let got: Vec<i32> = queue.iter().collect();
///     assert_eq!(got, [0, 1, 2, 3, 4]);
/// });
/// queue.join(); // the iterator marked every item done
/// ```
pub struct ClosableQueue<T> {
    ring: Ring<T>,
    capacity: usize,
    // Each word on its own cache line. Producers update `puts` twice per put; getters
    // touch it only to sleep. Consumers check `waiting_putters` once per get.
    /// The producers' word: puts in flight (between their closed check and the end of
    /// their push), the closed flag, and getters asleep. One atomic, so that a put's
    /// closing read-modify-write also tells it whether a getter needs waking.
    puts: CachePadded<AtomicU64>,
    /// Items put but not yet marked done: what `join` waits on.
    unfinished: CachePadded<AtomicUsize>,
    /// The most items seen queued at once (sampled; see `peak_len`).
    peak: CachePadded<AtomicUsize>,
    waiting_putters: CachePadded<AtomicUsize>,
    waiting_joiners: CachePadded<AtomicUsize>,
    /// Whether puts count towards `unfinished` (see `without_join`).
    tracks_tasks: bool,
    /// Taken only to sleep on, or notify, the condvars below.
    lock: Mutex<()>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    /// Signalled when the last put in flight after a close finishes.
    quiet: Condvar,
}

impl<T> fmt::Debug for ClosableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosableQueue")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .field("unfinished", &self.unfinished.load(Ordering::SeqCst))
            .finish()
    }
}

impl<T> ClosableQueue<T> {
    /// A queue holding at most `capacity` items, at most 2^20 (a bounded ring
    /// allocates its capacity up front; larger requests get 2^20).
    ///
    /// As Python's `Queue(maxsize=0)`, a capacity of 0 means no limit: it is
    /// [`unbounded`](Self::unbounded). (A queue that holds nothing, a rendezvous, is
    /// not something this queue can be; crossbeam's `bounded(0)` channel is one.)
    ///
    /// ```
    /// use concur::queue::ClosableQueue;
    ///
    /// assert_eq!(ClosableQueue::<u8>::bounded(3).capacity(), 3);
    /// assert_eq!(ClosableQueue::<u8>::bounded(0).capacity(), usize::MAX);
    /// ```
    pub fn bounded(capacity: usize) -> Self {
        match capacity_for(capacity) {
            Some(capacity) => Self::with_ring(Ring::new(Some(capacity)), capacity),
            None => Self::unbounded(),
        }
    }

    /// A queue without a size limit (Python's `Queue()` with no `maxsize`).
    pub fn unbounded() -> Self {
        Self::with_ring(Ring::new(None), usize::MAX)
    }

    fn with_ring(ring: Ring<T>, capacity: usize) -> Self {
        Self {
            ring,
            capacity,
            puts: CachePadded::new(AtomicU64::new(0)),
            unfinished: CachePadded::new(AtomicUsize::new(0)),
            peak: CachePadded::new(AtomicUsize::new(0)),
            waiting_putters: CachePadded::new(AtomicUsize::new(0)),
            waiting_joiners: CachePadded::new(AtomicUsize::new(0)),
            tracks_tasks: true,
            lock: Mutex::new(()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            quiet: Condvar::new(),
        }
    }

    /// For queues nobody will `join` (the pipeline's own): puts skip the task count,
    /// one atomic read-modify-write less per item. `join` then returns at once and
    /// `task_done` reports [`TooManyTaskDone`].
    pub(crate) fn without_join(mut self) -> Self {
        self.tracks_tasks = false;
        self
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so poisoning means nothing here.
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep<'a>(&self, cv: &Condvar, guard: MutexGuard<'a, ()>) -> MutexGuard<'a, ()> {
        cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// After a change, wakes one sleeper registered in `waiting`, if there is one.
    ///
    /// The check is a read-modify-write that adds nothing, not a plain load: RMWs on one
    /// atomic are totally ordered, so either this one reads the sleeper's registration
    /// (and notifies), or the sleeper's registration reads this one, which then
    /// happens-before the sleeper's re-check of the ring, and the re-check sees the
    /// change. It needs no fence on the hot path.
    fn wake_one(&self, waiting: &AtomicUsize, cv: &Condvar) {
        if waiting.fetch_add(0, Ordering::SeqCst) > 0 {
            let _guard = self.lock();
            cv.notify_one();
        }
    }

    fn wake_all(&self) {
        let _guard = self.lock();
        self.not_empty.notify_all();
        self.not_full.notify_all();
        self.quiet.notify_all();
    }

    /// Marks `n` items finished; wakes joiners when none is left.
    fn finish(&self, n: usize) {
        if n > 0 && self.unfinished.fetch_sub(n, Ordering::SeqCst) == n {
            self.wake_joiners();
        }
    }

    /// After `unfinished` reached zero: wakes joiners, if any are registered. A queue
    /// that flows steadily reaches zero after nearly every item, so this must stay
    /// cheap when nobody joins.
    fn wake_joiners(&self) {
        fence(Ordering::SeqCst);
        if self.waiting_joiners.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock();
            self.all_done.notify_all();
        }
    }

    /// The most items it can hold (`usize::MAX` when unbounded).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds an item, blocking while the queue is full. Fails, handing the item back,
    /// if the queue is (or becomes, while waiting) closed.
    pub fn put(&self, item: T) -> Result<(), Closed<T>> {
        let word = self.puts.fetch_add(PUTTING, Ordering::SeqCst);
        let result = if is_closed(word) {
            Err(Closed(item))
        } else {
            self.push_blocking(item)
        };
        // Leaving: this read-modify-write also says whether a getter sleeps (it pairs
        // with the getter's registration on the same word; see the module docs), and
        // whether this was the last put in flight after a close.
        let word = self.puts.fetch_sub(PUTTING, Ordering::SeqCst);
        if is_closed(word) && putting(word) == 1 {
            // Consumers waiting for it to land (or not) can decide; shutdown_now can drain.
            self.wake_all();
        } else if result.is_ok() && word >= GETTER {
            let _guard = self.lock();
            self.not_empty.notify_one();
        }
        result
    }

    fn push_blocking(&self, mut item: T) -> Result<(), Closed<T>> {
        if self.tracks_tasks {
            // Counted before the push, so a consumer's task_done can never come first.
            self.unfinished.fetch_add(1, Ordering::SeqCst);
        }
        let patience = Patience::new();
        loop {
            match self.ring.push(item) {
                Ok(()) => {
                    // Reading the length touches the consumers' cache line, so the peak
                    // is sampled (about one put in PEAK_SAMPLE) instead of measured on
                    // every put; a full ring records the capacity below.
                    if sample_peak() {
                        self.peak.fetch_max(self.ring.len(), Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Err(back) => item = back,
            }
            self.peak.fetch_max(self.capacity, Ordering::Relaxed); // it was full
            if !patience.wait_a_little() {
                let guard = self.lock();
                self.waiting_putters.fetch_add(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                let guard = if self.is_closed() || !self.ring.is_full() {
                    guard
                } else {
                    self.sleep(&self.not_full, guard)
                };
                self.waiting_putters.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
            }
            if self.is_closed() {
                if self.tracks_tasks {
                    self.finish(1);
                }
                return Err(Closed(item));
            }
        }
    }

    /// Takes the oldest item, blocking until one arrives. Returns `None` once the queue
    /// is closed and drained.
    pub fn get(&self) -> Option<T> {
        self.get_until(None).ok()
    }

    /// Takes the oldest item if one is queued, without waiting (Python's
    /// `get_nowait`): [`TryGet::Empty`] when none is queued now, [`TryGet::Closed`]
    /// once the queue is closed and drained.
    pub fn try_get(&self) -> Result<T, TryGet> {
        if let Some(item) = self.take() {
            return Ok(item);
        }
        let word = self.puts.load(Ordering::SeqCst);
        if is_closed(word) && putting(word) == 0 {
            return self.take().ok_or(TryGet::Closed);
        }
        Err(TryGet::Empty)
    }

    /// [`get`](Self::get), waiting at most `timeout` (Python's `get(timeout=…)`):
    /// [`TryGet::Empty`] when nothing came in time, [`TryGet::Closed`] once the queue
    /// is closed and drained.
    pub fn get_timeout(&self, timeout: std::time::Duration) -> Result<T, TryGet> {
        self.get_until(Some(std::time::Instant::now() + timeout))
    }

    /// The one waiting loop of `get` (no deadline: never [`TryGet::Empty`]) and
    /// `get_timeout`.
    fn get_until(&self, deadline: Option<std::time::Instant>) -> Result<T, TryGet> {
        let patience = Patience::new();
        loop {
            match self.try_get() {
                Err(TryGet::Empty) => {}
                done => return done,
            }
            let left = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(TryGet::Empty);
                    }
                    Some(left)
                }
                None => None,
            };
            if patience.wait_a_little() {
                continue;
            }
            let guard = self.lock();
            let word = self.puts.fetch_add(GETTER, Ordering::SeqCst);
            // Every put that got past its closed check has finished once `putting` is
            // 0: what is in the ring then is all there will ever be.
            let ready = self.ring.len() > 0 || (is_closed(word) && putting(word) == 0);
            let guard = match (ready, left) {
                (true, _) => guard,
                (false, None) => self.sleep(&self.not_empty, guard),
                (false, Some(left)) => self
                    .not_empty
                    .wait_timeout(guard, left)
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard),
            };
            self.puts.fetch_sub(GETTER, Ordering::SeqCst);
            drop(guard);
        }
    }

    fn take(&self) -> Option<T> {
        let item = self.ring.pop()?;
        self.wake_one(&self.waiting_putters, &self.not_full);
        Some(item)
    }

    /// Closes the queue: no more puts; consumers finish what is queued, then stop.
    /// Closing twice is harmless.
    pub fn close(&self) {
        self.puts.fetch_or(CLOSED, Ordering::SeqCst);
        self.wake_all();
    }

    /// Closes the queue *and* empties it at once, returning the items that were still
    /// waiting (Python 3.13's `shutdown(immediate=True)`, minus the data loss). Every
    /// blocked `get`, `put` and `join` returns: the removed items count as done.
    pub fn shutdown_now(&self) -> Vec<T> {
        self.close();
        // Puts in flight either fail now or finish their push; wait for them, so that
        // nothing lands after the drain.
        let mut guard = self.lock();
        while putting(self.puts.load(Ordering::SeqCst)) > 0 {
            guard = self.sleep(&self.quiet, guard);
        }
        drop(guard);
        let mut removed = Vec::new();
        while let Some(item) = self.ring.pop() {
            removed.push(item);
        }
        self.finish(removed.len());
        removed
    }

    /// Whether [`close`](Self::close) (or `shutdown_now`) was called.
    pub fn is_closed(&self) -> bool {
        is_closed(self.puts.load(Ordering::SeqCst))
    }

    /// Items waiting to be taken.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items seen waiting at once: the capacity if a put ever found the queue
    /// full, otherwise the largest length sampled (about one put in 64 looks). Never
    /// more than the capacity.
    pub fn peak_len(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Marks one item taken with `get` as finished.
    pub fn task_done(&self) -> Result<(), TooManyTaskDone> {
        let before = self
            .unfinished
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| TooManyTaskDone)?;
        if before == 1 {
            self.wake_joiners();
        }
        Ok(())
    }

    /// Blocks until every item ever put has been marked done (or removed by
    /// `shutdown_now`).
    pub fn join(&self) {
        let mut guard = self.lock();
        self.waiting_joiners.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        while self.unfinished.load(Ordering::SeqCst) > 0 {
            guard = self.sleep(&self.all_done, guard);
        }
        self.waiting_joiners.fetch_sub(1, Ordering::SeqCst);
    }

    /// Iterates until the queue is closed and drained, marking each item done when the
    /// next one is requested (or the iterator is dropped), like the book's `__iter__`.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            queue: self,
            holding: false,
        }
    }
}

/// The consuming iterator of a [`ClosableQueue`]; see [`ClosableQueue::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    queue: &'a ClosableQueue<T>,
    /// Whether the last item handed out is still to be marked done.
    holding: bool,
}

impl<T> Iter<'_, T> {
    fn finish_held(&mut self) {
        if std::mem::take(&mut self.holding) {
            // Cannot fail: this iterator took the item, so it was counted when put.
            let _ = self.queue.task_done();
        }
    }
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.finish_held();
        let item = self.queue.get()?;
        self.holding = true;
        Some(item)
    }
}

impl<T> Drop for Iter<'_, T> {
    fn drop(&mut self) {
        self.finish_held();
    }
}

impl<'a, T> IntoIterator for &'a ClosableQueue<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

#[cfg(all(test, not(concur_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn put_after_close_gives_the_item_back() {
        let q = ClosableQueue::bounded(4);
        q.put(1).unwrap();
        q.close();
        assert_eq!(q.put(2), Err(Closed(2)));
        assert_eq!(q.get(), Some(1));
        assert_eq!(q.get(), None);
    }

    #[test]
    fn close_wakes_a_blocked_putter_with_its_item() {
        let q = ClosableQueue::bounded(1);
        q.put("first").unwrap();
        thread::scope(|s| {
            let putter = s.spawn(|| q.put("second"));
            // Whether the putter is already waiting or not, close must release it.
            thread::sleep(Duration::from_millis(20));
            q.close();
            assert_eq!(putter.join().unwrap(), Err(Closed("second")));
        });
    }

    #[test]
    fn capacity_is_clamped() {
        assert_eq!(ClosableQueue::<u8>::bounded(0).capacity(), usize::MAX);
    }

    #[test]
    fn try_get_and_get_timeout_tell_empty_from_closed() {
        let q = ClosableQueue::bounded(2);
        assert_eq!(q.try_get(), Err(TryGet::Empty));
        let waited = std::time::Instant::now();
        assert_eq!(
            q.get_timeout(std::time::Duration::from_millis(30)),
            Err(TryGet::Empty)
        );
        assert!(waited.elapsed() >= std::time::Duration::from_millis(30));
        q.put(7).unwrap();
        assert_eq!(q.try_get(), Ok(7));
        // An item put while a get_timeout waits ends the wait.
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                q.put(8).unwrap();
            });
            assert_eq!(q.get_timeout(std::time::Duration::from_secs(60)), Ok(8));
        });
        q.put(9).unwrap();
        q.close();
        assert_eq!(q.get_timeout(std::time::Duration::ZERO), Ok(9));
        assert_eq!(q.try_get(), Err(TryGet::Closed));
        assert_eq!(
            q.get_timeout(std::time::Duration::from_secs(60)),
            Err(TryGet::Closed)
        );
        assert_eq!(
            ClosableQueue::<u8>::bounded(usize::MAX).capacity(),
            MAX_CAPACITY
        );
    }

    #[test]
    fn puts_racing_close_are_either_refused_or_delivered() {
        // Many producers put while the queue closes under them: every item ends up
        // either handed back or received, never both and never neither.
        for _ in 0..50 {
            let q = ClosableQueue::bounded(4);
            let received = AtomicUsize::new(0);
            let refused = AtomicUsize::new(0);
            thread::scope(|s| {
                s.spawn(|| {
                    for _ in &q {
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                });
                for _ in 0..4 {
                    s.spawn(|| {
                        for i in 0..100 {
                            if q.put(i).is_err() {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    });
                }
                thread::sleep(Duration::from_micros(200));
                q.close();
            });
            assert_eq!(received.into_inner() + refused.into_inner(), 400);
        }
    }

    #[test]
    fn bounded_put_waits_for_space_and_peak_never_exceeds_capacity() {
        let q = ClosableQueue::bounded(3);
        let taken = AtomicUsize::new(0);
        thread::scope(|s| {
            s.spawn(|| {
                for n in 0..1000 {
                    q.put(n).unwrap();
                }
                q.close();
            });
            for _ in &q {
                taken.fetch_add(1, Ordering::SeqCst);
            }
        });
        assert_eq!(taken.into_inner(), 1000);
        assert!(
            q.peak_len() <= 3 && q.peak_len() >= 1,
            "peak {}",
            q.peak_len()
        );
    }

    #[test]
    fn many_consumers_see_every_item_once_then_stop() {
        let q = ClosableQueue::bounded(8);
        let sum = AtomicUsize::new(0);
        let count = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for n in &q {
                        sum.fetch_add(n, Ordering::Relaxed);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            for n in 1..=1000 {
                q.put(n).unwrap();
            }
            q.join(); // all 1000 marked done by the iterators
            assert_eq!(count.load(Ordering::Relaxed), 1000);
            q.close();
        });
        assert_eq!(sum.into_inner(), 500_500);
    }

    #[test]
    fn task_done_too_many_times_is_an_error() {
        let q = ClosableQueue::unbounded();
        q.put(()).unwrap();
        assert_eq!(q.get(), Some(()));
        assert_eq!(q.task_done(), Ok(()));
        assert_eq!(q.task_done(), Err(TooManyTaskDone));
        q.join(); // nothing unfinished: returns at once
    }

    #[test]
    fn shutdown_now_returns_waiting_items_and_releases_everyone() {
        let q = ClosableQueue::bounded(2);
        q.put(1).unwrap();
        q.put(2).unwrap();
        thread::scope(|s| {
            let blocked_put = s.spawn(|| q.put(3));
            let joiner = s.spawn(|| q.join());
            thread::sleep(Duration::from_millis(20));
            let removed = q.shutdown_now();
            let rejected = blocked_put.join().unwrap();
            joiner.join().unwrap(); // the removed items count as done
            // Every item is accounted for: returned by shutdown, or handed back to its putter.
            let mut all = removed;
            if let Err(Closed(item)) = rejected {
                all.push(item);
            }
            all.sort_unstable();
            assert_eq!(all, [1, 2, 3]);
        });
        assert_eq!(q.get(), None);
    }
}
