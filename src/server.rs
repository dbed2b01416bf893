//! The server as a library function: takes a listener and a shutdown future, so tests start it on
//! port 0 and stop it cleanly.

use crate::api;
use crate::api::auth::Keys;
use crate::config::Config;
use crate::jobs::{Compute, Jobs};
use crate::service::{Runner, webhooks};
use crate::store::Db;
use crate::store::jobs::JobRow;
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
    let keys = match &config.api_keys_file {
        Some(path) => Keys::load(path)?,
        None => Keys::default(),
    };
    let bound = listener.local_addr()?;
    if keys.is_empty() {
        if !bound.ip().is_loopback() && !config.allow_unauthenticated {
            return Err(format!(
                "refusing to listen on {bound} without API keys: set BOUNDSTATE_API_KEYS_FILE, \
                 or BOUNDSTATE_ALLOW_UNAUTHENTICATED=true to serve an open API on the network"
            )
            .into());
        }
        tracing::warn!(address = %bound, "no API keys configured: every request is allowed");
    } else {
        tracing::info!("API keys configured: /v1 requires `Authorization: Bearer <key>`");
    }
    let db = Db::connect(&config.database_url).await?;
    let compute = Compute::new(
        config.resolved_compute_threads(),
        config.interactive_threads.max(1),
    )?;
    let jobs = Jobs::new(db.clone(), compute, config.clone(), Arc::new(Runner));
    let hook_db = db.clone();
    let secret = config.webhook_secret.clone();
    let client = reqwest::Client::new();
    jobs.set_on_terminal(Arc::new(move |row: JobRow| {
        if let Some(url) = row.callback_url.clone() {
            let body =
                serde_json::to_value(api::jobs::JobDto::from(row.clone())).expect("job serialises");
            tokio::spawn(webhooks::deliver(
                hook_db.clone(),
                client.clone(),
                secret.clone(),
                row.id,
                url,
                body,
            ));
        }
    }));
    jobs.recover().await?;
    let app = api::app(db.clone(), config.clone(), jobs.clone(), keys);
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
