//! Jobs: a bounded queue in front of the compute pool, progress and events, cancellation,
//! checkpoints, recovery after a crash and graceful shutdown. Every job reaches a terminal state.

pub mod compute;

pub use compute::{Compute, ComputePanic};

use crate::config::Config;
use crate::engine::{self, EngineError, Interrupt};
use crate::store::{self, Db, StoreError, jobs::JobRow};
use serde::Serialize;
use serde_json::Value;
use sqlx::SqliteConnection;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

/// A job's state. `queued` and `running` are live; the others are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            "interrupted" => JobStatus::Interrupted,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// Progress of a running job, as stored and streamed.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, ToSchema)]
pub struct JobProgress {
    pub stage: String,
    pub iteration: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Thermodynamic potential Φ (exact for small N, an estimate or absent for large N).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub potential: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradient_norm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_moment_error: Option<f64>,
    /// Pearson r between model and data connected correlations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_r: Option<f64>,
    pub elapsed_seconds: f64,
    /// Estimated seconds left, when the total is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An event on a job's stream.
#[derive(Clone, Debug)]
pub struct JobEvent {
    pub job_id: i64,
    /// "progress", "state", or "shutdown" (job_id 0: the server is stopping).
    pub kind: &'static str,
    pub data: Value,
}

/// Why a job did not succeed.
#[derive(Debug)]
pub enum JobFailure {
    /// A reason a user can act on.
    Failed(String),
    /// The engine stopped on the interrupt flag (cancel or shutdown: the manager tells which).
    Interrupted,
    Store(StoreError),
}

impl From<StoreError> for JobFailure {
    fn from(e: StoreError) -> Self {
        JobFailure::Store(e)
    }
}

impl From<EngineError> for JobFailure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Interrupted => JobFailure::Interrupted,
            EngineError::Invalid { field, message } => {
                JobFailure::Failed(format!("{field}: {message}"))
            }
            EngineError::Numerical(m) => JobFailure::Failed(format!(
                "numerical failure: {m}; try a larger l2 penalty, a smaller step or a higher temperature"
            )),
        }
    }
}

impl From<ComputePanic> for JobFailure {
    fn from(e: ComputePanic) -> Self {
        tracing::error!(panic = %e.0, "compute task panicked");
        JobFailure::Failed("the computation crashed (a bug: the server log has the details)".into())
    }
}

pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), JobFailure>> + Send>>;

/// Runs jobs by kind. The runner must finish a successful job itself with
/// [`JobContext::succeed`] inside the transaction that writes its outputs.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, ctx: JobContext) -> JobFuture;
}

/// What a running job sees.
#[derive(Clone)]
pub struct JobContext {
    pub id: i64,
    pub kind: String,
    pub params: String,
    pub db: Db,
    pub compute: Compute,
    pub config: Arc<Config>,
    pub interrupt: Interrupt,
    /// The checkpoint to resume from, if the job ran before.
    pub checkpoint: Option<Vec<u8>>,
    pub reporter: Arc<Reporter>,
    /// The job manager, to queue follow-up jobs (a census after training).
    pub jobs: Jobs,
}

impl JobContext {
    /// Mark the job succeeded in the caller's transaction, with its result and output model.
    pub async fn succeed(
        &self,
        conn: &mut SqliteConnection,
        result: &Value,
        model_id: Option<i64>,
    ) -> Result<(), JobFailure> {
        let ok = store::jobs::finish(
            conn,
            self.id,
            "succeeded",
            Some(&result.to_string()),
            None,
            model_id,
        )
        .await?;
        if ok {
            Ok(())
        } else {
            Err(JobFailure::Failed(
                "the job was finished by someone else".into(),
            ))
        }
    }
}

/// Receives progress and checkpoints from compute threads; a ticker writes them to the store.
pub struct Reporter {
    job_id: i64,
    started: Instant,
    latest: Mutex<Option<JobProgress>>,
    dirty: AtomicBool,
    checkpoint: Mutex<Option<Vec<u8>>>,
    last_checkpoint: Mutex<Instant>,
    checkpoint_every: Duration,
    events: broadcast::Sender<JobEvent>,
}

impl Reporter {
    /// True when a checkpoint is due (the engine then builds one and calls `save_checkpoint`).
    pub fn checkpoint_due(&self) -> bool {
        self.last_checkpoint.lock().expect("lock").elapsed() >= self.checkpoint_every
    }

    pub fn save_checkpoint(&self, bytes: Vec<u8>) {
        *self.checkpoint.lock().expect("lock") = Some(bytes);
        *self.last_checkpoint.lock().expect("lock") = Instant::now();
    }

    pub fn report(&self, p: JobProgress) {
        let data = serde_json::to_value(&p).expect("progress serialises");
        *self.latest.lock().expect("lock") = Some(p);
        self.dirty.store(true, Ordering::Relaxed);
        let _ = self.events.send(JobEvent {
            job_id: self.job_id,
            kind: "progress",
            data,
        });
    }
}

impl engine::train::Checkpoints for Reporter {
    fn due(&self) -> bool {
        self.checkpoint_due()
    }

    fn save(&self, bytes: Vec<u8>) {
        self.save_checkpoint(bytes)
    }
}

impl engine::Observer for Reporter {
    fn progress(&self, p: &engine::Progress) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = p
            .total
            .filter(|&t| t > 0 && p.iteration > 0)
            .map(|t| elapsed * (t.saturating_sub(p.iteration)) as f64 / p.iteration as f64);
        self.report(JobProgress {
            stage: p.stage.to_string(),
            iteration: p.iteration,
            total: p.total,
            potential: p.potential,
            gradient_norm: p.gradient_norm,
            max_moment_error: p.max_moment_error,
            correlation_r: p.correlation_r,
            elapsed_seconds: elapsed,
            eta_seconds: eta,
            message: p.message.clone(),
        });
    }
}

/// Called with the final row of a job that reached a terminal state.
pub type TerminalHook = Arc<dyn Fn(JobRow) + Send + Sync>;

struct Live {
    interrupt: Interrupt,
    cancelled: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

struct Inner {
    db: Db,
    compute: Compute,
    config: Arc<Config>,
    permits: Arc<Semaphore>,
    live: Mutex<HashMap<i64, Live>>,
    waiting: AtomicUsize,
    events: broadcast::Sender<JobEvent>,
    shutting_down: AtomicBool,
    tracker: TaskTracker,
    runner: Arc<dyn JobRunner>,
    on_terminal: Mutex<Option<TerminalHook>>,
}

/// The job manager (cheap to clone).
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

/// Resumes after an unclean stop before a job is given up as interrupted.
pub const MAX_ATTEMPTS: i64 = 3;

impl Jobs {
    pub fn new(db: Db, compute: Compute, config: Arc<Config>, runner: Arc<dyn JobRunner>) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                db,
                compute,
                permits: Arc::new(Semaphore::new(config.max_concurrent_jobs.max(1))),
                config,
                live: Mutex::new(HashMap::new()),
                waiting: AtomicUsize::new(0),
                events,
                shutting_down: AtomicBool::new(false),
                tracker: TaskTracker::new(),
                runner,
                on_terminal: Mutex::new(None),
            }),
        }
    }

    /// Called with the final row of every job that reaches a terminal state (webhooks, metrics).
    pub fn set_on_terminal(&self, f: TerminalHook) {
        *self.inner.on_terminal.lock().expect("lock") = Some(f);
    }

    pub fn compute(&self) -> &Compute {
        &self.inner.compute
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.events.subscribe()
    }

    /// Jobs waiting for a slot.
    pub fn queue_length(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Jobs holding a slot.
    pub fn running_count(&self) -> usize {
        self.inner
            .live
            .lock()
            .expect("lock")
            .len()
            .saturating_sub(self.queue_length())
    }

    /// `Err(retry_after_seconds)` when the queue is full.
    pub fn has_capacity(&self) -> Result<(), u64> {
        if self.inner.shutting_down.load(Ordering::Relaxed) {
            return Err(5);
        }
        if self.queue_length() >= self.inner.config.max_queued_jobs {
            Err(10)
        } else {
            Ok(())
        }
    }

    /// Start a job already inserted as `queued`.
    pub fn start(&self, id: i64) {
        let live = Live {
            interrupt: Interrupt::new(),
            cancelled: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(Notify::new()),
        };
        let (interrupt, cancelled, wake) = (
            live.interrupt.clone(),
            live.cancelled.clone(),
            live.wake.clone(),
        );
        self.inner.live.lock().expect("lock").insert(id, live);
        self.inner.waiting.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            this.drive(id, interrupt, cancelled, wake).await;
            this.inner.live.lock().expect("lock").remove(&id);
        });
    }

    async fn drive(
        &self,
        id: i64,
        interrupt: Interrupt,
        cancelled: Arc<AtomicBool>,
        wake: Arc<Notify>,
    ) {
        let inner = &self.inner;
        let permit = tokio::select! {
            p = inner.permits.clone().acquire_owned() => p.ok(),
            _ = wake.notified() => None,
        };
        inner.waiting.fetch_sub(1, Ordering::Relaxed);
        if cancelled.load(Ordering::Relaxed) {
            self.finish(
                id,
                JobStatus::Cancelled,
                "cancelled by request before it started",
            )
            .await;
            return;
        }
        if permit.is_none() || inner.shutting_down.load(Ordering::Relaxed) {
            // Left queued: it runs at the next start.
            return;
        }
        match store::jobs::mark_running(&inner.db, id).await {
            Ok(true) => {}
            Ok(false) => {
                self.finish(
                    id,
                    JobStatus::Cancelled,
                    "cancelled by request before it started",
                )
                .await;
                return;
            }
            Err(e) => {
                tracing::error!(job_id = id, error = %e, "could not mark job running");
                return;
            }
        }
        let row = match store::jobs::get(&inner.db, id).await {
            Ok(Some(r)) => r,
            _ => return,
        };
        self.emit_state(&row);
        let checkpoint = store::jobs::checkpoint(&inner.db, id).await.ok().flatten();
        let reporter = Arc::new(Reporter {
            job_id: id,
            started: Instant::now(),
            latest: Mutex::new(None),
            dirty: AtomicBool::new(false),
            checkpoint: Mutex::new(None),
            last_checkpoint: Mutex::new(Instant::now()),
            checkpoint_every: Duration::from_secs(inner.config.checkpoint_interval_secs.max(1)),
            events: inner.events.clone(),
        });
        let ctx = JobContext {
            id,
            kind: row.kind.clone(),
            params: row.params.clone(),
            db: inner.db.clone(),
            compute: inner.compute.clone(),
            config: inner.config.clone(),
            interrupt: interrupt.clone(),
            checkpoint,
            reporter: reporter.clone(),
            jobs: self.clone(),
        };
        tracing::info!(job_id = id, kind = %row.kind, attempt = row.attempts, "job started");
        let fut = inner.runner.run(ctx);
        let flusher = {
            let db = inner.db.clone();
            let reporter = reporter.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    flush(&db, id, &reporter).await;
                }
            })
        };
        let outcome = fut.await;
        flusher.abort();
        flush(&inner.db, id, &reporter).await;
        match outcome {
            Ok(()) => {
                tracing::info!(job_id = id, "job succeeded");
                self.after_terminal(id).await;
            }
            Err(JobFailure::Interrupted) if cancelled.load(Ordering::Relaxed) => {
                self.finish(id, JobStatus::Cancelled, "cancelled by request")
                    .await;
            }
            Err(JobFailure::Interrupted) if inner.shutting_down.load(Ordering::Relaxed) => {
                let note = "paused by a server shutdown; it resumes (from its checkpoint, if any) at the next start";
                if let Err(e) = store::jobs::requeue(&inner.db, id, note).await {
                    tracing::error!(job_id = id, error = %e, "could not requeue job at shutdown");
                }
                tracing::info!(job_id = id, "job paused for shutdown");
            }
            Err(JobFailure::Interrupted) => {
                self.finish(id, JobStatus::Interrupted, "interrupted").await;
            }
            Err(JobFailure::Failed(msg)) => {
                tracing::warn!(job_id = id, reason = %msg, "job failed");
                self.finish(id, JobStatus::Failed, &msg).await;
            }
            Err(JobFailure::Store(e)) => {
                tracing::error!(job_id = id, error = %e, "job failed on the database");
                self.finish(
                    id,
                    JobStatus::Failed,
                    "the database refused a write; the server log has the details",
                )
                .await;
            }
        }
    }

    async fn finish(&self, id: i64, status: JobStatus, reason: &str) {
        let res = async {
            let mut tx = self.inner.db.begin_write().await?;
            store::jobs::finish(&mut tx, id, status.as_str(), None, Some(reason), None).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = res {
            tracing::error!(job_id = id, error = %e, "could not record terminal state");
        }
        self.after_terminal(id).await;
    }

    async fn after_terminal(&self, id: i64) {
        if let Ok(Some(row)) = store::jobs::get(&self.inner.db, id).await {
            self.emit_state(&row);
            let hook = self.inner.on_terminal.lock().expect("lock").clone();
            if let Some(h) = hook {
                h(row);
            }
        }
    }

    fn emit_state(&self, row: &JobRow) {
        let _ = self.inner.events.send(JobEvent {
            job_id: row.id,
            kind: "state",
            data: serde_json::json!({ "status": row.status, "error": row.error }),
        });
    }

    /// Ask a live job to stop. `false` if the job is not live in this process.
    pub async fn cancel(&self, id: i64) -> Result<bool, StoreError> {
        store::jobs::request_cancel(&self.inner.db, id).await?;
        let live = self.inner.live.lock().expect("lock");
        if let Some(l) = live.get(&id) {
            l.cancelled.store(true, Ordering::Relaxed);
            l.interrupt.raise();
            l.wake.notify_one();
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// On start: jobs left `running` by a crash resume (up to [`MAX_ATTEMPTS`] starts) or are
    /// marked interrupted; `queued` jobs are started in order.
    pub async fn recover(&self) -> Result<(), StoreError> {
        let db = &self.inner.db;
        for row in store::jobs::with_status(db, &["running"]).await? {
            if row.cancel_requested {
                let mut tx = db.begin_write().await?;
                store::jobs::finish(
                    &mut tx,
                    row.id,
                    "cancelled",
                    None,
                    Some("cancelled by request"),
                    None,
                )
                .await?;
                tx.commit().await?;
            } else if row.attempts >= MAX_ATTEMPTS {
                let reason = format!(
                    "the server stopped {} times while this job ran (crash or kill); giving up",
                    row.attempts
                );
                let mut tx = db.begin_write().await?;
                store::jobs::finish(&mut tx, row.id, "interrupted", None, Some(&reason), None)
                    .await?;
                tx.commit().await?;
                tracing::warn!(
                    job_id = row.id,
                    "job marked interrupted after repeated unclean stops"
                );
            } else {
                let note = if row.checkpoint_at.is_some() {
                    "resumed from its last checkpoint after an unclean stop (crash or kill)"
                } else {
                    "restarted from the beginning after an unclean stop (crash or kill); it had no checkpoint yet"
                };
                store::jobs::requeue(db, row.id, note).await?;
                tracing::info!(job_id = row.id, "job will resume after an unclean stop");
            }
        }
        for row in store::jobs::with_status(db, &["queued"]).await? {
            if row.cancel_requested {
                let mut tx = db.begin_write().await?;
                store::jobs::finish(
                    &mut tx,
                    row.id,
                    "cancelled",
                    None,
                    Some("cancelled by request"),
                    None,
                )
                .await?;
                tx.commit().await?;
            } else {
                self.start(row.id);
            }
        }
        Ok(())
    }

    /// Graceful shutdown: no new starts, running jobs are interrupted and left to resume at the
    /// next start; waits for them to record their state.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Relaxed);
        {
            let live = self.inner.live.lock().expect("lock");
            for l in live.values() {
                l.interrupt.raise();
                l.wake.notify_one();
            }
        }
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("jobs did not stop within the grace period");
        }
        let _ = self.inner.events.send(JobEvent {
            job_id: 0,
            kind: "shutdown",
            data: Value::Null,
        });
    }
}

async fn flush(db: &Db, id: i64, reporter: &Reporter) {
    if reporter.dirty.swap(false, Ordering::Relaxed) {
        let p = reporter.latest.lock().expect("lock").clone();
        if let Some(p) = p {
            let s = serde_json::to_string(&p).expect("progress serialises");
            if let Err(e) = store::jobs::set_progress(db, id, &s).await {
                tracing::warn!(job_id = id, error = %e, "could not store progress");
            }
        }
    }
    let ck = reporter.checkpoint.lock().expect("lock").take();
    if let Some(ck) = ck
        && let Err(e) = store::jobs::set_checkpoint(db, id, &ck).await
    {
        tracing::warn!(job_id = id, error = %e, "could not store checkpoint");
    }
}
