//! How long computations are stopped and observed: an interrupt flag checked inside loops and an
//! observer that receives progress (the argmin pattern: observers, interrupts, a recorded reason
//! for stopping).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A shared flag: raised by a cancel or a shutdown, checked by the engine between units of work.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once raised: use with `?` inside loops.
    pub fn check(&self) -> Result<(), super::EngineError> {
        if self.is_raised() {
            Err(super::EngineError::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// A progress report from a long computation. Fields that do not apply are `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// What is running, e.g. "training", "census", "sampling".
    pub stage: &'static str,
    pub iteration: u64,
    pub total: Option<u64>,
    /// Thermodynamic potential Φ (exact, or an estimate).
    pub potential: Option<f64>,
    pub gradient_norm: Option<f64>,
    pub max_moment_error: Option<f64>,
    /// Pearson r between model and data connected correlations.
    pub correlation_r: Option<f64>,
    pub message: Option<String>,
}

/// Receives progress. Implementations must be cheap: they are called from compute threads.
pub trait Observer: Send + Sync {
    fn progress(&self, progress: &Progress);
}

/// An observer that ignores everything.
pub struct NoObserver;

impl Observer for NoObserver {
    fn progress(&self, _: &Progress) {}
}

/// Counts spin-flip attempts across threads (for throughput metrics).
#[derive(Debug, Default)]
pub struct AttemptCounter(AtomicU64);

/// Every single-spin update attempt made by any sampler in this process (a metric).
pub static SPIN_FLIP_ATTEMPTS: AttemptCounter = AttemptCounter::new();

impl AttemptCounter {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
