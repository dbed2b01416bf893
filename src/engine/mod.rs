//! The science, pure and synchronous: spins, interaction sets, energies and local fields, exact
//! enumeration and the Walsh–Hadamard transform, samplers, training, the census of minima,
//! retrieval and experts (Y. He and V. Lubchenko, "Knowledge as a Breaking of Ergodicity",
//! arXiv:2412.16411). Nothing here knows about HTTP, async or the database.

pub mod census;
pub mod codec;
pub mod control;
pub mod dataset;
pub mod exact;
pub mod experts;
pub mod full;
pub mod interactions;
pub mod model;
pub mod plot;
pub mod quench;
pub mod retrieve;
pub mod rng;
pub mod sampler;
pub mod simd;
pub mod spins;
pub mod train;
pub mod wht;

pub use control::{Interrupt, Observer, Progress};
pub use dataset::Dataset;
pub use interactions::{Description, InteractionSet, Subset};
pub use model::{Model, Pairwise};
pub use rng::ChainRng;
pub use spins::Pattern;

use std::fmt;

/// Why an engine computation could not run or did not finish.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineError {
    /// An argument is out of its domain; `field` names it (API field or path).
    Invalid { field: String, message: String },
    /// The interrupt flag was raised (cancel or shutdown).
    Interrupted,
    /// The computation ran but produced something unusable (e.g. a non-finite value).
    Numerical(String),
}

impl EngineError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Invalid { field, message } => write!(f, "{field}: {message}"),
            EngineError::Interrupted => f.write_str("interrupted"),
            EngineError::Numerical(m) => write!(f, "numerical failure: {m}"),
        }
    }
}

impl std::error::Error for EngineError {}
