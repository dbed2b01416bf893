//! The server as a library function: takes a listener and a shutdown future, so tests start it on
//! port 0 and stop it cleanly.

use crate::api;
use crate::config::Config;
use crate::jobs::{Compute, Jobs};
use crate::service::Runner;
use crate::store::Db;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Run until `shutdown` resolves: stop accepting, let requests finish, close the database.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let config = Arc::new(config);
    let db = Db::connect(&config.database_url).await?;
    let compute = Compute::new(
        config.resolved_compute_threads(),
        config.interactive_threads.max(1),
    )?;
    let jobs = Jobs::new(db.clone(), compute, config.clone(), Arc::new(Runner));
    jobs.recover().await?;
    let app = api::app(db.clone(), config.clone(), jobs.clone());
    tracing::info!(
        address = %listener.local_addr()?,
        compute_threads = jobs.compute().job_threads(),
        interactive_threads = jobs.compute().interactive_threads(),
        "listening"
    );
    let jobs_for_shutdown = jobs.clone();
    let served = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        // Interrupt running jobs (they record their state) and end open event streams, so
        // that the connections can close.
        jobs_for_shutdown.shutdown(Duration::from_secs(30)).await;
    });
    let result = served.await;
    jobs.shutdown(Duration::from_secs(30)).await;
    db.close().await;
    result?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
