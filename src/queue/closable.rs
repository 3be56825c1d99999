//! `ClosableQueue`: the book's bounded, closable, joinable queue.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use thiserror::Error;

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

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Items put but not yet marked done: what `join` waits on.
    unfinished: usize,
}

/// A multi-producer, multi-consumer FIFO queue that can be closed: the book's
/// `ClosableQueue` (item 55).
///
/// * `put` blocks while the queue is full (when it is bounded), which stops a fast stage
///   from exploding memory ahead of a slow one.
/// * `get` blocks until an item arrives, so workers never busy-wait.
/// * `close` ends the stream: consumers drain what is queued, then `get` returns `None`
///   and iteration ends. A later `put` hands its item back in [`Closed`].
/// * `task_done` and `join` track finished work, as Python's `Queue` does.
///
/// Where the book puts a sentinel object per consumer, closing here is a flag that wakes
/// every waiter at once, so one `close` stops any number of workers.
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
    capacity: usize,
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
}

impl<T> fmt::Debug for ClosableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ClosableQueue")
            .field("capacity", &self.capacity)
            .field("len", &state.items.len())
            .field("closed", &state.closed)
            .field("unfinished", &state.unfinished)
            .finish()
    }
}

impl<T> ClosableQueue<T> {
    /// A queue holding at most `capacity` items; a capacity of 0 is treated as 1.
    pub fn bounded(capacity: usize) -> Self {
        Self::with_capacity(capacity.max(1))
    }

    /// A queue without a size limit (Python's `Queue()` with no `maxsize`).
    pub fn unbounded() -> Self {
        Self::with_capacity(usize::MAX)
    }

    fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                unfinished: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is only changed in short sections that cannot panic half-way,
        // so a poisoned lock still guards a consistent queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, cv: &Condvar, guard: MutexGuard<'a, State<T>>) -> MutexGuard<'a, State<T>> {
        cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an item, blocking while the queue is full. Fails, handing the item back,
    /// if the queue is (or becomes, while waiting) closed.
    pub fn put(&self, item: T) -> Result<(), Closed<T>> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(Closed(item));
            }
            if state.items.len() < self.capacity {
                break;
            }
            state = self.wait(&self.not_full, state);
        }
        state.items.push_back(item);
        state.unfinished += 1;
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest item, blocking until one arrives. Returns `None` once the queue
    /// is closed and drained.
    pub fn get(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                drop(state);
                self.not_full.notify_one();
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state = self.wait(&self.not_empty, state);
        }
    }

    /// Closes the queue: no more puts; consumers finish what is queued, then stop.
    /// Closing twice is harmless.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Items waiting to be taken.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks one item taken with `get` as finished.
    pub fn task_done(&self) -> Result<(), TooManyTaskDone> {
        let mut state = self.lock();
        state.unfinished = state.unfinished.checked_sub(1).ok_or(TooManyTaskDone)?;
        if state.unfinished == 0 {
            self.all_done.notify_all();
        }
        Ok(())
    }

    /// Blocks until every item ever put has been marked done.
    pub fn join(&self) {
        let mut state = self.lock();
        while state.unfinished > 0 {
            state = self.wait(&self.all_done, state);
        }
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

#[cfg(test)]
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
    fn bounded_put_waits_for_space() {
        let q = ClosableQueue::bounded(1);
        let taken = AtomicUsize::new(0);
        thread::scope(|s| {
            s.spawn(|| {
                for n in 0..100 {
                    q.put(n).unwrap();
                    // At most one item can be waiting beyond what was taken.
                    assert!(n <= taken.load(Ordering::SeqCst) + 1);
                }
                q.close();
            });
            for item in &q {
                taken.fetch_add(1, Ordering::SeqCst);
                let _ = item;
            }
        });
        assert_eq!(taken.into_inner(), 100);
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
}
