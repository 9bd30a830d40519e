//! A throwaway MariaDB database per test. MariaDB comes from `ROSETTA_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306`); a test fails, never skips, when it cannot be
//! reached.

use sqlx::Connection as _;

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
