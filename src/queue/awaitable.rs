//! `AsyncClosableQueue`: the book's closable queue for async code, whose `get` and
//! `put` are awaited instead of blocking a thread.
//!
//! # How it works
//!
//! The state (items, closed flag, unfinished count) sits behind one `std` mutex that is
//! held only for a push or a pop, never across an `.await`. Waiting is done on three
//! [`tokio::sync::Notify`]s, in the order that cannot lose a wake-up: a waiter *first*
//! registers its `Notified` future (`enable`), *then* looks at the state under the
//! lock, and only then awaits. A change made under the lock is followed by a notify,
//! so a waiter that looked before the change was already registered and is woken, and
//! one that looks after it sees the change.
//!
//! Cancelling a `get` or `put` (dropping its future, e.g. under
//! `tokio::time::timeout` or `select!`) loses nothing: the item is not taken (or, for
//! `put`, not added and dropped with the future), and a wake-up the dropped future had
//! received is handed on to the next waiter by `Notify` itself.
//!
//! It shares with [`ClosableQueue`](super::ClosableQueue) what the caller sees: the
//! capacity rule (0 means unbounded, as Python's `maxsize=0`; at most 2^20),
//! [`Closed`] handing a refused item back, [`TryGet`] telling empty from closed, and
//! `task_done`/`join`.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::closable::{Closed, TooManyTaskDone, TryGet, capacity_for};

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Items put but not yet marked done: what `join` waits on.
    unfinished: usize,
}

/// A multi-producer, multi-consumer FIFO queue for async tasks that can be closed: the
/// book's `ClosableQueue` (item 55) for the coroutines of item 60, with the vocabulary
/// of Python's `asyncio.Queue` (`put`, `get`, `get_nowait`, `task_done`, `join`).
///
/// * `put(item).await` waits while the queue is full; on a closed queue it gives the
///   item back in [`Closed`].
/// * `get().await` waits for an item; `None` once the queue is closed and drained.
/// * Every method takes `&self`: share the queue in an `Arc`. The lock inside is never
///   held across an `.await`, so the queue may be used from any runtime's tasks, and
///   [`try_get`](Self::try_get), [`close`](Self::close) and the counters from threads.
/// * For a time limit, wrap `get` in `tokio::time::timeout`: a cancelled `get` takes
///   nothing.
///
/// ```
/// use std::sync::Arc;
/// use concur::queue::AsyncClosableQueue;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let queue = Arc::new(AsyncClosableQueue::bounded(2));
/// let producer = {
///     let queue = Arc::clone(&queue);
///     tokio::spawn(async move {
///         for n in 1..=5 {
///             queue.put(n).await.unwrap(); // waits while two items are queued
///         }
///         queue.close();
///     })
/// };
/// let mut sum = 0;
/// while let Some(n) = queue.get().await {
///     sum += n;
///     queue.task_done().unwrap();
/// }
/// producer.await.unwrap();
/// queue.join().await; // every item was marked done
/// assert_eq!(sum, 15);
/// assert_eq!(queue.put(6).await.unwrap_err().0, 6); // closed: the item comes back
/// # });
/// ```
pub struct AsyncClosableQueue<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    not_empty: Notify,
    not_full: Notify,
    all_done: Notify,
}

impl<T> fmt::Debug for AsyncClosableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("AsyncClosableQueue")
            .field("capacity", &self.capacity)
            .field("len", &state.items.len())
            .field("closed", &state.closed)
            .field("unfinished", &state.unfinished)
            .finish()
    }
}

impl<T> AsyncClosableQueue<T> {
    /// A queue holding at most `capacity` items (at most 2^20); 0 means no limit, as
    /// for [`ClosableQueue::bounded`](super::ClosableQueue::bounded) and Python's
    /// `asyncio.Queue(maxsize=0)`.
    ///
    /// ```
    /// use concur::queue::AsyncClosableQueue;
    ///
    /// assert_eq!(AsyncClosableQueue::<u8>::bounded(3).capacity(), 3);
    /// assert_eq!(AsyncClosableQueue::<u8>::bounded(0).capacity(), usize::MAX);
    /// ```
    pub fn bounded(capacity: usize) -> Self {
        Self::with_capacity(capacity_for(capacity).unwrap_or(usize::MAX))
    }

    /// A queue without a size limit.
    pub fn unbounded() -> Self {
        Self::with_capacity(usize::MAX)
    }

    fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                unfinished: 0,
            }),
            capacity,
            not_empty: Notify::new(),
            not_full: Notify::new(),
            all_done: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section leaves the state whole (a push, a pop, a count), so a
        // panic elsewhere while it was held cannot have broken it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most items it can hold (`usize::MAX` when unbounded).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds an item, waiting while the queue is full. Fails, handing the item back, if
    /// the queue is (or becomes, while waiting) closed.
    pub async fn put(&self, item: T) -> Result<(), Closed<T>> {
        let mut item = item;
        loop {
            let mut space = pin!(self.not_full.notified());
            space.as_mut().enable();
            match self.try_put(item) {
                Err(TryPut::Full(back)) => item = back,
                Err(TryPut::Closed(back)) => return Err(Closed(back)),
                Ok(()) => return Ok(()),
            }
            space.await;
        }
    }

    /// Adds an item if there is room now (Python's `put_nowait`), or says why not and
    /// hands it back.
    pub fn try_put(&self, item: T) -> Result<(), TryPut<T>> {
        let mut state = self.lock();
        if state.closed {
            return Err(TryPut::Closed(item));
        }
        if state.items.len() >= self.capacity {
            return Err(TryPut::Full(item));
        }
        state.items.push_back(item);
        state.unfinished += 1;
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest item, waiting until one arrives. Returns `None` once the queue
    /// is closed and drained.
    pub async fn get(&self) -> Option<T> {
        loop {
            let mut arrival = pin!(self.not_empty.notified());
            arrival.as_mut().enable();
            match self.try_get() {
                Ok(item) => return Some(item),
                Err(TryGet::Closed) => return None,
                Err(TryGet::Empty) => {}
            }
            arrival.await;
        }
    }

    /// Takes the oldest item if one is queued, without waiting (Python's
    /// `get_nowait`): [`TryGet::Empty`] when none is queued now, [`TryGet::Closed`]
    /// once the queue is closed and drained.
    pub fn try_get(&self) -> Result<T, TryGet> {
        let mut state = self.lock();
        match state.items.pop_front() {
            Some(item) => {
                drop(state);
                self.not_full.notify_one();
                Ok(item)
            }
            None if state.closed => Err(TryGet::Closed),
            None => Err(TryGet::Empty),
        }
    }

    /// Closes the queue: no more puts; consumers finish what is queued, then `get`
    /// returns `None`. Wakes every waiting `get` and `put`. Closing twice is harmless.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_waiters();
        self.not_full.notify_waiters();
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
        let all_done = state.unfinished == 0;
        drop(state);
        if all_done {
            self.all_done.notify_waiters();
        }
        Ok(())
    }

    /// Waits until every item ever put has been marked done.
    pub async fn join(&self) {
        loop {
            let mut done = pin!(self.all_done.notified());
            done.as_mut().enable();
            if self.lock().unfinished == 0 {
                return;
            }
            done.await;
        }
    }
}

/// Why [`AsyncClosableQueue::try_put`] did not add its item, which it hands back.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum TryPut<T> {
    /// The queue holds its capacity now.
    #[error("the queue is full")]
    Full(T),
    /// The queue is closed.
    #[error("put on a closed queue")]
    Closed(T),
}

impl<T> TryPut<T> {
    /// The item that was not added.
    pub fn into_inner(self) -> T {
        match self {
            TryPut::Full(item) | TryPut::Closed(item) => item,
        }
    }
}

impl<T> fmt::Debug for TryPut<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryPut::Full(_) => "Full(..)",
            TryPut::Closed(_) => "Closed(..)",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn try_get_and_try_put_tell_full_empty_and_closed_apart() {
        let queue = AsyncClosableQueue::bounded(1);
        assert_eq!(queue.try_get(), Err(TryGet::Empty));
        queue.try_put('a').unwrap();
        assert_eq!(queue.try_put('b'), Err(TryPut::Full('b')));
        queue.close();
        assert_eq!(queue.try_put('c'), Err(TryPut::Closed('c')));
        assert_eq!(queue.try_get(), Ok('a')); // closed, but not yet drained
        assert_eq!(queue.try_get(), Err(TryGet::Closed));
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test]
    async fn close_wakes_a_waiting_getter_and_a_waiting_putter() {
        let queue = Arc::new(AsyncClosableQueue::bounded(1));
        queue.put(1).await.unwrap();
        let putter = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.put(2).await }
        });
        let empty = Arc::new(AsyncClosableQueue::<u8>::unbounded());
        let getter = tokio::spawn({
            let empty = Arc::clone(&empty);
            async move { empty.get().await }
        });
        tokio::task::yield_now().await; // both are waiting (or about to: either way works)
        queue.close();
        empty.close();
        // Bounded waits, so a lost wake-up fails the test instead of hanging it.
        let limit = Duration::from_secs(30);
        let put = tokio::time::timeout(limit, putter)
            .await
            .expect("putter not woken");
        assert_eq!(put.unwrap(), Err(Closed(2)));
        let got = tokio::time::timeout(limit, getter)
            .await
            .expect("getter not woken");
        assert_eq!(got.unwrap(), None);
        assert_eq!(queue.get().await, Some(1)); // what was queued is still delivered
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_get_takes_nothing_and_a_later_put_reaches_the_next_getter() {
        let queue = Arc::new(AsyncClosableQueue::unbounded());
        let timed_out = tokio::time::timeout(Duration::from_secs(1), queue.get()).await;
        assert!(timed_out.is_err());
        let getter = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.get().await }
        });
        queue.put("late").await.unwrap();
        assert_eq!(getter.await.unwrap(), Some("late"));
    }

    #[test]
    fn many_producers_and_consumers_each_item_once_and_never_over_capacity() {
        const PRODUCERS: u64 = 8;
        const EACH: u64 = 5_000;
        let runtime = runtime();
        let queue = Arc::new(AsyncClosableQueue::bounded(4));
        let seen = runtime.block_on(async {
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let queue = Arc::clone(&queue);
                    tokio::spawn(async move {
                        for i in 0..EACH {
                            queue.put(p * EACH + i).await.unwrap();
                        }
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..6)
                .map(|_| {
                    let queue = Arc::clone(&queue);
                    tokio::spawn(async move {
                        let mut got = Vec::new();
                        while let Some(n) = queue.get().await {
                            assert!(queue.len() <= 4);
                            got.push(n);
                            queue.task_done().unwrap();
                        }
                        got
                    })
                })
                .collect();
            for producer in producers {
                producer.await.unwrap();
            }
            queue.join().await;
            queue.close();
            let mut seen = Vec::new();
            for consumer in consumers {
                seen.extend(consumer.await.unwrap());
            }
            seen
        });
        assert_eq!(seen.len() as u64, PRODUCERS * EACH);
        let distinct: HashSet<u64> = seen.into_iter().collect();
        assert_eq!(distinct, (0..PRODUCERS * EACH).collect());
    }

    #[test]
    fn puts_racing_close_are_either_refused_or_delivered() {
        let runtime = runtime();
        for _ in 0..200 {
            let queue = Arc::new(AsyncClosableQueue::bounded(2));
            let run = async {
                let putters: Vec<_> = (0..4)
                    .map(|p| {
                        let queue = Arc::clone(&queue);
                        tokio::spawn(async move {
                            let mut accepted = 0;
                            for i in 0..50 {
                                if queue.put(p * 100 + i).await.is_ok() {
                                    accepted += 1;
                                }
                            }
                            accepted
                        })
                    })
                    .collect();
                let getter = tokio::spawn({
                    let queue = Arc::clone(&queue);
                    async move {
                        let mut n = 0;
                        while queue.get().await.is_some() {
                            n += 1;
                        }
                        n
                    }
                });
                tokio::task::yield_now().await;
                queue.close();
                let mut accepted = 0;
                for putter in putters {
                    accepted += putter.await.unwrap();
                }
                (accepted, getter.await.unwrap())
            };
            // Bounded, so a lost wake-up fails the test instead of hanging it.
            let limited = runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(60), run).await });
            let (accepted, delivered) = limited.expect("a task was not woken");
            assert_eq!(accepted, delivered);
        }
    }

    #[tokio::test]
    async fn task_done_too_many_times_is_an_error() {
        let queue = AsyncClosableQueue::unbounded();
        queue.put(()).await.unwrap();
        queue.get().await.unwrap();
        queue.task_done().unwrap();
        assert_eq!(queue.task_done(), Err(TooManyTaskDone));
        queue.join().await;
    }
}
