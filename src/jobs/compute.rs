//! The only place where tokio meets rayon: closures run on dedicated rayon pools and hand their
//! result back through a oneshot channel; a panic becomes an error, never a dead worker.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;

/// A panic inside a compute task, with its message.
#[derive(Debug, Clone)]
pub struct ComputePanic(pub String);

impl std::fmt::Display for ComputePanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "compute task panicked: {}", self.0)
    }
}

/// Two rayon pools: one for jobs (training, census, large sampling) and a small one for
/// interactive requests (retrieval, small samples) so they do not queue behind a training job.
#[derive(Clone)]
pub struct Compute {
    jobs: Arc<rayon::ThreadPool>,
    interactive: Arc<rayon::ThreadPool>,
    busy: Arc<AtomicUsize>,
}

impl Compute {
    pub fn new(
        job_threads: usize,
        interactive_threads: usize,
    ) -> Result<Self, rayon::ThreadPoolBuildError> {
        let jobs = rayon::ThreadPoolBuilder::new()
            .num_threads(job_threads.max(1))
            .thread_name(|i| format!("compute-{i}"))
            .build()?;
        let interactive = rayon::ThreadPoolBuilder::new()
            .num_threads(interactive_threads.max(1))
            .thread_name(|i| format!("interactive-{i}"))
            .build()?;
        Ok(Self {
            jobs: Arc::new(jobs),
            interactive: Arc::new(interactive),
            busy: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn job_threads(&self) -> usize {
        self.jobs.current_num_threads()
    }

    pub fn interactive_threads(&self) -> usize {
        self.interactive.current_num_threads()
    }

    /// Compute tasks currently running (each may occupy every thread of its pool).
    pub fn busy_tasks(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Run `f` on the job pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ComputePanic>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        spawn_on(&self.jobs, &self.busy, f).await
    }

    /// Run `f` on the interactive pool.
    pub async fn run_interactive<T, F>(&self, f: F) -> Result<T, ComputePanic>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        spawn_on(&self.interactive, &self.busy, f).await
    }
}

async fn spawn_on<T, F>(
    pool: &rayon::ThreadPool,
    busy: &Arc<AtomicUsize>,
    f: F,
) -> Result<T, ComputePanic>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let busy = busy.clone();
    pool.spawn(move || {
        busy.fetch_add(1, Ordering::Relaxed);
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            ComputePanic(msg)
        });
        busy.fetch_sub(1, Ordering::Relaxed);
        let _ = tx.send(r);
    });
    rx.await
        .unwrap_or_else(|_| Err(ComputePanic("the compute task was dropped".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_and_panics_come_back() {
        let c = Compute::new(1, 1).unwrap();
        assert_eq!(c.run(|| 2 + 2).await.unwrap(), 4);
        let e = c.run(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert!(e.0.contains("boom"));
        // The pool still works after a panic.
        assert_eq!(c.run_interactive(|| 7).await.unwrap(), 7);
    }
}
