//! Tasks a process runs beside its calls (stream pumps, the presence keeper, the event-bus
//! receiver, the SQLite writer): spawned into a group that knows them, so that shutdown can
//! tell them to stop, in its own order, and wait for them instead of leaving them detached
//! until the runtime drops them mid-write.

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// A group of tasks stopped together. Clones share the group.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task`, which should finish soon after [`Tasks::stopping`] is cancelled.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Cancelled when the group is told to stop; each task watches it.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stop
    }

    /// Tasks spawned and not yet finished.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Tells every task to stop and waits up to `grace` for them to finish. Returns how many
    /// were still running at the bound (0: all finished); those are left to the runtime's
    /// end. Tasks spawned after this still run, and are told to stop at once.
    pub async fn stop(&self, what: &str, grace: Duration) -> usize {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.tracker.len();
        tracing::warn!(
            what,
            left,
            ?grace,
            "tasks still running after the shutdown bound"
        );
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_waits_for_tasks_that_watch_the_token() {
        let tasks = Tasks::new();
        let (done, mut finished) = tokio::sync::mpsc::channel(2);
        for _ in 0..2 {
            let stopping = tasks.stopping().clone();
            let done = done.clone();
            tasks.spawn(async move {
                stopping.cancelled().await;
                let _ = done.send(()).await;
            });
        }
        assert_eq!(tasks.running(), 2);
        assert_eq!(tasks.stop("test", Duration::from_secs(10)).await, 0);
        assert_eq!(tasks.running(), 0);
        assert!(finished.try_recv().is_ok() && finished.try_recv().is_ok());
    }

    #[tokio::test]
    async fn stop_gives_up_at_the_bound() {
        let tasks = Tasks::new();
        tasks.spawn(std::future::pending());
        let started = tokio::time::Instant::now();
        assert_eq!(tasks.stop("test", Duration::from_millis(50)).await, 1);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
