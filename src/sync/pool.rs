//! Seed 000's resource pool, as a semaphore: acquiring waits (or times out) instead of
//! returning `None` when every resource is busy.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

struct State<T> {
    free: Vec<T>,
    in_use: usize,
    peak_in_use: usize,
}

/// A fixed set of resources (connections, licences, GPUs) shared by many threads.
///
/// [`acquire`](Self::acquire) blocks until one is free; [`acquire_timeout`] gives up
/// after a while; a [`Lease`] hands its resource back when dropped, so a resource cannot
/// leak on an early return or a panic. The book's pool returns `None` when empty and
/// leaves the retrying to the caller.
///
/// [`acquire_timeout`]: Self::acquire_timeout
///
/// ```
/// use concur::sync::ResourcePool;
/// use std::time::Duration;
///
/// let pool = ResourcePool::new(["Resource-A", "Resource-B"]);
/// let a = pool.acquire();
/// let b = pool.acquire();
/// assert!(pool.acquire_timeout(Duration::from_millis(10)).is_none()); // both in use
/// drop(a);
/// assert_eq!(*pool.acquire(), "Resource-A"); // handed back by the drop
/// ```
pub struct ResourcePool<T> {
    state: Mutex<State<T>>,
    freed: Condvar,
    total: usize,
}

impl<T> fmt::Debug for ResourcePool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourcePool")
            .field("stats", &self.stats())
            .finish()
    }
}

/// A snapshot of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Free now.
    pub available: usize,
    /// Leased now.
    pub in_use: usize,
    /// All resources.
    pub total: usize,
    /// The most leased at once so far.
    pub peak_in_use: usize,
}

/// A leased resource; dropping it returns the resource to the pool.
pub struct Lease<'a, T> {
    pool: &'a ResourcePool<T>,
    resource: Option<T>,
}

impl<T> ResourcePool<T> {
    /// A pool of `resources`.
    pub fn new(resources: impl IntoIterator<Item = T>) -> Self {
        let mut free: Vec<T> = resources.into_iter().collect();
        free.reverse(); // lease in the given order (pop from the back)
        Self {
            total: free.len(),
            state: Mutex::new(State {
                free,
                in_use: 0,
                peak_in_use: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease(&self, mut state: MutexGuard<'_, State<T>>) -> Option<Lease<'_, T>> {
        let resource = state.free.pop()?;
        state.in_use += 1;
        state.peak_in_use = state.peak_in_use.max(state.in_use);
        Some(Lease {
            pool: self,
            resource: Some(resource),
        })
    }

    /// Waits until a resource is free and leases it. Waits forever on an empty pool.
    pub fn acquire(&self) -> Lease<'_, T> {
        let mut state = self.lock();
        while state.free.is_empty() {
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match self.lease(state) {
            Some(lease) => lease,
            None => unreachable!("the loop above waited for a free resource"),
        }
    }

    /// Leases a resource if one is free right now.
    pub fn try_acquire(&self) -> Option<Lease<'_, T>> {
        self.lease(self.lock())
    }

    /// Waits up to `timeout` for a free resource.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Lease<'_, T>> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.free.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        self.lease(state)
    }

    /// Counts of free, leased and all resources.
    pub fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            available: state.free.len(),
            in_use: state.in_use,
            total: self.total,
            peak_in_use: state.peak_in_use,
        }
    }
}

impl<T> Deref for Lease<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.resource {
            Some(resource) => resource,
            None => unreachable!("a lease holds its resource until dropped"),
        }
    }
}

impl<T> DerefMut for Lease<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.resource {
            Some(resource) => resource,
            None => unreachable!("a lease holds its resource until dropped"),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Lease<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Lease").field(&self.resource).finish()
    }
}

impl<T> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        if let Some(resource) = self.resource.take() {
            let mut state = self.pool.lock();
            state.free.push(resource);
            state.in_use -= 1;
            drop(state);
            self.pool.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn five_workers_share_three_resources_never_more_than_three_at_once() {
        let pool = ResourcePool::new(["A", "B", "C"]);
        let names = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..5 {
                s.spawn(|| {
                    let lease = pool.acquire();
                    names.lock().unwrap().push(*lease);
                    std::thread::sleep(Duration::from_millis(20));
                });
            }
        });
        let stats = pool.stats();
        assert_eq!(
            stats,
            PoolStats {
                available: 3,
                in_use: 0,
                total: 3,
                peak_in_use: 3
            }
        );
        assert_eq!(
            names.into_inner().unwrap().len(),
            5,
            "every worker got a resource"
        );
    }

    #[test]
    fn a_waiting_acquire_gets_the_resource_released_by_another_thread() {
        let pool = ResourcePool::new([7]);
        let held = pool.acquire();
        let barrier = Barrier::new(2);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                barrier.wait();
                *pool
                    .acquire_timeout(Duration::from_secs(10))
                    .expect("released in time")
            });
            barrier.wait();
            drop(held);
            assert_eq!(waiter.join().unwrap(), 7);
        });
        assert!(pool.try_acquire().is_some());
    }
}
