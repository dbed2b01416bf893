//! The command line: `serve` (default), `healthcheck`, `backup`, `openapi`.

use crate::config::{Cli, Command, Config, LogFormat};
use crate::server;
use clap::Parser;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.config),
        Some(Command::Serve(c)) => serve(c),
        Some(Command::Healthcheck(c)) => healthcheck(&c),
        Some(Command::Backup { path, config }) => backup(&config, &path),
        Some(Command::Openapi) => {
            print!("{}", crate::api::openapi_json());
            ExitCode::SUCCESS
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn serve(config: Config) -> ExitCode {
    init_tracing(&config);
    let rt = runtime();
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        server::serve(listener, config, server::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            eprintln!("boundstate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// GET /healthz on the configured address (0.0.0.0 → loopback); exit 0 on a 200.
fn healthcheck(config: &Config) -> ExitCode {
    let mut addr = config.bind;
    if addr.ip().is_unspecified() {
        addr = match addr {
            SocketAddr::V4(a) => SocketAddr::from(([127, 0, 0, 1], a.port())),
            SocketAddr::V6(a) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        };
    }
    let check = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        Ok(buf.starts_with(b"HTTP/1.1 200"))
    };
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("boundstate healthcheck: {addr} answered, but not 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("boundstate healthcheck: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn backup(config: &Config, path: &std::path::Path) -> ExitCode {
    if path.exists() {
        eprintln!("boundstate backup: {} already exists", path.display());
        return ExitCode::FAILURE;
    }
    let rt = runtime();
    let result = rt.block_on(async {
        let db = crate::store::Db::connect(&config.database_url).await?;
        db.backup(path).await?;
        db.close().await;
        Ok::<_, server::BoxError>(())
    });
    match result {
        Ok(()) => {
            println!("backup written to {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("boundstate backup: {e}");
            ExitCode::FAILURE
        }
    }
}
