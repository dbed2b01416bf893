//! boundstate: thermodynamic generative models on binary data, the library of free-energy minima
//! they develop, generation and nearest-minimum retrieval, served over HTTP.

pub mod engine;
