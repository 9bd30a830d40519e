//! A messy QtQQ database in a fresh MariaDB database, imported into SQLite and PostgreSQL;
//! the second import changes nothing; an old account then logs in through the pipe bridge
//! with its old password and sees its old friends and its unread messages.

mod common;

use std::time::Duration;

use common::{MariaDb, Target};

use rosetta_bridge_kit::settings::PipeSettings;
use rosetta_import::{Options, Summary, System};
use rosetta_testkit::{Backend, TestServer};
use sqlx::Connection as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const MD5_123456: &str = "e10adc3949ba59abbe56e057f20f883e";
const MD5_654321: &str = "c33367701511b4f6020ec61ded352059";
const PATIENCE: Duration = Duration::from_secs(30);

/// QtQQ's schema (chatroom.sql, latin1 everywhere) and rows with the reference's traps.
const QTQQ: &str = r#"
CREATE TABLE `user` (
  userid int(5) unsigned zerofill NOT NULL AUTO_INCREMENT,
  user_name varchar(45) NOT NULL, password varchar(45) NOT NULL,
  nickname varchar(45) DEFAULT NULL, signature varchar(60) DEFAULT NULL,
  online_status tinyint(1) DEFAULT 0, head_portrait_id varchar(64) DEFAULT NULL,
  VIP tinyint(1) NOT NULL DEFAULT 0, token varchar(32) DEFAULT NULL,
  password_protect_id int(1) unsigned NOT NULL, answer varchar(32) NOT NULL,
  PRIMARY KEY (userid), UNIQUE KEY (user_name)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
CREATE TABLE friend_info (friend_id int(5) NOT NULL, userid int(5) NOT NULL) DEFAULT CHARSET=latin1;
CREATE TABLE friend_apply (object_id int(5) NOT NULL, applicant_id int(5) NOT NULL,
  friend_apply_message varchar(200) DEFAULT NULL, PRIMARY KEY (object_id)) DEFAULT CHARSET=latin1;
CREATE TABLE single_chat_info (single_chat_info_id int(11) zerofill NOT NULL AUTO_INCREMENT,
  member_id1 int(5) NOT NULL, member_id2 int(5) NOT NULL, PRIMARY KEY (single_chat_info_id))
  DEFAULT CHARSET=latin1;
CREATE TABLE single_chat_history (chat_info_id int(11) NOT NULL, `time` varchar(64) NOT NULL,
  photo tinyint(1) NOT NULL, `read` tinyint(1) DEFAULT 0, poster_id int(5) zerofill NOT NULL,
  content varchar(200) NOT NULL) DEFAULT CHARSET=latin1;
CREATE TABLE group_chat_info (group_chat_info_id int(11) NOT NULL, member_id int(5) NOT NULL,
  group_chat_name varchar(45) DEFAULT NULL, group_chat_admin tinyint(1) NOT NULL DEFAULT 0)
  DEFAULT CHARSET=latin1;
CREATE TABLE group_chat_management (applicant_id int(5) NOT NULL,
  group_chat_id varchar(45) NOT NULL, group_chat_management_message varchar(200) DEFAULT '""',
  PRIMARY KEY (group_chat_id)) DEFAULT CHARSET=latin1;
CREATE TABLE group_chat_history (group_chat_info_id int(11) NOT NULL, `time` varchar(64) NOT NULL,
  `read` varchar(45) DEFAULT '0', poster_id int(5) NOT NULL, content varchar(200) NOT NULL)
  DEFAULT CHARSET=latin1;
CREATE TABLE temperary_message (poster_id int(5) NOT NULL, recv_id int(5) NOT NULL,
  `time` varchar(64) NOT NULL, content varchar(200) NOT NULL,
  group_chat_info_id int(11) zerofill NOT NULL DEFAULT 0) DEFAULT CHARSET=latin1;

INSERT INTO `user` (userid, user_name, password, nickname, signature, head_portrait_id, VIP,
  password_protect_id, answer) VALUES
  (123, 'alice', 'E10ADC3949BA59ABBE56E057F20F883E', 'Alice', 'hello|2|leaked', '5', 1, 2, 'blue|0'),
  (124, 'bob', 'c33367701511b4f6020ec61ded352059', 'Bob', NULL, '3', 0, 1, 'red'),
  (125, 'carol', '123', NULL, NULL, NULL, 0, 1, 'x'),
  (126, 'dave', 'c33367701511b4f6020ec61ded352059', X'E4B8ADE69687', 'sig', '1', 0, 1, 'y'),
  (127, 'bad name', 'c33367701511b4f6020ec61ded352059', 'Bad', NULL, '1', 0, 1, 'z');
INSERT INTO friend_info (userid, friend_id) VALUES
  (123, 124), (124, 123), (123, 124), (123, 125), (123, 133), (124, 124);
INSERT INTO friend_apply VALUES (126, 125, 'plz'), (12, 5, 'orphan'), (124, 123, 'again');
INSERT INTO single_chat_info VALUES (1, 123, 124), (2, 124, 123);
INSERT INTO single_chat_history (chat_info_id, `time`, photo, `read`, poster_id, content) VALUES
  (1, '20190904100000', 0, 1, 124, 'hello_alice'),
  (2, '2019-09-04-10:01:00', 0, 0, 123, 'hi_bob'),
  (0, '20190904100200', 0, 0, 123, 'lost_conversation');
INSERT INTO temperary_message (poster_id, recv_id, `time`, content, group_chat_info_id) VALUES
  (124, 123, '20190904110000', 'are_you_there', 0),
  (125, 123, 'sometime', 'from_carol', 0),
  (124, 123, '20190904120000', 'group_hello', 500);
INSERT INTO group_chat_info VALUES
  (500, 123, 'club', 1), (500, 124, NULL, 0), (500, 124, NULL, 0), (500, 999, NULL, 0),
  (501, 125, NULL, 0);
INSERT INTO group_chat_management VALUES (126, '500', '""'), (126, 'abc', 'x');
INSERT INTO group_chat_history (group_chat_info_id, `time`, `read`, poster_id, content) VALUES
  (500, '20190904120000', '0', 124, 'group_hello');
"#;

async fn import(from: &str, to: &str, dry_run: bool) -> Summary {
    rosetta_import::run(&Options {
        system: System::Qtqq,
        from: from.to_owned(),
        to: to.to_owned(),
        files_dir: None,
        store: None,
        dry_run,
    })
    .await
    .expect("import runs")
}

async fn import_and_log_in(backend: Backend) {
    let maria = MariaDb::create().await;
    let mut conn = sqlx::MySqlConnection::connect(&maria.url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(QTQQ)
        .execute(&mut conn)
        .await
        .expect("QtQQ schema and rows");
    drop(conn);

    let target = Target::create(backend).await;
    let url = target.url.clone();

    let dry = import(&maria.url, &url, true).await;
    assert_eq!(dry.kinds["users"].imported, 4, "{dry}");
    let first = import(&maria.url, &url, false).await;
    println!("{first}");
    let users = &first.kinds["users"];
    assert_eq!((users.read, users.imported), (5, 4), "{first}");
    assert_eq!(users.skipped_total(), 1, "{first}");
    assert_eq!(first.kinds["friendships"].imported, 2, "{first}");
    assert_eq!(first.kinds["friend requests"].imported, 1, "{first}");
    assert_eq!(first.kinds["groups"].imported, 2, "{first}");
    assert_eq!(first.kinds["group members"].imported, 3, "{first}");
    assert_eq!(first.kinds["join requests"].imported, 1, "{first}");
    // hello_alice, hi_bob, are_you_there, from_carol, group_hello (queued copy merged).
    assert_eq!(first.kinds["messages"].imported, 5, "{first}");
    assert_eq!(first.kinds["messages"].skipped_total(), 2, "{first}");

    let second = import(&maria.url, &url, false).await;
    assert_eq!(
        second.imported_total(),
        0,
        "second import is a no-op: {second}"
    );
    assert_eq!(second.kinds["users"].already, 4, "{second}");
    assert_eq!(second.kinds["messages"].already, 5, "{second}");

    let server = TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.database_url = Some(url.clone());
    })
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = tokio::spawn(rosetta_bridge_pipe::serve(
        listener,
        server.backend(),
        PipeSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let mut alice = Client::connect(addr).await;
    alice.send(&format!("login|alice|{MD5_123456}")).await;
    let login = alice.read_until("login_succ").await;
    let fields: Vec<&str> = login.split('|').collect();
    assert_eq!(fields[2], "00123", "legacy uid kept: {login:?}");
    let token = fields[3].to_owned();
    assert_eq!(fields[4], "3", "three unread messages: {login:?}");

    alice.send(&format!("get_user_friend|00123|{token}")).await;
    let friends = alice.read_until("friendinfo").await;
    assert!(friends.starts_with("friendinfo|2|"), "{friends:?}");
    assert!(
        friends.contains("00124") && friends.contains("00125"),
        "{friends:?}"
    );

    alice
        .send(&format!("get_user_info|00123|00123|{token}"))
        .await;
    let info = alice.read_until("userinfo").await;
    assert_eq!(info, "userinfo|Alice|5|hello", "signature cleaned");

    // UTF-8 bytes kept in a latin1 column come back as the text they were.
    alice
        .send(&format!("get_user_info|00123|00126|{token}"))
        .await;
    let info = alice.read_until("friend_detail_info").await;
    assert_eq!(info, "friend_detail_info|中文|1|sig");

    alice
        .send(&format!("get_unread_message|00123|{token}"))
        .await;
    let unread = alice.read_until("no_unread_message|0").await;
    for text in ["are_you_there", "from_carol", "group_hello"] {
        assert!(unread.contains(text), "{text} unread: {unread:?}");
    }
    for text in ["hello_alice", "hi_bob"] {
        assert!(!unread.contains(text), "{text} was read: {unread:?}");
    }

    // A hand-written plaintext password row logs in with that text, as it did.
    let mut carol = Client::connect(addr).await;
    carol.send("login|carol|123").await;
    let login = carol.read_until("login_succ").await;
    assert!(login.contains("|00125|"), "{login:?}");
    carol.send(&format!("login|bob|{MD5_123456}")).await;
    carol.read_until("login_error").await;

    // New accounts get ids after the imported ones.
    let mut erin = Client::connect(addr).await;
    erin.send(&format!("register|erin|{MD5_654321}|Erin|1|sig|1|ans"))
        .await;
    erin.read_until("register_succ").await;
    erin.send(&format!("login|erin|{MD5_654321}")).await;
    let login = erin.read_until("login_succ").await;
    assert!(login.contains("|00127|"), "{login:?}");

    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, bridge)
        .await
        .expect("bridge stops")
        .expect("bridge task");
    drop(server);
}

struct Client {
    stream: TcpStream,
    pending: String,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("connect to bridge"),
            pending: String::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.stream
            .write_all(line.as_bytes())
            .await
            .expect("write to bridge");
    }

    /// Reads until `needle` has arrived; returns everything from the message that starts with
    /// it back to the end of what was read up to and including it (earlier bytes dropped).
    async fn read_until(&mut self, needle: &str) -> String {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(at) = self.pending.find(needle) {
                // Wait for the rest of that message (messages arrive as single writes).
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.fill_nonblocking().await;
                let reply = self.pending[at..].to_owned();
                let before = self.pending[..at].to_owned();
                self.pending.clear();
                return if needle == "no_unread_message|0" {
                    before + &reply
                } else {
                    reply
                };
            }
            assert!(
                started.elapsed() < PATIENCE,
                "no {needle:?} within {PATIENCE:?}: {:?}",
                self.pending
            );
            let mut buf = vec![0u8; 64 * 1024];
            let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut buf))
                .await
                .expect("reply in time")
                .expect("read from bridge");
            assert!(n > 0, "bridge closed the connection: {:?}", self.pending);
            self.pending
                .push_str(std::str::from_utf8(&buf[..n]).expect("UTF-8 reply"));
        }
    }

    async fn fill_nonblocking(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(10), self.stream.read(&mut buf)).await
        {
            self.pending
                .push_str(std::str::from_utf8(&buf[..n]).expect("UTF-8 reply"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtqq_import_sqlite() {
    import_and_log_in(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtqq_import_postgres() {
    import_and_log_in(Backend::Postgres).await;
}
