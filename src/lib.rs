//! boundstate: thermodynamic generative models on binary data, the library of free-energy minima
//! they develop, generation and nearest-minimum retrieval, served over HTTP.

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod jobs;
pub mod server;
pub mod service;
pub mod store;
