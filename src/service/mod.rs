//! Application services: what a job of each kind does — load its inputs from the store, run the
//! engine on the compute pool, write its outputs and its terminal state in one transaction.

pub mod cache;
pub mod census;
pub mod evaluation;
pub mod experts;
pub mod generate;
pub mod retrieval;
pub mod training;
pub mod webhooks;

use crate::jobs::{JobContext, JobFailure, JobFuture, JobRunner};

/// Dispatches jobs by kind.
pub struct Runner;

impl JobRunner for Runner {
    fn run(&self, ctx: JobContext) -> JobFuture {
        Box::pin(async move {
            match ctx.kind.as_str() {
                "training" => training::run(ctx).await,
                "census" => census::run(ctx).await,
                "landscape" => census::run_landscape(ctx).await,
                "sampling" => generate::run(ctx).await,
                "evaluation" => evaluation::run(ctx).await,
                "experts" => experts::run(ctx).await,
                other => Err(JobFailure::Failed(format!("unknown job kind '{other}'"))),
            }
        })
    }
}
