//! A messy OurChat database (snowflake ids, client-supplied times in seconds and ms, bad
//! hashes, a later build's friend / group / message rows with orphans and duplicates) imported
//! into a live node on SQLite and on PostgreSQL: a dry run writes nothing, the second import
//! changes nothing, and old accounts then log in through the OurChat WebSocket bridge with
//! the SHA-256 hex their client always sent, by ocid and by e-mail, keep their ocid, show
//! their profile, and can message exactly their imported friends and groups.

mod common;

use std::time::Duration;

use common::MariaDb;
use rosetta_bridge_kit::settings::OurChatSettings;
use rosetta_db::{
    entity::{
        credential,
        messaging::{message, read_state},
        social::{group, group_member},
        user,
    },
    sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _},
};
use rosetta_import::{Options, Summary, System};
use rosetta_proto::account::v1::{PasswordScheme, RegisterRequest};
use rosetta_testkit::{Backend, TestServer};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const PATIENCE: Duration = Duration::from_secs(30);
const EPOCH_MS: u64 = 1_288_834_974_657;
/// 2024-07-31T16:00:00Z, around when the OurChat server ran.
const T0: u64 = 1_722_441_600_000;

const ALICE: &str = "aB3dE5gH7j";
const BOB: &str = "Zx9Yw8Vu7T";
const CAROL: &str = "Qq1Ww2Ee3R";
const GRACE: &str = "Gg7Hh8Jj9K";
const HEIDI: &str = "Hh1Ii2Jj3K";
const IVAN: &str = "Iv4nIv4nIv";

fn sha256_hex(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// A snowflake as the OurChat server made it: 41-bit ms since the epoch, machine 1, seq 7.
fn snowflake(ms: u64) -> u64 {
    ((ms - EPOCH_MS) << 22) | (1 << 12) | 7
}

/// The tables as `server/src/db.rs` creates them (utf8mb4), except that `friend` and `chat`
/// lack their one-column keys, as a later build that filled them would have had to drop
/// them: so pairs and members can repeat.
const SCHEMA: &str = r#"
CREATE TABLE `user` (id BIGINT UNSIGNED NOT NULL, ocid CHAR(10) NOT NULL, passwd CHAR(64) NOT NULL,
  name CHAR(15) NOT NULL, email CHAR(120) NOT NULL, `time` BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (id), UNIQUE KEY (ocid), UNIQUE KEY (email)) DEFAULT CHARSET=utf8mb4;
CREATE TABLE friend (user_id BIGINT UNSIGNED NOT NULL, friend_id BIGINT UNSIGNED NOT NULL,
  name CHAR(15) NOT NULL) DEFAULT CHARSET=utf8mb4;
CREATE TABLE chat (group_id BIGINT UNSIGNED NOT NULL, user_id BIGINT UNSIGNED NOT NULL,
  name CHAR(15) NOT NULL, group_name CHAR(30) NOT NULL) DEFAULT CHARSET=utf8mb4;
CREATE TABLE chatgroup (group_id BIGINT UNSIGNED NOT NULL, group_name CHAR(30) NOT NULL,
  PRIMARY KEY (group_id)) DEFAULT CHARSET=utf8mb4;
CREATE TABLE user_chat_msg (user_id BIGINT UNSIGNED NOT NULL, chat_msg_id INT UNSIGNED NOT NULL,
  PRIMARY KEY (chat_msg_id)) DEFAULT CHARSET=utf8mb4;
CREATE TABLE user_chat_id (chat_msg_id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  msg_type INT UNSIGNED NOT NULL, msg_data VARCHAR(8000) NOT NULL,
  sender_id BIGINT UNSIGNED NOT NULL, PRIMARY KEY (chat_msg_id)) DEFAULT CHARSET=utf8mb4;
"#;

struct Ids {
    alice: u64,
    bob: u64,
    carol: u64,
    dave: u64,
    grace: u64,
}

fn ids() -> Ids {
    Ids {
        alice: snowflake(T0),
        bob: snowflake(T0 + 60_000),
        carol: snowflake(T0 + 120_000),
        dave: snowflake(T0 + 180_000),
        grace: snowflake(T0 + 300_000),
    }
}

/// The legacy rows; `taken_ocid` is the ocid of an account the node already has.
fn rows(taken_ocid: &str) -> String {
    let Ids {
        alice,
        bob,
        carol,
        dave,
        grace,
    } = ids();
    let eve = snowflake(T0 + 240_000);
    let heidi = snowflake(T0 + 360_000);
    let mallory = snowflake(T0 + 420_000);
    let big_group = snowflake(T0 + 500_000);
    let ghost = 999;
    let alice_hash = sha256_hex("123456").to_uppercase();
    let bob_hash = sha256_hex("654321");
    let carol_hash = sha256_hex("carol pw");
    let grace_hash = sha256_hex("grace pw");
    let other = sha256_hex("other");
    format!(
        r#"
INSERT INTO `user` VALUES
  ({alice}, '{ALICE}', '{alice_hash}', 'Alice', 'alice@example.com', 1722441601),
  ({bob}, '{BOB}', '{bob_hash}', '鲍勃', 'Bob@Example.com', 1722441660123),
  ({carol}, '{CAROL}', '{carol_hash}', '', 'not-an-email', 114514),
  ({dave}, 'Dd4Ff5Gg6H', 'hunter2', 'Dave', 'dave@example.com', 1722441780),
  ({eve}, 'bad ocid', '{other}', 'Eve', 'eve@example.com', 1722441840),
  ({grace}, '{GRACE}', '{grace_hash}', 'Grace', 'grace@example.com', 1722441900),
  ({heidi}, '{HEIDI}', '{other}', 'Heidi', 'TAKEN@example.com', 0),
  ({mallory}, '{taken_ocid}', '{other}', 'Mallory', 'mallory@example.com', 1722442020),
  (42, '{IVAN}', '{other}', 'Ivan', 'ivan@example.com', 1722441600);
INSERT INTO friend VALUES
  ({alice}, {bob}, 'bobby'), ({bob}, {alice}, ''), ({alice}, {bob}, 'again'),
  ({carol}, {alice}, ''), ({alice}, {alice}, 'me'), ({alice}, {ghost}, 'ghost'),
  ({dave}, {alice}, ''), ({grace}, {bob}, '');
INSERT INTO chatgroup VALUES (7, 'Study'), ({big_group}, 'Big'), (8, 'Empty');
INSERT INTO chat VALUES
  (7, {alice}, 'Al', 'my study'), (7, {bob}, '', ''), (7, {bob}, '', ''), (7, {ghost}, '', ''),
  (9, {alice}, '', ''), ({big_group}, {carol}, '', ''), ({big_group}, {bob}, '', ''),
  (8, {dave}, '', '');
INSERT INTO user_chat_id VALUES
  (1, 0, 'hi alice', {bob}), (2, 0, 'hello bob', {alice}), (3, 2, 'img.png', {bob}),
  (4, 0, 'no inbox link', {bob}), (5, 0, '', {alice}), (6, 0, 'to ghost', {alice}),
  (7, 0, 'from ghost', {ghost}), (8, 0, '中文消息', {grace});
INSERT INTO user_chat_msg VALUES
  ({alice}, 1), ({bob}, 2), ({alice}, 3), ({bob}, 5), ({ghost}, 6), ({alice}, 7), ({alice}, 42),
  ({bob}, 8);
"#
    )
}

async fn import(from: &str, to: &str, dry_run: bool) -> Summary {
    rosetta_import::run(&Options {
        system: System::Ourchat,
        from: from.to_owned(),
        to: to.to_owned(),
        files_dir: None,
        store: None,
        dry_run,
    })
    .await
    .expect("import runs")
}

async fn by_ocid(db: &DatabaseConnection, ocid: &str) -> Option<user::Model> {
    user::Entity::find()
        .filter(user::Column::Ocid.eq(ocid))
        .one(db)
        .await
        .expect("query users")
}

fn counts(s: &Summary, kind: &str) -> (u64, u64, u64, u64) {
    let c = &s.kinds[kind];
    (c.read, c.imported, c.already, c.skipped_total())
}

async fn import_and_log_in(backend: Backend) {
    // A live node on the target, with an account that already holds grace's ocid as its
    // login name and heidi's e-mail.
    let server = TestServer::start(backend).await;
    let url = server.config.database_url();
    let existing = server
        .account()
        .await
        .register(RegisterRequest {
            username: GRACE.into(),
            password: "pw".into(),
            password_scheme: PasswordScheme::Plain.into(),
            nickname: "Native".into(),
            email: "taken@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("register a native account")
        .into_inner()
        .user
        .expect("user");

    let maria = MariaDb::create().await;
    let mut conn = sqlx::MySqlConnection::connect(&maria.url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(SCHEMA)
        .execute(&mut conn)
        .await
        .expect("OurChat schema");
    sqlx::raw_sql(sqlx::AssertSqlSafe(rows(&existing.ocid)))
        .execute(&mut conn)
        .await
        .expect("OurChat rows");
    drop(conn);

    let db = rosetta_db::connect(&url).await.expect("target database");
    let dry = import(&maria.url, &url, true).await;
    assert!(dry.dry_run);
    assert_eq!(counts(&dry, "users"), (9, 6, 0, 3), "{dry}");
    assert_eq!(dry.kinds["messages"].imported, 3, "{dry}");
    assert!(by_ocid(&db, ALICE).await.is_none(), "dry run wrote a user");

    let first = import(&maria.url, &url, false).await;
    println!("{first}");
    assert_eq!(counts(&first, "users"), (9, 6, 0, 3), "{first}");
    let skipped = &first.kinds["users"].skipped;
    for reason in [
        "passwd not 64 hex characters (the client's SHA-256 hex)",
        "ocid empty, over 10 characters, or with spaces or '|'",
        "ocid already used by another Rosetta account",
    ] {
        assert_eq!(skipped.get(reason), Some(&1), "{reason}: {first}");
    }
    assert_eq!(counts(&first, "friendships"), (8, 3, 0, 5), "{first}");
    assert_eq!(counts(&first, "groups"), (3, 2, 0, 1), "{first}");
    assert_eq!(counts(&first, "group members"), (8, 4, 0, 4), "{first}");
    assert_eq!(counts(&first, "messages"), (8, 3, 0, 5), "{first}");
    for note in [
        "friend alias (friend.name) not imported: Rosetta friendships carry none",
        "registration time missing or implausible: the snowflake id's timestamp used",
        "id carries no plausible snowflake timestamp: the registration time used",
        "user name <ocid> used by another Rosetta account: named ourchat_<ocid>",
        "e-mail already used by another Rosetta account: left empty",
        "e-mail not an address: left empty",
        "group id 0 or beyond 2^53 (a snowflake): the group gets a fresh id",
        "inbox link (user_chat_msg) to a message that does not exist: ignored",
    ] {
        assert!(first.notes.contains_key(note), "note {note:?}: {first}");
    }

    let second = import(&maria.url, &url, false).await;
    assert_eq!(
        second.imported_total(),
        0,
        "second import is a no-op: {second}"
    );
    assert_eq!(counts(&second, "users"), (9, 0, 6, 3), "{second}");
    assert_eq!(second.kinds["friendships"].already, 3, "{second}");
    assert_eq!(second.kinds["groups"].already, 2, "{second}");
    assert_eq!(second.kinds["group members"].already, 4, "{second}");
    assert_eq!(second.kinds["messages"].already, 3, "{second}");

    // Stored as planned: fresh small ids, ocids kept, times checked, one SHA256_HEX verifier.
    let alice = by_ocid(&db, ALICE).await.expect("alice imported");
    let bob = by_ocid(&db, BOB).await.expect("bob imported");
    let carol = by_ocid(&db, CAROL).await.expect("carol imported");
    let grace = by_ocid(&db, GRACE).await.expect("grace imported");
    let heidi = by_ocid(&db, HEIDI).await.expect("heidi imported");
    let ivan = by_ocid(&db, IVAN).await.expect("ivan imported");
    for u in [&alice, &bob, &carol, &grace, &heidi, &ivan] {
        assert!(u.id > existing.id && u.id < 1 << 53, "fresh id: {u:?}");
        let verifiers = credential::Entity::find()
            .filter(credential::Column::UserId.eq(u.id))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(verifiers.len(), 1, "{u:?}");
        assert_eq!(verifiers[0].scheme, PasswordScheme::Sha256Hex as i16);
        assert!(verifiers[0].verifier.starts_with("$argon2id$"));
    }
    assert_eq!(
        (alice.username.as_str(), alice.nickname.as_str()),
        (ALICE, "Alice")
    );
    assert_eq!(alice.created_at_ms, 1_722_441_601_000, "seconds");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(bob.created_at_ms, 1_722_441_660_123, "milliseconds");
    assert_eq!(bob.email.as_deref(), Some("bob@example.com"));
    assert_eq!(carol.created_at_ms, (T0 + 120_000) as i64, "snowflake time");
    assert_eq!(
        (carol.nickname.as_str(), carol.email.as_deref()),
        (CAROL, None)
    );
    assert_eq!(grace.username, format!("ourchat_{GRACE}"));
    assert_eq!(heidi.email, None, "e-mail of the native account");
    assert_eq!(ivan.created_at_ms, T0 as i64);

    let study = group::Entity::find_by_id(7)
        .one(&db)
        .await
        .unwrap()
        .expect("group 7 kept");
    assert_eq!((study.name.as_str(), study.owner_id), ("Study", alice.id));
    let big = group::Entity::find()
        .filter(group::Column::Name.eq("Big"))
        .one(&db)
        .await
        .unwrap()
        .expect("big group");
    assert!(big.id < 1 << 53 && big.owner_id == bob.id, "{big:?}");
    let members = group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(big.id))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(members.len(), 2);

    // Messages still in an inbox are unread for it.
    let hi = message::Entity::find()
        .filter(message::Column::Text.eq("hi alice"))
        .one(&db)
        .await
        .unwrap()
        .expect("message 1");
    assert_eq!((hi.sender_id, hi.to_user_id), (bob.id, Some(alice.id)));
    let mark = read_state::Entity::find_by_id((hi.conversation_id, alice.id))
        .one(&db)
        .await
        .unwrap()
        .map_or(0, |r| r.last_read_seq);
    assert!(
        mark < hi.seq,
        "unread for alice: mark {mark}, seq {}",
        hi.seq
    );
    let cjk = message::Entity::find()
        .filter(message::Column::Text.eq("中文消息"))
        .one(&db)
        .await
        .unwrap()
        .expect("message 8");
    assert_eq!(cjk.sender_id, grace.id);

    // The bridge, as the real client meets it.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = tokio::spawn(rosetta_bridge_ourchat::serve(
        listener,
        server.backend(),
        OurChatSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));

    // Alice: the 54660bbd client's exact frames, by ocid, with her old (uppercase-stored) hash.
    let mut a = Ws::connect(addr).await;
    let status = a.call(r#"{"code": 12}"#).await;
    assert!(
        has(&status, r#""code":12"#) && has(&status, r#""status":0"#),
        "{status}"
    );
    let login = a
        .call(&format!(
            r#"{{"code": 6, "login_type": 1, "account": "{ALICE}", "password": "{}"}}"#,
            sha256_hex("123456")
        ))
        .await;
    assert!(
        has(&login, r#""code":7"#) && has(&login, r#""status":0"#),
        "{login}"
    );
    assert!(
        has(&login, &format!(r#""ocid":"{ALICE}""#)),
        "same ocid: {login}"
    );

    // A wrong password is refused as such.
    let mut x = Ws::connect(addr).await;
    x.call(r#"{"code": 12}"#).await;
    let refused = x
        .call(&format!(
            r#"{{"code": 6, "login_type": 1, "account": "{ALICE}", "password": "{}"}}"#,
            sha256_hex("654321")
        ))
        .await;
    assert!(has(&refused, r#""status":1"#), "{refused}");

    // Bob by e-mail as it was stored (mixed case), in the document's form: he reads pushes.
    let mut b = Ws::connect(addr).await;
    b.call(r#"{"code": 12}"#).await;
    let login = b
        .call(&format!(
            r#"{{"code": 6, "time": 1722441600, "login_type": 0, "account": "Bob@Example.com", "password": "{}"}}"#,
            sha256_hex("654321")
        ))
        .await;
    assert!(has(&login, r#""status":0"#), "{login}");
    assert!(has(&login, &format!(r#""ocid":"{BOB}""#)), "{login}");

    // Grace (renamed login name) still logs in by her ocid.
    let mut g = Ws::connect(addr).await;
    g.call(r#"{"code": 12}"#).await;
    let login = g
        .call(&format!(
            r#"{{"code": 6, "login_type": 1, "account": "{GRACE}", "password": "{}"}}"#,
            sha256_hex("grace pw")
        ))
        .await;
    assert!(has(&login, &format!(r#""ocid":"{GRACE}""#)), "{login}");

    // Account info shows the imported profiles and registration times.
    let info = a
        .call(&format!(
            r#"{{"code": 10, "time": 1722441600, "ocid": "{BOB}", "request_values": ["ocid", "nickname", "time"]}}"#
        ))
        .await;
    assert!(has(&info, r#""code":11"#), "{info}");
    assert!(has(&info, r#""nickname":"鲍勃""#), "{info}");
    assert!(has(&info, r#""time":1722441660"#), "{info}");
    let info = a
        .call(&format!(
            r#"{{"code": 10, "time": 1722441600, "ocid": "{ALICE}", "request_values": ["nickname", "time", "email"]}}"#
        ))
        .await;
    assert!(has(&info, r#""nickname":"Alice""#), "{info}");
    assert!(has(&info, r#""time":1722441601"#), "{info}");
    assert!(has(&info, r#""email":"alice@example.com""#), "{info}");

    // The imported friendship carries a private message (friends only); the group one too.
    a.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{ALICE}", "private_id": "{BOB}"}}, "msg": "still here"}}"#
    ))
    .await;
    let push = b.recv().await;
    assert!(
        has(&push, r#""code":0"#) && has(&push, r#""msg":"still here""#),
        "{push}"
    );
    assert!(has(&push, &format!(r#""ocid":"{ALICE}""#)), "{push}");
    a.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{ALICE}", "group_id": 7}}, "msg": "study time"}}"#
    ))
    .await;
    let push = b.recv().await;
    assert!(
        has(&push, r#""group_id":7"#) && has(&push, r#""msg":"study time""#),
        "{push}"
    );
    // Ivan was nobody's friend.
    a.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{ALICE}", "private_id": "{IVAN}"}}, "msg": "hello?"}}"#
    ))
    .await;
    let error = a.recv().await;
    assert!(has(&error, r#""code":18"#), "{error}");

    // A new account registered through the bridge gets an id after the imported ones.
    let mut n = Ws::connect(addr).await;
    n.call(r#"{"code": 12}"#).await;
    n.call(r#"{"code": 14}"#).await;
    let reply = n
        .call(&format!(
            r#"{{"code": 4, "email": "newbie@example.com", "password": "{}"}}"#,
            sha256_hex("newbie")
        ))
        .await;
    assert!(has(&reply, r#""status":0"#), "{reply}");
    let newbie = user::Entity::find()
        .filter(user::Column::Email.eq("newbie@example.com"))
        .one(&db)
        .await
        .unwrap()
        .expect("newbie");
    let highest = [&alice, &bob, &carol, &grace, &heidi, &ivan]
        .iter()
        .map(|u| u.id)
        .max()
        .unwrap();
    assert!(newbie.id > highest, "{} after {highest}", newbie.id);

    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, bridge)
        .await
        .expect("bridge stops")
        .expect("bridge task");
    drop(server);
}

fn has(frame: &str, needle: &str) -> bool {
    frame.contains(needle)
}

/// A bare WebSocket client (RFC 6455): the upgrade request, masked text frames out, and the
/// server's unmasked frames in.
struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Ws {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect to bridge");
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("upgrade");
        let mut ws = Self {
            stream,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(at) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            ws.fill().await;
        };
        let head = String::from_utf8_lossy(&ws.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // The accept value of the RFC's sample key.
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "Sec-WebSocket-Accept: {head}"
        );
        ws.buf.drain(..end);
        ws
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("bytes in time")
            .expect("read from bridge");
        assert!(n > 0, "bridge closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x5a, 0x13, 0xc7, 0x81];
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&u16::try_from(n).expect("small frame").to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).await.expect("write to bridge");
    }

    async fn send(&mut self, text: &str) {
        self.frame(0x1, text.as_bytes()).await;
    }

    /// The next text frame (pings answered on the way).
    async fn recv(&mut self) -> String {
        loop {
            if let Some((opcode, payload, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                match opcode {
                    0x1 => return String::from_utf8(payload).expect("UTF-8 frame"),
                    0x9 => self.frame(0xA, &payload).await,
                    0xA => {}
                    other => panic!("unexpected frame opcode {other}: {payload:?}"),
                }
                continue;
            }
            self.fill().await;
        }
    }

    async fn call(&mut self, text: &str) -> String {
        self.send(text).await;
        self.recv().await
    }
}

/// One complete unfragmented server frame at the start of `buf`: (opcode, payload, bytes used).
fn parse(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let [b0, b1, ..] = *buf else { return None };
    assert!(b0 & 0x80 != 0, "fragmented frame");
    assert!(b1 & 0x80 == 0, "server frames are not masked");
    let (len, at) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((b0 & 0x0f, payload, at + len))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ourchat_import_sqlite() {
    import_and_log_in(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ourchat_import_postgres() {
    import_and_log_in(Backend::Postgres).await;
}
