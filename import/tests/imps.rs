//! A SysOfIMPS database (dump.sql shape, with the `add_assistor` trigger) imported into SQLite:
//! the bot and its friend rows are dropped, case-duplicate names renamed, a second import
//! changes nothing, and an old account logs in with its old plaintext password.

mod common;

use common::MariaDb;
use rosetta_db::{entity::user, sea_orm::EntityTrait as _};
use rosetta_import::{Options, Summary, System};
use rosetta_proto::account::v1::{LoginRequest, PasswordScheme, login_request::Identifier};
use rosetta_testkit::{Backend, TestServer};
use sqlx::Connection as _;

const IMPS: &str = r#"
SET SESSION sql_mode = '';
CREATE TABLE `user` (userid bigint NOT NULL AUTO_INCREMENT, username varchar(20) NOT NULL,
  password varchar(20) NOT NULL, email varchar(30) NOT NULL, gender enum('M','F') NOT NULL,
  PRIMARY KEY (userid)) DEFAULT CHARSET=latin1;
CREATE TABLE friend (userid bigint NOT NULL, use_userid bigint NOT NULL,
  `time` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (userid, use_userid),
  FOREIGN KEY (userid) REFERENCES `user` (userid) ON DELETE CASCADE,
  FOREIGN KEY (use_userid) REFERENCES `user` (userid) ON DELETE CASCADE) DEFAULT CHARSET=latin1;
CREATE TABLE message (m_id bigint NOT NULL AUTO_INCREMENT, use_userid bigint NOT NULL,
  userid bigint NOT NULL, m_time timestamp NOT NULL, message varchar(500) DEFAULT NULL,
  sent int DEFAULT 1, PRIMARY KEY (m_id)) DEFAULT CHARSET=utf8;
INSERT INTO `user` VALUES (1, 'IMPSAssistor', 'assist', 'bot@imps.com', 'M');
CREATE TRIGGER add_assistor AFTER INSERT ON `user` FOR EACH ROW
  INSERT INTO friend (userid, use_userid) VALUES (1, NEW.userid);
INSERT INTO `user` VALUES (2, 'Tom', 'pw1', 'tom@x.com', 'M'), (3, 'tom', 'pw2', 'TOM@x.com', 'F'),
  (4, 'Ann', 'pw3', 'not-an-email', 0), (5, 'Zed', '', 'z@x.com', 'M');
INSERT INTO friend VALUES (2, 3, '2012-01-02 10:00:00'), (3, 2, '2012-01-02 10:00:00'),
  (2, 4, '2012-01-03 10:00:00'), (4, 5, '2012-01-03 10:00:00');
INSERT INTO message (use_userid, userid, m_time, message) VALUES
  (3, 2, '2012-01-02 10:01:00', 'hello'), (2, 3, '2012-01-02 10:02:00', 'hi'),
  (2, 1, '2012-01-02 10:03:00', 'welcome'), (2, 4, '2012-01-02 10:04:00', X'E4BDA0E5A5BD');
"#;

async fn import(from: &str, to: &str) -> Summary {
    rosetta_import::run(&Options {
        system: System::Sysofimps,
        from: from.to_owned(),
        to: to.to_owned(),
        files_dir: None,
        dry_run: false,
    })
    .await
    .expect("import runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imps_import_sqlite() {
    let maria = MariaDb::create().await;
    let mut conn = sqlx::MySqlConnection::connect(&maria.url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(IMPS)
        .execute(&mut conn)
        .await
        .expect("SysOfIMPS schema and rows");
    drop(conn);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("rosetta.db").display()
    );

    let first = import(&maria.url, &url).await;
    println!("{first}");
    assert_eq!(first.kinds["users"].read, 5, "{first}");
    assert_eq!(first.kinds["users"].imported, 3, "{first}");
    assert_eq!(first.kinds["friendships"].read, 8, "{first}");
    assert_eq!(first.kinds["friendships"].imported, 2, "{first}");
    assert_eq!(first.kinds["messages"].imported, 3, "{first}");
    let second = import(&maria.url, &url).await;
    assert_eq!(
        second.imported_total(),
        0,
        "second import is a no-op: {second}"
    );

    let db = rosetta_db::connect(&url).await.expect("target database");
    let tom = user::Entity::find_by_id(2).one(&db).await.unwrap().unwrap();
    assert_eq!((tom.username.as_str(), tom.gender), ("Tom", 1));
    assert_eq!(tom.email.as_deref(), Some("tom@x.com"));
    let other = user::Entity::find_by_id(3).one(&db).await.unwrap().unwrap();
    assert_eq!((other.username.as_str(), other.gender), ("tom_3", 2));
    assert_eq!(other.email, None, "e-mail already taken by uid 2");
    assert!(
        user::Entity::find_by_id(1)
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );
    drop(db);

    let server = TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.database_url = Some(url.clone());
    })
    .await;
    let mut account = server.account().await;
    let login = |name: &str, password: &str| LoginRequest {
        identifier: Some(Identifier::Username(name.into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    };
    account
        .login(login("Tom", "pw1"))
        .await
        .expect("old plaintext password logs in");
    account
        .login(login("tom_3", "pw2"))
        .await
        .expect("renamed account logs in");
    assert!(account.login(login("Tom", "pw2")).await.is_err());
}
