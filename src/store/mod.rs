//! The store: SQLite through sqlx. One module per table group; functions take a connection or a
//! transaction. WAL mode, foreign keys on, `BEGIN IMMEDIATE` for writes, runtime queries only.

pub mod blob;
pub mod datasets;
pub mod jobs;
pub mod library;
pub mod models;
pub mod samples;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub type StoreError = sqlx::Error;

/// The database: a pool for readers and a single-connection pool for writers, so writes queue in
/// the process instead of fighting over SQLite's lock.
#[derive(Clone, Debug)]
pub struct Db {
    read: SqlitePool,
    write: SqlitePool,
    path: Option<std::path::PathBuf>,
}

impl Db {
    /// Open (creating the file and its directory if missing) and run the migrations.
    pub async fn connect(url: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let path = options.get_filename().to_path_buf();
        let in_memory = path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:");
        if !in_memory
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(false))
            .await?;
        Ok(Self {
            read,
            write,
            path: (!in_memory).then_some(path),
        })
    }

    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// A write transaction (`BEGIN IMMEDIATE`: the write lock is taken at the start).
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    pub fn writer(&self) -> &SqlitePool {
        &self.write
    }

    /// `SELECT 1` on a reader: the readiness probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map(|_| ())
    }

    /// Size of the database file plus its WAL, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let Some(path) = &self.path else { return 0 };
        let main = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        main + std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    /// Online backup to `dest` with `VACUUM INTO` (consistent snapshot; safe while serving).
    pub async fn backup(&self, dest: &std::path::Path) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO ?")
            .bind(dest.to_string_lossy().into_owned())
            .execute(&self.read)
            .await
            .map(|_| ())
    }

    /// `PRAGMA integrity_check` → "ok" when the file is sound.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let row: (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&self.read)
            .await?;
        Ok(row.0)
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Current UTC time as RFC 3339 text (the store's timestamp format).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of now cannot fail")
}
