//! Storage for every Rosetta service: one schema, the same migrations on SQLite (the embedded
//! default) and PostgreSQL (split deployments).

pub mod entity;
pub mod migration;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use sea_orm;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and brings its schema up
/// to date. Every role runs this on start; migrations are idempotent and ordered.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        // WAL lets readers proceed during a write; the busy timeout makes concurrent writers
        // queue instead of failing with SQLITE_BUSY.
        options.max_connections(8).map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        options.max_connections(32);
    }
    let db = Database::connect(options).await?;
    migration::Migrator::up(&db, None).await?;
    tracing::debug!(backend = ?db.get_database_backend(), "database ready");
    Ok(db)
}

/// Wall-clock time as Unix milliseconds, the unit every timestamp column uses.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
