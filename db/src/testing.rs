//! A PostgreSQL database that exists for one test (feature `testing`): every crate's tests that
//! run on PostgreSQL make theirs here, so there is one way to create and drop them.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait as _, Database};

/// The server the tests use unless `ROSETTA_TEST_POSTGRES_URL` names another.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created on the test server and dropped (with its connections) when this is.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates a database with a name no other test (in this or another process) has. Panics,
    /// saying what to start, when the server cannot be reached: a PostgreSQL test never skips.
    pub async fn create() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let admin_url = std::env::var("ROSETTA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL test: cannot reach {admin_url} ({err}). Start PostgreSQL or point \
                 ROSETTA_TEST_POSTGRES_URL at one; this test does not pass without it."
            )
        });
        let name = format!(
            "rosetta_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            crate::now_ms()
        );
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropping needs async I/O: on a runtime of its own, outside the test's.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Database::connect(&admin_url).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}
