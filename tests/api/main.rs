//! API tests: the real server on a random port with a fresh database per test.

mod common;
mod datasets;
mod experts;
mod lifecycle;
mod models;
mod ops;
mod service;
