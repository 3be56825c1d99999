//! Loom model checks of concur's hand-built primitives: every interleaving of a few
//! threads is explored, so a lost wake-up or a wrong count cannot hide in a lucky run.
//!
//! Run with `RUSTFLAGS="--cfg concur_loom" cargo test --release --test loom` (as
//! `.ci/run` does). Without that cfg this file is empty.
#![cfg(concur_loom)]
#![allow(clippy::unwrap_used)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use concur::queue::{ClosableQueue, Closed};
use concur::sync::LockingCounter;

#[test]
fn close_ends_iteration_after_the_queued_items_drain() {
    loom::model(|| {
        let q = Arc::new(ClosableQueue::bounded(1));
        let producer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                q.put(1).unwrap();
                q.put(2).unwrap(); // may block until the consumer takes 1
                q.close();
            })
        };
        let got: Vec<i32> = q.iter().collect();
        producer.join().unwrap();
        assert_eq!(got, [1, 2]);
        q.join(); // the iterator marked both done
    });
}

#[test]
fn join_returns_only_after_every_item_is_marked_done() {
    loom::model(|| {
        let q = Arc::new(ClosableQueue::unbounded());
        let processed = Arc::new(AtomicUsize::new(0));
        q.put(()).unwrap();
        q.put(()).unwrap();
        let worker = {
            let (q, processed) = (Arc::clone(&q), Arc::clone(&processed));
            thread::spawn(move || {
                for _ in 0..2 {
                    q.get().unwrap();
                    processed.fetch_add(1, Ordering::SeqCst);
                    q.task_done().unwrap();
                }
            })
        };
        q.join();
        assert_eq!(processed.load(Ordering::SeqCst), 2);
        worker.join().unwrap();
    });
}

#[test]
fn close_releases_a_blocked_putter_with_its_item_and_loses_nothing() {
    loom::model(|| {
        let q = Arc::new(ClosableQueue::bounded(1));
        q.put(1).unwrap();
        let putter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.put(2))
        };
        q.close();
        let rejected = putter.join().unwrap();
        let mut seen: Vec<i32> = q.iter().collect();
        if let Err(Closed(item)) = rejected {
            seen.push(item);
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
    });
}

#[test]
fn a_put_racing_close_is_either_refused_or_received() {
    loom::model(|| {
        let q = Arc::new(ClosableQueue::bounded(1));
        let received = Arc::new(AtomicUsize::new(0));
        let consumer = {
            let (q, received) = (Arc::clone(&q), Arc::clone(&received));
            thread::spawn(move || {
                for _ in q.iter() {
                    received.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let producer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.put(7).is_ok())
        };
        q.close();
        let delivered = producer.join().unwrap();
        consumer.join().unwrap();
        assert_eq!(received.load(Ordering::SeqCst), usize::from(delivered));
    });
}

#[test]
fn a_getter_asleep_on_an_empty_queue_is_woken_by_a_put() {
    loom::model(|| {
        let q = Arc::new(ClosableQueue::<u8>::bounded(1));
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get())
        };
        q.put(1).unwrap();
        assert_eq!(getter.join().unwrap(), Some(1));
    });
}

#[test]
fn shutdown_now_accounts_for_every_item_and_unblocks_join() {
    loom::model(|| {
        let q = Arc::new(ClosableQueue::bounded(2));
        let consumed = Arc::new(AtomicUsize::new(0));
        q.put(1).unwrap();
        q.put(2).unwrap();
        let consumer = {
            let (q, consumed) = (Arc::clone(&q), Arc::clone(&consumed));
            thread::spawn(move || {
                for _ in q.iter() {
                    consumed.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let removed = q.shutdown_now();
        consumer.join().unwrap();
        q.join();
        assert_eq!(removed.len() + consumed.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn the_locking_counter_never_loses_an_increment() {
    loom::model(|| {
        let counter = Arc::new(LockingCounter::default());
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let counter = Arc::clone(&counter);
                thread::spawn(move || {
                    counter.increment(1);
                    counter.increment(1);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.count(), 4);
    });
}
