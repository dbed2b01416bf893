//! Loaded models, kept between requests: models are immutable once stored, so decoding the
//! couplings and building the sampler's kernel (an N×N matrix for a pairwise model) happens once
//! per model, not once per retrieval or generation request.

use crate::engine::Model;
use crate::engine::sampler::Kernel;
use crate::jobs::Compute;
use crate::store::{self, Db, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A model ready for sampling.
pub struct Loaded {
    pub model: Model,
    pub kernel: Kernel,
}

/// At most this many models are kept; the least recently used goes first.
const CAPACITY: usize = 8;
/// Models above this N are not kept (their kernel alone is 8 N² bytes).
const MAX_CACHED_SPINS: usize = 2048;

/// A use counter and, per model id, the count at its last use with the model.
type Entries = (u64, HashMap<i64, (u64, Arc<Loaded>)>);

#[derive(Clone, Default)]
pub struct ModelCache {
    inner: Arc<Mutex<Entries>>,
}

impl ModelCache {
    /// The model's couplings and kernel; `None` when it has no couplings (a mixture) or is gone.
    pub async fn get(
        &self,
        db: &Db,
        compute: &Compute,
        id: i64,
    ) -> Result<Option<Arc<Loaded>>, StoreError> {
        {
            let mut g = self.inner.lock().expect("lock");
            g.0 += 1;
            let tick = g.0;
            if let Some(e) = g.1.get_mut(&id) {
                e.0 = tick;
                return Ok(Some(e.1.clone()));
            }
        }
        let Some(model) = store::models::load(db, id).await? else {
            return Ok(None);
        };
        let loaded = compute
            .run_interactive(move || {
                let kernel = Kernel::new(&model);
                Loaded { model, kernel }
            })
            .await
            .map_err(|e| StoreError::Protocol(e.to_string()))?;
        let loaded = Arc::new(loaded);
        if loaded.model.n() <= MAX_CACHED_SPINS {
            let mut g = self.inner.lock().expect("lock");
            g.0 += 1;
            let tick = g.0;
            if g.1.len() >= CAPACITY
                && let Some(oldest) = g.1.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| *k)
            {
                g.1.remove(&oldest);
            }
            g.1.insert(id, (tick, loaded.clone()));
        }
        Ok(Some(loaded))
    }

    /// Drop a deleted model (and, for a mixture, nothing else is cached under its id).
    pub fn forget(&self, id: i64) {
        self.inner.lock().expect("lock").1.remove(&id);
    }
}
