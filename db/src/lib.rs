//! Storage for every Rosetta service: one schema, the same migrations on SQLite (the embedded
//! default) and PostgreSQL (split deployments).

pub mod entity;
pub mod migration;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use sea_orm;
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait as _,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::{Mutex, MutexGuard};

/// Rows a SQLite connection's driver thread may hand over before it waits for the reader. The
/// writer's statements return a row per message of a batch (`RETURNING`); with sqlx's default
/// of 50 the driver thread slept and was woken several times per statement.
const ROW_BUFFER: usize = 1024;

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
                .row_buffer_size(ROW_BUFFER)
        });
    } else {
        options.max_connections(32);
    }
    let mut db = Database::connect(options).await?;
    migration::Migrator::up(&db, None).await?;
    // After the migrations, whose statements belong to no request.
    db.set_metric_callback(sql_span);
    tracing::debug!(backend = ?db.get_database_backend(), "database ready");
    Ok(db)
}

/// A write transaction that holds this process's SQLite write turn until it ends.
pub struct WriteTransaction {
    tx: DatabaseTransaction,
    _turn: Option<MutexGuard<'static, ()>>,
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.tx.commit().await
    }
}

/// Begins a transaction that will write. SQLite admits one writer at a time, and a writer
/// that finds the lock taken sleeps in SQLite's busy handler (1, 2, 5 … 100 ms) while the lock
/// may long be free again: under concurrent sends the CPU idled and latencies grew by whole
/// sleeps. On SQLite, write transactions of this process therefore take turns on an async
/// gate first and reach SQLite one after another. PostgreSQL locks rows and needs no gate.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, DbErr> {
    static SQLITE_WRITER: Mutex<()> = Mutex::const_new(());
    let turn = match db.get_database_backend() {
        DatabaseBackend::Sqlite => Some(SQLITE_WRITER.lock().await),
        _ => None,
    };
    // IMMEDIATE on SQLite: the write lock is taken at `BEGIN`. A deferred transaction that
    // reads first (messaging checks policy epochs before it writes) holds a read snapshot, and
    // if another connection (the social service) commits meanwhile, its first write fails
    // with SQLITE_BUSY_SNAPSHOT instead of waiting. Taken at `BEGIN`, the lock waits in the
    // busy handler and every read inside sees the latest commit.
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    Ok(WriteTransaction {
        tx: db.begin_with_options(options).await?,
        _turn: turn,
    })
}

/// Records each statement as a span under the caller's (e.g. the gRPC call's), so SQL shows up
/// in the call's trace. sea-orm reports a statement once it has run: the span carries the
/// measured duration as `db.duration_ms`. The SQL is the parameterised text, without values.
fn sql_span(info: &sea_orm::metric::Info<'_>) {
    let sql = info.statement.sql.as_str();
    let operation = sql.split_whitespace().next().unwrap_or_default();
    let system = match info.statement.db_backend {
        sea_orm::DbBackend::Postgres => "postgresql",
        sea_orm::DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    };
    let _span = tracing::info_span!(
        target: "rosetta_db::sql",
        "sql",
        otel.name = %format_args!("sql {operation}"),
        otel.kind = "client",
        otel.status_code = if info.failed { "ERROR" } else { "OK" },
        db.system = system,
        db.statement = sql,
        db.duration_ms = u64::try_from(info.elapsed.as_millis()).unwrap_or(u64::MAX),
    );
}

/// Wall-clock time as Unix milliseconds, the unit every timestamp column uses.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
