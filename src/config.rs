//! Every setting has a flag and a `BOUNDSTATE_*` environment variable, with a default that works
//! on a laptop.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "boundstate",
    version,
    about = "Thermodynamic generative models on binary data, served over HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub config: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve(Config),
    /// Exit 0 if a server answers `GET /healthz` on the configured address (for Docker's HEALTHCHECK).
    Healthcheck(Config),
    /// Copy the database to PATH with SQLite's online backup (`VACUUM INTO`); safe while serving.
    Backup {
        /// Destination file; must not exist yet.
        path: PathBuf,
        #[command(flatten)]
        config: Config,
    },
    /// Print the OpenAPI document to standard output.
    Openapi,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BOUNDSTATE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// SQLite database URL; the file is created with its directory if missing.
    #[arg(
        long,
        env = "BOUNDSTATE_DATABASE_URL",
        default_value = "sqlite://./data/boundstate.db"
    )]
    pub database_url: String,

    /// Threads of the compute pool (rayon) that runs training and sampling; 0 = cores − 1 (at least 1).
    #[arg(long, env = "BOUNDSTATE_COMPUTE_THREADS", default_value_t = 0)]
    pub compute_threads: usize,

    /// Threads of the small pool for interactive requests (retrieval, small sampling), so they do
    /// not wait behind training jobs.
    #[arg(long, env = "BOUNDSTATE_INTERACTIVE_THREADS", default_value_t = 1)]
    pub interactive_threads: usize,

    /// Jobs that run at once; the rest wait in order.
    #[arg(long, env = "BOUNDSTATE_MAX_CONCURRENT_JOBS", default_value_t = 2)]
    pub max_concurrent_jobs: usize,

    /// Jobs allowed to wait; beyond it new jobs get 429 with Retry-After.
    #[arg(long, env = "BOUNDSTATE_MAX_QUEUED_JOBS", default_value_t = 64)]
    pub max_queued_jobs: usize,

    /// Largest request body in bytes.
    #[arg(long, env = "BOUNDSTATE_BODY_LIMIT", default_value_t = 64 * 1024 * 1024)]
    pub body_limit: usize,

    /// Largest number of spins N of a dataset or model.
    #[arg(long, env = "BOUNDSTATE_MAX_SPINS", default_value_t = 4096)]
    pub max_spins: usize,

    /// Largest number of rows (samples) of a dataset.
    #[arg(long, env = "BOUNDSTATE_MAX_ROWS", default_value_t = 1_000_000)]
    pub max_rows: usize,

    /// Largest N for exact enumeration and the full description (2^N states).
    #[arg(long, env = "BOUNDSTATE_EXACT_MAX_SPINS", default_value_t = 20)]
    pub exact_max_spins: usize,

    /// Largest number of couplings of a model.
    #[arg(long, env = "BOUNDSTATE_MAX_COUPLINGS", default_value_t = 5_000_000)]
    pub max_couplings: u64,

    /// Work budget (count × sweeps × N spin updates) under which sampling answers at once; above it a job runs.
    #[arg(
        long,
        env = "BOUNDSTATE_SYNC_WORK_BUDGET",
        default_value_t = 20_000_000
    )]
    pub sync_work_budget: u64,

    /// Largest work (count × sweeps × N) of one sampling or retrieval request.
    #[arg(long, env = "BOUNDSTATE_MAX_WORK", default_value_t = 50_000_000_000)]
    pub max_work: u64,

    /// Seconds a synchronous request may take before it is answered 503.
    #[arg(long, env = "BOUNDSTATE_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Seconds between checkpoints of running training jobs.
    #[arg(long, env = "BOUNDSTATE_CHECKPOINT_INTERVAL", default_value_t = 5)]
    pub checkpoint_interval_secs: u64,

    /// File with one API key and its scope (`read` or `write`) per line; unset = no authentication.
    #[arg(long, env = "BOUNDSTATE_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// Allow binding a non-loopback address without API keys.
    #[arg(
        long,
        env = "BOUNDSTATE_ALLOW_UNAUTHENTICATED",
        default_value_t = false
    )]
    pub allow_unauthenticated: bool,

    /// Require a key for /metrics too (health and readiness stay open).
    #[arg(long, env = "BOUNDSTATE_PROTECT_METRICS", default_value_t = false)]
    pub protect_metrics: bool,

    /// Secret for the HMAC-SHA256 signature of webhook deliveries (`X-Boundstate-Signature`).
    #[arg(long, env = "BOUNDSTATE_WEBHOOK_SECRET", default_value = "")]
    pub webhook_secret: String,

    /// Log format.
    #[arg(
        long,
        env = "BOUNDSTATE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "BOUNDSTATE_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// Compute threads after resolving 0 to cores − 1.
    pub fn resolved_compute_threads(&self) -> usize {
        if self.compute_threads > 0 {
            return self.compute_threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.saturating_sub(1).max(1)
    }

    /// A configuration for tests: an in-memory-free temporary database path and port 0.
    pub fn for_tests(database_url: String) -> Self {
        let mut c = Cli::parse_from(["boundstate"]).config;
        c.database_url = database_url;
        c.bind = "127.0.0.1:0".parse().expect("valid address");
        c.compute_threads = 2;
        c
    }
}
