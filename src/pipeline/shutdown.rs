//! Graceful shutdown of execution: on SIGTERM the server stops accepting, then the actions in
//! flight get a bounded time to finish the Docker call they are in and journal its outcome.
//! An action that is only waiting (for Docker to come back, for its turn, for a job to end)
//! stops there and stays unfinished in the journal, to be resumed at the next start.

use super::Pipeline;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The actions running in the background, and the signal that asks them to stop.
pub(crate) struct Execution {
    stopping: watch::Sender<bool>,
    running: AtomicUsize,
    idle: Notify,
}

impl Default for Execution {
    fn default() -> Self {
        Self {
            stopping: watch::Sender::new(false),
            running: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }
}

/// Counts one background action while it lives.
struct Running(Arc<Pipeline>);

impl Drop for Running {
    fn drop(&mut self) {
        let execution = &self.0.execution;
        if execution.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            execution.idle.notify_waiters();
        }
    }
}

impl Pipeline {
    /// Run `work` in the background, counted, so that shutdown can wait for it.
    pub(crate) fn spawn_counted<F>(self: &Arc<Self>, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.execution.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.clone());
        let work = async move {
            let _running = running;
            work.await;
        };
        // On the runtime that admitted it (an HTTP worker's): a worker's Docker calls and the
        // admissions' share its connections and its thread. Shutdown drains before the HTTP
        // workers stop (see `startup`), so nothing in flight is dropped with them.
        tokio::spawn(work);
    }

    /// Becomes true once shutdown is asked for: what runs beside the pipeline (the pruner, the
    /// probe) stops on it.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.execution.stopping.subscribe()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.execution.stopping.borrow()
    }

    /// Wait for `d` (on the pipeline's clock); false (at once) when shutdown was asked for
    /// meanwhile.
    pub async fn pause(&self, d: Duration) -> bool {
        let mut stopping = self.execution.stopping.subscribe();
        tokio::select! {
            _ = self.clock.sleep(d) => !self.is_stopping(),
            _ = stopping.wait_for(|s| *s) => false,
        }
    }

    /// Ask every action to stop at its next wait and give those inside a Docker call up to
    /// `bound` to finish it and journal the outcome. Returns how many were still running.
    pub async fn drain(&self, bound: Duration) -> usize {
        self.execution.stopping.send_replace(true);
        let idle = async {
            loop {
                let notified = self.execution.idle.notified();
                if self.execution.running.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(bound, idle).await;
        let left = self.execution.running.load(Ordering::Acquire);
        if left > 0 {
            tracing::warn!(
                actions = left,
                "shut down with actions still in a Docker call; they are resumed at the next start"
            );
        }
        left
    }
}
