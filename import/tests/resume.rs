//! An import interrupted after its first batch of users: the batch stays committed, the rerun
//! finds those users already there, imports the rest, and a third run changes nothing.

mod common;

use std::time::Duration;

use common::{MariaDb, Target};
use rosetta_db::{
    entity::user,
    sea_orm::{EntityTrait as _, PaginatorTrait as _},
};
use rosetta_import::{Options, System};
use rosetta_testkit::Backend;
use sqlx::Connection as _;

/// More users than one batch (256), so the import commits at least twice.
const USERS: u64 = 300;

fn options(from: &str, to: &str) -> Options {
    Options {
        system: System::Ourchat,
        from: from.to_owned(),
        to: to.to_owned(),
        files_dir: None,
        store: None,
        dry_run: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes() {
    let maria = MariaDb::create().await;
    let mut conn = sqlx::MySqlConnection::connect(&maria.url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE `user` (id BIGINT UNSIGNED NOT NULL, ocid CHAR(10) NOT NULL, \
           passwd CHAR(64) NOT NULL, name CHAR(15) NOT NULL, email CHAR(120) NOT NULL, \
           `time` BIGINT UNSIGNED NOT NULL, PRIMARY KEY (id), UNIQUE KEY (ocid), \
           UNIQUE KEY (email)) DEFAULT CHARSET=utf8mb4;
         INSERT INTO `user` SELECT ((1704067200000 - 1288834974657) << 22) + seq, \
           CONCAT('oc', LPAD(seq, 8, '0')), SHA2(CONCAT('pw', seq), 256), CONCAT('n', seq), \
           CONCAT('u', seq, '@example.com'), 1704067200 FROM seq_1_to_{USERS};"
    )))
    .execute(&mut conn)
    .await
    .expect("OurChat users");
    drop(conn);
    let target_db = Target::create(Backend::Sqlite).await;
    let url = target_db.url.clone();
    let target = rosetta_db::connect(&url).await.expect("target database");
    let count = || async { user::Entity::find().count(&target).await.expect("count") };

    // Stop the import as soon as its first batch is committed: the second batch is being
    // hashed then, and nothing else has been written.
    let opts = options(&maria.url, &url);
    let run = rosetta_import::run(&opts);
    let first_batch = async {
        while count().await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        done = run => panic!("the import finished before it could be interrupted: {done:?}"),
        waited = tokio::time::timeout(Duration::from_secs(120), first_batch) => {
            waited.expect("the first batch committed within 2 minutes");
        }
    }
    let kept = count().await;
    assert!(
        (1..USERS).contains(&kept),
        "the interrupted import kept its committed batch: {kept} users"
    );

    let resumed = rosetta_import::run(&options(&maria.url, &url))
        .await
        .expect("rerun");
    let users = &resumed.kinds["users"];
    assert_eq!(users.already, kept, "{resumed}");
    assert_eq!(users.imported, USERS - kept, "{resumed}");
    assert_eq!(count().await, USERS);

    let again = rosetta_import::run(&options(&maria.url, &url))
        .await
        .expect("third run");
    assert_eq!(again.imported_total(), 0, "{again}");
    assert_eq!(again.kinds["users"].already, USERS, "{again}");
}
