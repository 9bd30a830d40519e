//! A throwaway MariaDB database per test. MariaDB comes from `ROSETTA_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306`); a test fails, never skips, when it cannot be
//! reached.

use rosetta_testkit::{Backend, PgDatabase};
use sqlx::Connection as _;

/// The Rosetta database an import writes to: a SQLite file in a temporary directory, or a
/// PostgreSQL database of its own; both go away with the value. (The tests that import into a
/// running node's database do not use it.)
#[allow(dead_code)]
pub struct Target {
    pub dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
    pub url: String,
}

#[allow(dead_code)]
impl Target {
    pub async fn create(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        let url = pg.as_ref().map_or_else(
            || {
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("rosetta.db").display()
                )
            },
            |pg| pg.url.clone(),
        );
        Self { dir, _pg: pg, url }
    }
}

/// A MariaDB database that exists for one test.
pub struct MariaDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl MariaDb {
    pub async fn create() -> Self {
        let admin_url = std::env::var("ROSETTA_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
        let mut admin = sqlx::MySqlConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "MariaDB test: cannot reach {admin_url} ({err}). Start MariaDB or point \
                     ROSETTA_TEST_MYSQL_URL at one; this test does not pass without it."
                )
            });
        let name = format!("rosetta_import_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = format!("{}/{name}", admin_url.trim_end_matches('/'));
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut admin) = sqlx::MySqlConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}
