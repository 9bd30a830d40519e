//! The database pool's use as gauges, sampled: sqlx counts its connections itself, so
//! reading them is cheap, but nothing tells when they change.

use std::time::Duration;

use rosetta_db::sea_orm::{DatabaseBackend, DatabaseConnection};
use rosetta_kit::tasks::Tasks;

const OPEN: &str = "rosetta_db_pool_connections";
const IDLE: &str = "rosetta_db_pool_connections_idle";
/// Often enough for a scrape interval of 15 s.
const EVERY: Duration = Duration::from_secs(5);

/// Samples `db`'s pool into the gauges until `tasks` stops.
pub fn sample(db: &DatabaseConnection, tasks: &Tasks) {
    metrics::describe_gauge!(
        OPEN,
        "Database connections the pool holds (idle and in use)"
    );
    metrics::describe_gauge!(IDLE, "Database connections idle in the pool");
    let db = db.clone();
    let stopping = tasks.stopping().clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stopping.cancelled() => return,
            }
            let (size, idle) = match db.get_database_backend() {
                DatabaseBackend::Postgres => {
                    let pool = db.get_postgres_connection_pool();
                    (pool.size(), pool.num_idle())
                }
                DatabaseBackend::Sqlite => {
                    let pool = db.get_sqlite_connection_pool();
                    (pool.size(), pool.num_idle())
                }
                _ => return,
            };
            metrics::gauge!(OPEN).set(f64::from(size));
            metrics::gauge!(IDLE).set(idle as f64);
        }
    });
}
