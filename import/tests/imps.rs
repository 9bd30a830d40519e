//! A SysOfIMPS database (dump.sql shape, with the `add_assistor` trigger) imported into SQLite
//! and PostgreSQL: the bot and its friend rows are dropped, case-duplicate names renamed, a
//! dry run writes nothing, a second import changes nothing, and an old account logs in through
//! the IMPS bridge with its old plaintext password and sees its old friends.

mod common;

use std::time::Duration;

use common::{MariaDb, Target};
use rosetta_bridge_kit::settings::ImpsSettings;
use rosetta_db::{entity::user, sea_orm::EntityTrait as _};
use rosetta_import::{Options, Summary, System};
use rosetta_proto::account::v1::{LoginRequest, PasswordScheme, login_request::Identifier};
use rosetta_testkit::{Backend, TestServer, both_backends};
use sqlx::Connection as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const PATIENCE: Duration = Duration::from_secs(30);

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

async fn import(from: &str, to: &str, dry_run: bool) -> Summary {
    rosetta_import::run(&Options {
        system: System::Sysofimps,
        from: from.to_owned(),
        to: to.to_owned(),
        files_dir: None,
        store: None,
        dry_run,
    })
    .await
    .expect("import runs")
}

both_backends!(imps_import, super::import_and_log_in);

async fn import_and_log_in(backend: Backend) {
    let maria = MariaDb::create().await;
    let mut conn = sqlx::MySqlConnection::connect(&maria.url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(IMPS)
        .execute(&mut conn)
        .await
        .expect("SysOfIMPS schema and rows");
    drop(conn);
    let target = Target::create(backend).await;
    let url = target.url.clone();

    let dry = import(&maria.url, &url, true).await;
    assert_eq!(dry.kinds["users"].imported, 3, "{dry}");
    assert_eq!(dry.kinds["messages"].imported, 3, "{dry}");
    let first = import(&maria.url, &url, false).await;
    println!("{first}");
    assert_eq!(first.kinds["users"].read, 5, "{first}");
    assert_eq!(first.kinds["users"].imported, 3, "{first}");
    assert_eq!(first.kinds["friendships"].read, 8, "{first}");
    assert_eq!(first.kinds["friendships"].imported, 2, "{first}");
    assert_eq!(first.kinds["messages"].imported, 3, "{first}");
    assert_eq!(
        first.kinds["users"].imported, 3,
        "the dry run wrote nothing: {first}"
    );
    let second = import(&maria.url, &url, false).await;
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

    // The Android client: log in with the old plaintext, then ask for the friend list.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let settings = ImpsSettings {
        listen: listener.local_addr().expect("addr"),
        ..ImpsSettings::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rosetta_bridge_imps::serve(
        listener,
        server.backend(),
        settings.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut tom = TcpStream::connect(settings.listen).await.expect("connect");
    tom.write_all(&frame(1, &[b"Tom", b"pw1"])).await.unwrap();
    let reply = read_frame(&mut tom).await;
    assert_eq!(reply[0], 2, "S_LOGIN_RSP: {reply:02x?}");
    tom.write_all(&frame(5, &[b"Tom"])).await.unwrap();
    let list = loop {
        let frame = read_frame(&mut tom).await;
        if frame[0] == 6 {
            break frame;
        }
    };
    // S_FRIENDLIST_REFURBISH_RSP: i64 count, then per friend name, status, e-mail, time, x, y.
    let mut at = 1;
    let count = i64::from_be_bytes(list[at..at + 8].try_into().unwrap());
    at += 8;
    let mut names = Vec::new();
    for _ in 0..count {
        names.push(string(&list, &mut at));
        at += 1;
        string(&list, &mut at);
        string(&list, &mut at);
        at += 16;
    }
    names.sort();
    assert_eq!(
        names,
        ["Ann", "tom_3"],
        "Tom's old friends, the bot not among them"
    );
    assert_eq!(at, list.len(), "the whole list was read");
    let _ = stop.send(());
    server.stop().await;
}

/// A client frame as the Android client writes it: `OK`, the body length, the command and
/// each field as an i64 byte count and the bytes.
fn frame(cmd: u8, fields: &[&[u8]]) -> Vec<u8> {
    let mut body = vec![cmd];
    for field in fields {
        body.extend_from_slice(&(field.len() as i64).to_be_bytes());
        body.extend_from_slice(field);
    }
    let mut out = b"OK".to_vec();
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The next server frame's body (command byte first).
async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(PATIENCE, async {
        let mut header = [0u8; 6];
        stream.read_exact(&mut header).await.expect("header");
        assert_eq!(&header[..2], b"OK");
        let len = i32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        let mut body = vec![0; usize::try_from(len).expect("length")];
        stream.read_exact(&mut body).await.expect("body");
        body
    })
    .await
    .expect("a frame in time")
}

fn string(body: &[u8], at: &mut usize) -> String {
    let len = i64::from_be_bytes(body[*at..*at + 8].try_into().unwrap()) as usize;
    let text = String::from_utf8(body[*at + 8..*at + 8 + len].to_vec()).expect("ASCII");
    *at += 8 + len;
    text
}
