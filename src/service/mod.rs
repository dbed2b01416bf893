//! Application services: what a job of each kind does — load its inputs from the store, run the
//! engine on the compute pool, write its outputs and its terminal state in one transaction.

pub mod webhooks;

use crate::jobs::{JobContext, JobFailure, JobFuture, JobRunner};

/// Dispatches jobs by kind.
pub struct Runner;

impl JobRunner for Runner {
    fn run(&self, ctx: JobContext) -> JobFuture {
        Box::pin(async move {
            #[allow(clippy::match_single_binding)]
            match ctx.kind.as_str() {
                other => Err(JobFailure::Failed(format!("unknown job kind '{other}'"))),
            }
        })
    }
}
