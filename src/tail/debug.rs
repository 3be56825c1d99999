//! Finding tasks that block the runtime: asyncio's debug mode, for tokio.
//!
//! Item 63's lesson is that a blocking call inside a coroutine stalls the whole event
//! loop; asyncio's debug mode logs every callback slower than 100 ms. [`Watched`] wraps
//! a future and logs, with the task's name, any single poll longer than a threshold.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Where slow-poll reports go.
pub type Report = Arc<dyn Fn(String) + Send + Sync>;

/// A future whose polls are timed; see the module documentation.
pub struct Watched<F> {
    name: String,
    threshold: Duration,
    report: Report,
    inner: Pin<Box<F>>,
}

impl<F> Watched<F> {
    /// Wraps `inner`, reporting polls longer than `threshold`.
    pub fn new(name: impl Into<String>, threshold: Duration, report: Report, inner: F) -> Self {
        Self {
            name: name.into(),
            threshold,
            report,
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = Instant::now();
        let poll = self.inner.as_mut().poll(cx);
        let took = start.elapsed();
        if took > self.threshold {
            (self.report)(format!(
                "slow poll: task {:?} blocked the runtime for {} ms (threshold {} ms)",
                self.name,
                took.as_millis(),
                self.threshold.as_millis()
            ));
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn a_blocking_poll_is_reported_with_the_task_name() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let report: Report = Arc::new(move |line| sink.lock().unwrap().push(line));
        let threshold = Duration::from_millis(20);
        Watched::new(
            "good",
            threshold,
            Arc::clone(&report),
            tokio::time::sleep(Duration::from_millis(40)),
        )
        .await;
        Watched::new("bad", threshold, report, async {
            std::thread::sleep(Duration::from_millis(60)); // the item 63 mistake
        })
        .await;
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].starts_with("slow poll: task \"bad\" blocked the runtime for"));
    }
}
