//! Coarse per-worker deadlines for requests waiting on a target: cheaper
//! than a runtime timer per request (no clock read at creation, no timer
//! wheel entry to insert and clear), at the price of firing up to one sweep
//! period late. The worker sweeps them on an interval.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;

/// The sweep period for deadlines `timeout` after their start: a tenth of
/// it, between 10 ms and 1 s.
pub(crate) fn sweep_period(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// One worker's pending deadlines; only its own thread touches the lock.
#[derive(Default)]
pub(crate) struct Deadlines {
    inner: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

enum Slot {
    Free,
    Waiting {
        deadline_ms: u64,
        waker: Waker,
        expired: bool,
    },
}

impl Deadlines {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `future` until it completes (`Some`) or `deadline_ms` (on the
    /// clock [`sweep`](Self::sweep) is given) passes (`None`).
    ///
    /// A plain future rather than an `async fn`: that would hold `future`
    /// twice (as its argument and pinned), and the request futures it wraps
    /// are large and moved on every request.
    pub(crate) fn run<F: Future>(&self, deadline_ms: u64, future: F) -> WithDeadline<'_, F> {
        WithDeadline {
            future,
            deadline_ms,
            registration: Registration {
                deadlines: self,
                key: None,
            },
        }
    }

    /// Marks every deadline at or before `now_ms` as passed and wakes its
    /// future.
    pub(crate) fn sweep(&self, now_ms: u64) {
        let mut wake = Vec::new();
        {
            let mut slots = self.slots();
            for slot in &mut slots.slots {
                if let Slot::Waiting {
                    deadline_ms,
                    waker,
                    expired,
                } = slot
                {
                    if !*expired && *deadline_ms <= now_ms {
                        *expired = true;
                        wake.push(waker.clone());
                    }
                }
            }
        }
        for waker in wake {
            waker.wake();
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        let slots = self.slots();
        slots.slots.len() - slots.free.len()
    }
}

pin_project! {
    /// A future ending with `None` once its deadline has passed.
    pub(crate) struct WithDeadline<'a, F> {
        #[pin]
        future: F,
        deadline_ms: u64,
        registration: Registration<'a>,
    }
}

impl<F: Future> Future for WithDeadline<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        if this
            .registration
            .expired_or_wait(*this.deadline_ms, cx.waker())
        {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

/// A future's slot, taken when it first waits and freed when it ends.
struct Registration<'a> {
    deadlines: &'a Deadlines,
    key: Option<usize>,
}

impl Registration<'_> {
    /// Whether the deadline passed; otherwise records `cx_waker` to be woken
    /// when it does.
    fn expired_or_wait(&mut self, deadline_ms: u64, cx_waker: &Waker) -> bool {
        let mut slots = self.deadlines.slots();
        match self.key {
            Some(key) => match &mut slots.slots[key] {
                Slot::Waiting { waker, expired, .. } => {
                    if *expired {
                        return true;
                    }
                    if !waker.will_wake(cx_waker) {
                        waker.clone_from(cx_waker);
                    }
                    false
                }
                Slot::Free => true,
            },
            None => {
                let slot = Slot::Waiting {
                    deadline_ms,
                    waker: cx_waker.clone(),
                    expired: false,
                };
                let key = match slots.free.pop() {
                    Some(key) => {
                        slots.slots[key] = slot;
                        key
                    }
                    None => {
                        slots.slots.push(slot);
                        slots.slots.len() - 1
                    }
                };
                self.key = Some(key);
                false
            }
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut slots = self.deadlines.slots();
            slots.slots[key] = Slot::Free;
            slots.free.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_periods_are_a_tenth_of_the_timeout_within_bounds() {
        assert_eq!(
            sweep_period(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_period(Duration::from_millis(500)),
            Duration::from_millis(50)
        );
        assert_eq!(
            sweep_period(Duration::from_millis(1)),
            Duration::from_millis(10)
        );
    }

    #[tokio::test]
    async fn a_future_finishing_in_time_gives_its_output() {
        let deadlines = Deadlines::default();
        let output = deadlines
            .run(1_000, async {
                tokio::task::yield_now().await;
                7
            })
            .await;
        assert_eq!(output, Some(7));
        assert_eq!(deadlines.waiting(), 0);
    }

    #[tokio::test]
    async fn a_sweep_past_the_deadline_ends_a_waiting_future() {
        let deadlines = std::sync::Arc::new(Deadlines::default());
        let waiting = {
            let deadlines = std::sync::Arc::clone(&deadlines);
            tokio::spawn(async move { deadlines.run(1_000, std::future::pending::<()>()).await })
        };
        while deadlines.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        deadlines.sweep(999);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        deadlines.sweep(1_000);
        assert_eq!(waiting.await.unwrap(), None);
        assert_eq!(deadlines.waiting(), 0);
    }
}
