//! A messy CloudChat database (the tables as the server creates them, plus orphans written
//! with foreign-key checks off) imported into a running node on SQLite and on PostgreSQL; a
//! dry run writes nothing and a second import changes nothing; old accounts then log in
//! through the CloudChat bridge over a real WebSocket with their old plaintext passwords and
//! see their old contacts, friend requests and history with its read state, frame by frame.

mod common;

use std::{net::SocketAddr, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use common::MariaDb;
use rosetta_bridge_kit::settings::CloudChatSettings;
use rosetta_db::{
    entity::{credential, user},
    sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _},
};
use rosetta_import::{Options, Summary, System};
use rosetta_testkit::{Backend, TestServer};
use sqlx::Connection as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const PATIENCE: Duration = Duration::from_secs(30);
/// 2024-01-01 00:00:00 UTC: the first legacy message.
const T0: i64 = 1_704_067_200;

/// The tables as cloudchatdat.cpp creates them (section 3 of the schema notes), then rows
/// with the notes' traps: plaintext passwords with quotes and backslashes, tokens full of
/// them, CJK text, `default.png` avatars, one row per friend pair but both orders present,
/// answered requests left in the table, `file_*` columns as empty strings, orphans.
const CLOUDCHAT: &str = r#"
CREATE TABLE IF NOT EXISTS users (
  id INT AUTO_INCREMENT PRIMARY KEY,
  username VARCHAR(255) NOT NULL UNIQUE,
  email VARCHAR(255) NOT NULL UNIQUE,
  password VARCHAR(255) NOT NULL,
  avatar VARCHAR(255) NOT NULL,
  token VARCHAR(255) NOT NULL,
  online BOOLEAN DEFAULT FALSE,
  last_active TIMESTAMP NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS friends (
  user_id1 INT NOT NULL,
  user_id2 INT NOT NULL,
  PRIMARY KEY (user_id1, user_id2),
  FOREIGN KEY (user_id1) REFERENCES users(id) ON DELETE CASCADE,
  FOREIGN KEY (user_id2) REFERENCES users(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS friend_requests (
  id INT AUTO_INCREMENT PRIMARY KEY,
  requester_id INT NOT NULL,
  target_id INT NOT NULL,
  requester_username VARCHAR(255) NOT NULL,
  target_username VARCHAR(255) NOT NULL,
  requester_avatar VARCHAR(255) NOT NULL,
  target_avatar VARCHAR(255) NOT NULL,
  status ENUM('pending', 'accepted', 'refused') DEFAULT 'pending',
  UNIQUE KEY (requester_id, target_id),
  FOREIGN KEY (requester_id) REFERENCES users(id) ON DELETE CASCADE,
  FOREIGN KEY (target_id) REFERENCES users(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS messages (
  id INT AUTO_INCREMENT PRIMARY KEY,
  sender_id INT NOT NULL,
  receiver_id INT NOT NULL,
  message_type ENUM('text', 'image', 'file') NOT NULL DEFAULT 'text',
  content TEXT,
  file_name VARCHAR(255),
  file_size INT,
  file_path VARCHAR(500),
  is_read BOOLEAN DEFAULT FALSE,
  created_at INT,
  INDEX (sender_id, receiver_id, created_at),
  FOREIGN KEY (sender_id) REFERENCES users(id) ON DELETE CASCADE,
  FOREIGN KEY (receiver_id) REFERENCES users(id) ON DELETE CASCADE
);

INSERT INTO users (id, username, email, password, avatar, token, online, created_at) VALUES
  (100, 'first', 'first@example.com', 'x1', 'default.png', 'a!b"c#d$e%f&g''h(', 1, '2023-12-01 10:00:00'),
  (2, 'alice', 'Alice@Example.com', 'pa"ss\\wo rd', 'default.png', 'k3#"Pq\\x9Zr$T2v\\W', 1, '2024-03-01 08:00:00'),
  (3, 'bob', 'bob@example.com', 'secret2', 'https://img.example/bob.png', 'e>7Yu$1Kd@c9Vb^Tq', 0, '2024-03-02 08:00:00'),
  (4, '中文名', 'cjk@example.com', '密码123', 'default.png', '~}|{zyx\\"wvu''tsr', 0, '2024-03-03 08:00:00'),
  (5, 'bad name', 'bad@example.com', 'pw', 'default.png', '0123456789abcdef', 0, '2024-03-04 08:00:00'),
  (6, 'eve', 'not-an-email', 'evepw', 'default.png', 'QQQQQQQQQQQQQQQ', 0, '2024-03-05 08:00:00'),
  (7, 'nopass', 'nopass@example.com', '', 'default.png', 'RRRRRRRRRRRRRRR', 0, '2024-03-06 08:00:00');

SET FOREIGN_KEY_CHECKS = 0;
INSERT INTO friends VALUES (2, 3), (3, 2), (2, 4), (4, 4), (2, 99), (5, 2), (100, 2);
INSERT INTO friend_requests (id, requester_id, target_id, requester_username, target_username,
  requester_avatar, target_avatar, status) VALUES
  (1, 2, 3, 'alice', 'bob', 'default.png', 'default.png', 'accepted'),
  (2, 6, 2, 'eve_old_name', 'alice', 'stale.png', 'default.png', 'pending'),
  (3, 4, 6, '中文名', 'eve', 'default.png', 'default.png', 'refused'),
  (4, 4, 2, '中文名', 'alice', 'default.png', 'default.png', 'pending'),
  (5, 99, 2, 'ghost', 'alice', 'default.png', 'default.png', 'pending'),
  (6, 2, 6, 'alice', 'eve', 'default.png', 'default.png', 'pending'),
  (7, 3, 6, 'bob', 'eve', 'default.png', 'default.png', 'accepted');
SET SESSION sql_mode = '';
INSERT INTO friend_requests (id, requester_id, target_id, requester_username, target_username,
  requester_avatar, target_avatar, status) VALUES
  (8, 3, 4, 'bob', '中文名', 'default.png', 'default.png', 'maybe');
INSERT INTO messages (id, sender_id, receiver_id, message_type, content, file_name, file_size,
  file_path, is_read, created_at) VALUES
  (1, 3, 2, 'text', 'hello alice', '', 0, '', 1, 1704067200),
  (2, 2, 3, 'text', 'quote " and back\\slash', '', 0, '', 1, 1704067260),
  (3, 3, 2, 'text', '你好，爱丽丝', '', 0, '', 0, 1704067320),
  (4, 2, 3, 'text', 'are you there?', '', 0, '', 0, 1704067380),
  (5, 3, 2, 'text', 'still here', '', 0, '', 0, 1704067440),
  (6, 4, 2, 'text', 'from 中文名', '', 0, '', 1, 1704067500),
  (7, 99, 2, 'text', 'ghost', '', 0, '', 1, 1704067510),
  (8, 2, 2, 'text', 'note to self', '', 0, '', 1, 1704067520),
  (9, 3, 2, 'text', NULL, '', 0, '', 0, 1704067530),
  (10, 3, 2, 'image', 'pic', 'a.png', 10, '/srv/a.png', 0, 1704067540),
  (11, 2, 5, 'text', 'to a skipped user', '', 0, '', 0, 1704067550),
  (12, 6, 2, 'text', 'zero time', '', 0, '', 0, 0),
  (13, 4, 2, 'text', 'stray file columns', 'x.txt', 0, '', 1, 1704067560);
SET FOREIGN_KEY_CHECKS = 1;
"#;

async fn import(from: &str, to: &str, dry_run: bool) -> Summary {
    rosetta_import::run(&Options {
        system: System::Cloudchat,
        from: from.to_owned(),
        to: to.to_owned(),
        files_dir: None,
        store: None,
        dry_run,
    })
    .await
    .expect("import runs")
}

fn counts(s: &Summary, kind: &str) -> (u64, u64, u64, u64) {
    let c = &s.kinds[kind];
    (c.read, c.imported, c.already, c.skipped_total())
}

async fn import_and_log_in(backend: Backend) {
    let maria = MariaDb::create().await;
    let mut conn = sqlx::MySqlConnection::connect(&maria.url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(CLOUDCHAT)
        .execute(&mut conn)
        .await
        .expect("CloudChat schema and rows");
    drop(conn);

    // A node that already has an account: it holds id 100, which legacy 'first' wanted.
    let server = TestServer::start(backend).await;
    let mallory = server.user("mallory", "mallory-pw").await;
    assert_eq!(mallory.user.expect("user").id, 100);
    let url = server.config.database_url();

    let dry = import(&maria.url, &url, true).await;
    assert!(dry.dry_run);
    assert_eq!(counts(&dry, "users"), (7, 4, 0, 3), "{dry}");
    assert_eq!(counts(&dry, "messages").1, 8, "{dry}");

    let first = import(&maria.url, &url, false).await;
    println!("{first}");
    assert_eq!(
        counts(&first, "users"),
        (7, 4, 0, 3),
        "the dry run wrote nothing: {first}"
    );
    let users = &first.kinds["users"].skipped;
    for reason in [
        "id already used by another Rosetta account",
        "user name empty, too long, or with spaces or '|'",
        "empty password",
    ] {
        assert_eq!(users.get(reason), Some(&1), "{reason}: {first}");
    }
    assert_eq!(counts(&first, "friendships"), (7, 2, 0, 5), "{first}");
    assert_eq!(
        first.kinds["friendships"].skipped["same pair again (other direction or duplicate row)"],
        1
    );
    assert_eq!(counts(&first, "friend requests"), (8, 2, 0, 6), "{first}");
    let requests = &first.kinds["friend requests"].skipped;
    for reason in [
        "accepted: the friends table holds it",
        "accepted, but no friends row (the contact was deleted since)",
        "pending, but the two are friends already",
        "pending, but the other side's request is pending already",
        "names a user that was not imported",
        "status not pending, accepted or refused",
    ] {
        assert_eq!(requests.get(reason), Some(&1), "{reason}: {first}");
    }
    assert_eq!(counts(&first, "messages"), (13, 8, 0, 5), "{first}");
    let messages = &first.kinds["messages"].skipped;
    assert_eq!(messages["names a user that was not imported"], 2, "{first}");
    for reason in [
        "message to oneself",
        "empty content",
        "not a text message (image and file sending were stubs; no bytes exist)",
    ] {
        assert_eq!(messages.get(reason), Some(&1), "{reason}: {first}");
    }
    for note in [
        "e-mail empty or not an address: left empty",
        "message created_at zero or negative: sent_at = import time",
        "file columns set on a text message: ignored (no file was stored)",
    ] {
        assert_eq!(first.notes.get(note), Some(&1), "{note}: {first}");
    }

    let second = import(&maria.url, &url, false).await;
    assert_eq!(
        second.imported_total(),
        0,
        "second import is a no-op: {second}"
    );
    assert_eq!(counts(&second, "users"), (7, 0, 4, 3), "{second}");
    assert_eq!(counts(&second, "friendships"), (7, 0, 2, 5), "{second}");
    assert_eq!(counts(&second, "friend requests"), (8, 0, 2, 6), "{second}");
    assert_eq!(counts(&second, "messages"), (13, 0, 8, 5), "{second}");

    // Stored profile: creation time and avatar as the legacy row had them, no plaintext.
    let db = rosetta_db::connect(&url).await.expect("target database");
    let alice = user::Entity::find_by_id(2).one(&db).await.unwrap().unwrap();
    assert_eq!(
        alice.created_at_ms, 1_709_280_000_000,
        "2024-03-01 08:00:00"
    );
    assert_eq!(alice.avatar, "", "default.png is the default avatar");
    let verifiers = credential::Entity::find()
        .filter(credential::Column::UserId.eq(2))
        .all(&db)
        .await
        .unwrap();
    assert!(!verifiers.is_empty());
    for v in &verifiers {
        assert!(v.verifier.starts_with("$argon2id$"), "{v:?}");
        assert!(!v.verifier.contains("wo rd"), "{v:?}");
    }
    let bob = user::Entity::find_by_id(3).one(&db).await.unwrap().unwrap();
    assert_eq!(bob.avatar, "https://img.example/bob.png");
    drop(db);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = tokio::spawn(rosetta_bridge_cloudchat::serve(
        listener,
        server.backend(),
        CloudChatSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));

    // The stored session token is not a credential any more; the password is.
    let mut ws = Ws::connect(addr).await;
    assert_eq!(
        ws.ask(&format!(
            r#"{{"type":"LOGIN_BY_TOKEN","payload":{{"token":{},"username":"alice"}}}}"#,
            js(r#"k3#"Pq\x9Zr$T2v\W"#)
        ))
        .await,
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"令牌已失效，请重新登录"}}"#
    );
    let mut ws = Ws::connect(addr).await;
    assert_eq!(
        ws.ask(r#"{"type":"LOGIN","payload":{"username":"alice","password":"secret2"}}"#)
            .await,
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"密码错误"}}"#
    );

    // alice: legacy id 2, e-mail lowercased, default avatar, her contacts and history.
    let mut alice = Ws::connect(addr).await;
    let reply = alice
        .ask(&format!(
            r#"{{"type":"LOGIN","payload":{{"username":"alice","password":{}}}}}"#,
            js(r#"pa"ss\wo rd"#)
        ))
        .await;
    let token = token_of(&reply);
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"LOGIN_SUCCESS","payload":{{"userId":2,"username":"alice","email":"alice@example.com","avatar":"default.png","token":{}}}}}"#,
            js(&token)
        ),
        "the login reply carries the legacy id"
    );
    assert_eq!(
        alice
            .ask(r#"{"type":"LOAD_CONTACTS","payload":{"userId":2}}"#)
            .await,
        r#"{"type":"CONTACTS_LOADED","payload":{"contacts":[{"contactId":3,"username":"bob","avatar":"https://img.example/bob.png","online":false},{"contactId":4,"username":"中文名","avatar":"default.png","online":false}]}}"#
    );
    let reply = alice
        .ask(r#"{"type":"LOAD_FRIEND_REQUEST","payload":{"userId":2}}"#)
        .await;
    let [pending] = ids_of(&reply)[..] else {
        panic!("one request: {reply}")
    };
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"FRIEND_REQUEST_LOADED","payload":{{"requests":[{{"id":{pending},"requesterId":6,"targetId":2,"requesterUsername":"eve","targetUsername":"alice","requesterAvatar":"default.png","targetAvatar":"default.png","status":"pending"}}]}}}}"#
        ),
        "current names, not the request's stale snapshot"
    );
    // Received messages show alice's read state (she never opened the chat after bob's
    // second message); her own show bob's (he read her first message, not her second).
    let with_bob = alice
        .ask(r#"{"type":"LOAD_MESSAGES","payload":{"userId":2,"targetId":3}}"#)
        .await;
    assert_messages(
        &with_bob,
        3,
        &[
            (3, 2, "hello alice", T0, "read"),
            (2, 3, r#"quote " and back\slash"#, T0 + 60, "read"),
            (3, 2, "你好，爱丽丝", T0 + 120, "sent"),
            (2, 3, "are you there?", T0 + 180, "sent"),
            (3, 2, "still here", T0 + 240, "sent"),
        ],
    );
    let reply = alice
        .ask(r#"{"type":"LOAD_MESSAGES","payload":{"userId":2,"targetId":4}}"#)
        .await;
    assert_messages(
        &reply,
        4,
        &[
            (4, 2, "from 中文名", T0 + 300, "read"),
            (4, 2, "stray file columns", T0 + 360, "read"),
        ],
    );
    // eve is no contact, but her message is kept; its time was zero, so it is the import's.
    let reply = alice
        .ask(r#"{"type":"LOAD_MESSAGES","payload":{"userId":2,"targetId":6}}"#)
        .await;
    let id = ids_of(&reply)[0];
    let prefix = format!(
        r#"{{"type":"MESSAGES_LOADED","payload":{{"targetId":6,"messages":[{{"id":{id},"senderId":6,"receiverId":2,"content":"zero time","timestamp":""#
    );
    assert!(reply.starts_with(&prefix), "{reply}");
    assert!(
        reply.ends_with(r#"\n","status":"sent","type":"text"}]}}"#),
        "{reply}"
    );

    // bob read alice's first message, not her second; alice read bob's first.
    let mut bob = Ws::connect(addr).await;
    let reply = bob
        .ask(r#"{"type":"LOGIN","payload":{"username":"bob","password":"secret2"}}"#)
        .await;
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"LOGIN_SUCCESS","payload":{{"userId":3,"username":"bob","email":"bob@example.com","avatar":"https://img.example/bob.png","token":{}}}}}"#,
            js(&token_of(&reply))
        )
    );
    let reply = bob
        .ask(r#"{"type":"LOAD_MESSAGES","payload":{"userId":3,"targetId":2}}"#)
        .await;
    assert_messages(
        &reply,
        2,
        &[
            (3, 2, "hello alice", T0, "read"),
            (2, 3, r#"quote " and back\slash"#, T0 + 60, "read"),
            (3, 2, "你好，爱丽丝", T0 + 120, "sent"),
            (2, 3, "are you there?", T0 + 180, "sent"),
            (3, 2, "still here", T0 + 240, "sent"),
        ],
    );
    assert_eq!(ids_of(&reply), ids_of(&with_bob), "one conversation");

    // A CJK name and password; eve (no usable e-mail) sees the refused request too.
    let mut cjk = Ws::connect(addr).await;
    let reply = cjk
        .ask(r#"{"type":"LOGIN","payload":{"username":"中文名","password":"密码123"}}"#)
        .await;
    assert!(
        reply.starts_with(r#"{"type":"LOGIN_SUCCESS","payload":{"userId":4,"username":"中文名","email":"cjk@example.com","avatar":"default.png","token":"#),
        "{reply}"
    );
    let mut eve = Ws::connect(addr).await;
    let reply = eve
        .ask(r#"{"type":"LOGIN","payload":{"username":"eve","password":"evepw"}}"#)
        .await;
    assert!(
        reply.starts_with(r#"{"type":"LOGIN_SUCCESS","payload":{"userId":6,"username":"eve","email":"","avatar":"default.png","token":"#),
        "{reply}"
    );
    let reply = eve
        .ask(r#"{"type":"LOAD_FRIEND_REQUEST","payload":{"userId":6}}"#)
        .await;
    let refused = *ids_of(&reply).last().expect("requests");
    assert!(refused > pending, "{reply}");
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"FRIEND_REQUEST_LOADED","payload":{{"requests":[{{"id":{pending},"requesterId":6,"targetId":2,"requesterUsername":"eve","targetUsername":"alice","requesterAvatar":"default.png","targetAvatar":"default.png","status":"pending"}},{{"id":{refused},"requesterId":4,"targetId":6,"requesterUsername":"中文名","targetUsername":"eve","requesterAvatar":"default.png","targetAvatar":"default.png","status":"refused"}}]}}}}"#
        )
    );

    // The legacy account whose id was taken was not imported; mallory keeps id 100.
    let mut ws = Ws::connect(addr).await;
    let reply = ws
        .ask(r#"{"type":"LOGIN","payload":{"username":"first","password":"x1"}}"#)
        .await;
    assert!(reply.starts_with(r#"{"type":"LOGIN_FAILURE""#), "{reply}");

    // New registrations get fresh ids.
    let mut frank = Ws::connect(addr).await;
    let reply = frank
        .ask(r#"{"type":"REGISTER","payload":{"username":"frank","password":"pw","email":"frank@example.com"}}"#)
        .await;
    assert!(
        reply.starts_with(r#"{"type":"REGISTER_SUCCESS","payload":{"userId":101,"#),
        "{reply}"
    );

    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, bridge)
        .await
        .expect("bridge stops")
        .expect("bridge task");
    server.stop().await;
}

/// The object ids (`{"id":N`) of a frame, in order. Rosetta assigns message and request ids
/// (PostgreSQL's sequences also move in a rolled-back dry run), so tests read them back.
fn ids_of(frame: &str) -> Vec<i64> {
    frame
        .match_indices(r#"{"id":"#)
        .map(|(at, key)| {
            let digits: String = frame[at + key.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().expect("numeric id")
        })
        .collect()
}

/// Asserts a MESSAGES_LOADED frame exactly: (sender, receiver, content, unix seconds,
/// status) per message, oldest first, with ids increasing.
fn assert_messages(frame: &str, target: i64, messages: &[(i64, i64, &str, i64, &str)]) {
    let ids = ids_of(frame);
    assert_eq!(ids.len(), messages.len(), "{frame}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{frame}");
    let items: Vec<String> = messages
        .iter()
        .zip(&ids)
        .map(|((from, to, content, at, status), id)| {
            format!(
                r#"{{"id":{id},"senderId":{from},"receiverId":{to},"content":{},"timestamp":{},"status":"{status}","type":"text"}}"#,
                js(content),
                js(&ctime(*at))
            )
        })
        .collect();
    let expected = format!(
        r#"{{"type":"MESSAGES_LOADED","payload":{{"targetId":{target},"messages":[{}]}}}}"#,
        items.join(",")
    );
    assert_eq!(frame, expected);
}

/// C `ctime()` in the local zone, trailing newline included (protocol note §8).
fn ctime(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .expect("valid time")
        .with_timezone(&chrono::Local)
        .format("%a %b %e %H:%M:%S %Y\n")
        .to_string()
}

/// A JSON string literal as the frames write it: raw UTF-8, escaped quotes and controls.
fn js(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The token of a LOGIN_SUCCESS frame (15–19 printable characters, JSON-escaped).
fn token_of(frame: &str) -> String {
    let start = frame.find(r#""token":""#).expect("token key") + r#""token":""#.len();
    let mut token = String::new();
    let mut chars = frame[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => token.push(chars.next().expect("escaped character")),
            c => token.push(c),
        }
    }
    assert!((15..=19).contains(&token.len()), "{token:?}");
    assert!(token.bytes().all(|b| (33..=126).contains(&b)), "{token:?}");
    token
}

/// A WebSocket client as the Angular client's browser opens it: `ws://host:14514/`, no
/// subprotocol, each message one masked text frame.
struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Ws {
    async fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect to bridge");
        let key = STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
        let request = format!(
            "GET / HTTP/1.1\r\nHost: cloudchat.infinomat.com:14514\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Origin: http://localhost:4200\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("handshake");
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
        let head = String::from_utf8(ws.buf.drain(..end).collect()).expect("UTF-8 head");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("sec-websocket-accept:"),
            "{head}"
        );
        ws
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("bytes in time")
            .expect("read from bridge");
        assert!(n > 0, "bridge closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn need(&mut self, n: usize) {
        while self.buf.len() < n {
            self.fill().await;
        }
    }

    /// Sends one masked frame (FIN set).
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask: [u8; 4] = uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .expect("4 bytes");
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("write frame");
    }

    async fn send(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes()).await;
    }

    /// The next text message (fragments joined; pings answered).
    async fn recv(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            self.need(2).await;
            let (fin, opcode) = (self.buf[0] & 0x80 != 0, self.buf[0] & 0x0f);
            assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
            let (len, header) = match self.buf[1] & 0x7f {
                126 => {
                    self.need(4).await;
                    (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    )
                }
                127 => {
                    self.need(10).await;
                    let bytes: [u8; 8] = self.buf[2..10].try_into().expect("8 bytes");
                    (
                        usize::try_from(u64::from_be_bytes(bytes)).expect("length"),
                        10,
                    )
                }
                n => (usize::from(n), 2),
            };
            self.need(header + len).await;
            let payload: Vec<u8> = self.buf.drain(..header + len).skip(header).collect();
            match opcode {
                0x0 | 0x1 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).expect("UTF-8 text frame");
                    }
                }
                0x9 => self.send_frame(0xA, &payload).await,
                0xA => {}
                0x8 => panic!("bridge closed the WebSocket: {payload:?}"),
                other => panic!("unexpected opcode {other}"),
            }
        }
    }

    async fn ask(&mut self, request: &str) -> String {
        self.send(request).await;
        self.recv().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudchat_import_sqlite() {
    import_and_log_in(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudchat_import_postgres() {
    import_and_log_in(Backend::Postgres).await;
}
