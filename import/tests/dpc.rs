//! A DPC database (no id column, the `file` table with unknown column names read by ordinal)
//! and the file server's directory with hostile and messy rows, imported into SQLite and
//! PostgreSQL; a dry run writes nothing and the second import changes nothing. Through the
//! DPC bridge an old account then logs in with its old plaintext password, the shared listing
//! shows the imported files and folder, and downloads return the bytes that were on disk.

mod common;

use std::{collections::BTreeMap, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use common::{MariaDb, Target};
use rosetta_bridge_dpc::{Listeners, codec::parse_body, serve};
use rosetta_bridge_kit::settings::DpcSettings;
use rosetta_files::{StoreSettings, open_store};
use rosetta_import::{Options, Summary, System};
use rosetta_testkit::{Backend, TestServer};
use sqlx::Connection as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const PATIENCE: Duration = Duration::from_secs(60);

/// The tables as the servers' queries imply them: no id, no unique key, `file` with column
/// names the importer cannot know. Passwords are md5 hex of abc123, xyz789 and dave99.
const DPC: &str = r#"
CREATE TABLE `user` (username varchar(20), password varchar(40), phone varchar(20),
  email varchar(60)) DEFAULT CHARSET=utf8mb4;
CREATE TABLE `file` (c_a varchar(255), c_b varchar(20), c_c varchar(20), c_d varchar(10))
  DEFAULT CHARSET=utf8mb4;
INSERT INTO `user` VALUES
  ('alice', 'e99a18c428cb38d5f260853678922e03', '13800138000', 'Alice@Example.com'),
  ('bob', 'B930990C455D18D84F44757A4EB9756A', '13800138001', 'not-an-email'),
  ('alice', 'aa46d20cfecbc87d62db3597410efc96', '13800138009', 'alice2@example.com'),
  ('bad name', 'e99a18c428cb38d5f260853678922e03', '', ''),
  ('carol', 'plaintext', '13800138002', ''),
  ('dave', '11bb5fc4189b90a206f10a4c1269721a', '13800138000', NULL);
INSERT INTO `file` VALUES
  ('notes.txt', 'alice', '2019-09-05 10:00:00', '文件'),
  ('notes.txt', 'bob', '2019-09-05 11:00:00', '文件'),
  ('tree', 'alice', '2019-09-05 12:00:00', '文件夹'),
  ('../x', 'alice', '2019-09-05 12:01:00', '文件'),
  ('/etc/passwd', 'alice', '2019-09-05 12:02:00', '文件'),
  ('gone.txt', 'alice', '2019-09-05 12:03:00', '文件'),
  ('escape.txt', 'alice', '2019-09-05 12:04:00', '文件'),
  ('ghost.txt', 'nobody', '2019-09-05 12:05:00', '文件'),
  ('say "hi".txt', 'Dave ', '2019-09-05 13:00:00', '文件'),
  ('late.txt', 'alice', 'sometime', '文件'),
  ('lost.txt', 'bob', '2019-09-05 14:00:00', '??');
"#;

/// Deterministic bytes that are not a repeating pattern.
fn content(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// The server's directory: its script, uploads, a folder upload, a symlink out, an upload
/// whose row insert failed; `../x` exists beside it.
fn legacy_files(base: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = base.join("server");
    let files: BTreeMap<String, Vec<u8>> = [
        ("server.py", b"import socket\n".to_vec()),
        ("notes.txt", b"bob's notes overwrote alice's".to_vec()),
        ("tree/top.txt", b"top".to_vec()),
        ("tree/a/b/deep.bin", content(300_000, 7)),
        ("tree/empty.txt", Vec::new()),
        ("ghost.txt", b"boo".to_vec()),
        ("say \"hi\".txt", b"quoted".to_vec()),
        ("late.txt", b"late".to_vec()),
        ("lost.txt", content(70_000, 11)),
        ("it's.txt", b"row insert failed".to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    std::fs::write(base.join("x"), b"outside").unwrap();
    std::os::unix::fs::symlink(base.join("x"), dir.join("escape.txt")).unwrap();
    files
}

async fn import(from: &str, to: &str, files_dir: &Path, blobs: &Path, dry_run: bool) -> Summary {
    let store = open_store(
        &StoreSettings {
            dir: Some(blobs.to_path_buf()),
            ..StoreSettings::default()
        },
        blobs,
    )
    .expect("blob store");
    rosetta_import::run(&Options {
        system: System::Dpc,
        from: from.to_owned(),
        to: to.to_owned(),
        files_dir: Some(files_dir.to_path_buf()),
        store: Some(Arc::clone(&store)),
        dry_run,
    })
    .await
    .expect("import runs")
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .map(|e| {
                let path = e.unwrap().path();
                if path.is_dir() { count_files(&path) } else { 1 }
            })
            .sum()
    })
}

async fn import_and_use(backend: Backend) {
    let maria = MariaDb::create().await;
    let mut conn = sqlx::MySqlConnection::connect(&maria.url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(DPC)
        .execute(&mut conn)
        .await
        .expect("DPC schema and rows");
    drop(conn);

    let legacy = tempfile::tempdir().expect("temp dir");
    let on_disk = legacy_files(legacy.path());
    let files_dir = legacy.path().join("server");
    let target = Target::create(backend).await;
    let (blobs, url) = (target.dir.path().join("blobs"), target.url.clone());

    let dry = import(&maria.url, &url, &files_dir, &blobs, true).await;
    assert_eq!(dry.kinds["users"].imported, 3, "{dry}");
    assert_eq!(dry.kinds["files"].imported, 7, "{dry}");
    assert_eq!(count_files(&blobs), 0, "a dry run stores no blob");

    let first = import(&maria.url, &url, &files_dir, &blobs, false).await;
    println!("{first}");
    let users = &first.kinds["users"];
    assert_eq!((users.read, users.imported), (6, 3), "{first}");
    for reason in [
        "same user name again (only the first row's password is kept)",
        "user name empty, too long, or with spaces or '|'",
        "password not an MD5 hex digest (the account could never log in)",
    ] {
        assert_eq!(users.skipped.get(reason), Some(&1), "{reason}: {first}");
    }
    assert_eq!(
        first
            .notes
            .get("phone shared with an earlier user: left empty"),
        Some(&1),
        "{first}"
    );
    assert_eq!(
        first
            .notes
            .get("uploader matched ignoring case or trailing spaces, as MySQL did"),
        Some(&1),
        "{first}"
    );
    let files = &first.kinds["files"];
    // 10 file rows, the folder's 3 files, 2 files without a row.
    assert_eq!((files.read, files.imported), (15, 7), "{first}");
    for (reason, n) in [
        (
            "same name again (one file: the bytes on disk are the last upload's)",
            1,
        ),
        ("path with '..' (outside the files directory)", 1),
        ("absolute path (outside the files directory)", 1),
        ("bytes missing", 1),
        ("resolves outside the files directory (symlink)", 1),
        ("uploader not imported", 1),
        (
            "on disk without a file row (the server's scripts, or an upload whose row insert \
             failed)",
            2,
        ),
    ] {
        assert_eq!(files.skipped.get(reason), Some(&n), "{reason}: {first}");
    }
    assert_eq!(files.skipped_total(), 8, "{first}");
    assert_eq!(first.kinds["folders"].imported, 1, "{first}");
    assert_eq!(count_files(&blobs), 7, "one blob per imported file");

    let second = import(&maria.url, &url, &files_dir, &blobs, false).await;
    assert_eq!(
        second.imported_total(),
        0,
        "second import is a no-op: {second}"
    );
    assert_eq!(second.kinds["users"].already, 3, "{second}");
    assert_eq!(second.kinds["files"].already, 7, "{second}");
    assert_eq!(second.kinds["folders"].already, 1, "{second}");
    assert_eq!(count_files(&blobs), 7, "no blob added by the rerun");

    let server = TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.database_url = Some(url.clone());
        cfg.files.store.dir = Some(blobs.clone());
    })
    .await;
    let bridge = start_bridge(&server).await;

    // Old plaintext passwords log in (the server stored their md5 hex).
    assert_eq!(login(&bridge, "alice", "abc123").await, OK_LOGIN);
    assert_eq!(login(&bridge, "bob", "xyz789").await, OK_LOGIN);
    assert_eq!(login(&bridge, "alice", "other1").await, BAD_LOGIN);
    assert_eq!(login(&bridge, "carol", "plaintext").await, BAD_LOGIN);

    // The shared listing: the top level, oldest first, as the legacy table showed it.
    let reply = ask(
        bridge.file,
        r#"{"op": 1, "args": {"name": "alice", "password": "abc123"}, "look": 0}"#,
    )
    .await;
    let listing = parse_body(&reply[15..]).expect("json listing");
    let rows: Vec<Vec<String>> = listing["exist_file"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_str().expect("text").to_owned())
                .collect()
        })
        .collect();
    let row = |r: [&str; 4]| r.map(str::to_owned).to_vec();
    assert_eq!(
        rows[..4],
        [
            row(["notes.txt", "bob", "2019-09-05 11:00:00", "文件"]),
            row(["tree", "alice", "2019-09-05 12:00:00", "文件夹"]),
            row(["say \"hi\".txt", "dave", "2019-09-05 13:00:00", "文件"]),
            row(["lost.txt", "bob", "2019-09-05 14:00:00", "文件"]),
        ],
        "{rows:?}"
    );
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(
        (rows[4][0].as_str(), rows[4][1].as_str()),
        ("late.txt", "alice")
    );

    // Downloads: the bytes that were on disk.
    for name in ["notes.txt", "say \"hi\".txt", "lost.txt", "late.txt"] {
        let got = download(&bridge, name).await;
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!((got[0].0.as_str(), got[0].1), (name, 0));
        assert!(got[0].2 == on_disk[name], "{name} came back different");
    }
    let tree: BTreeMap<String, (i64, Vec<u8>)> = download(&bridge, "tree")
        .await
        .into_iter()
        .map(|(name, kind, bytes)| (name, (kind, bytes)))
        .collect();
    let expected: BTreeMap<String, (i64, Vec<u8>)> = on_disk
        .iter()
        .filter(|(name, _)| name.starts_with("tree/"))
        .map(|(name, bytes)| (name.clone(), (1, bytes.clone())))
        .collect();
    assert_eq!(
        tree.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert!(tree == expected, "folder contents differ");
    for name in ["../x", "escape.txt", "ghost.txt", "server.py", "it's.txt"] {
        assert!(download(&bridge, name).await.is_empty(), "{name}");
    }

    // A new DPC registration gets a fresh id beside the imported accounts.
    let sms = ask(
        bridge.auth,
        r#"{"op": 1, "args": {"user_phone": "13900139000"}}"#,
    )
    .await;
    assert_eq!(sms, frame(r#"{"op": 1, "test": 0}"#));
    let code = server.codes.last_code("13900139000").expect("a code");
    let register = ask(
        bridge.auth,
        &format!(
            r#"{{"op": 2, "args": {{"user_name": "erin", "user_pwd": "erin12", "user_phone": "13900139000", "user_vcode": "{code}", "user_email": "erin@example.com"}}}}"#
        ),
    )
    .await;
    assert_eq!(register, frame(r#"{"op": 2, "test": 0}"#));
    assert_eq!(login(&bridge, "erin", "erin12").await, OK_LOGIN);

    drop(bridge);
    drop(server);
}

struct Bridge {
    auth: SocketAddr,
    file: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_bridge(server: &TestServer) -> Bridge {
    let bind = || TcpListener::bind("127.0.0.1:0");
    let listeners = Listeners {
        auth: bind().await.expect("bind"),
        chat: bind().await.expect("bind"),
        file: bind().await.expect("bind"),
    };
    let settings = DpcSettings {
        enabled: true,
        auth_listen: listeners.auth.local_addr().expect("addr"),
        chat_listen: listeners.chat.local_addr().expect("addr"),
        file_listen: listeners.file.local_addr().expect("addr"),
        ..DpcSettings::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = Bridge {
        auth: settings.auth_listen,
        file: settings.file_listen,
        _stop: stop,
    };
    tokio::spawn(serve(listeners, server.backend(), settings, async {
        let _ = stopped.await;
    }));
    bridge
}

const OK_LOGIN: &[u8] = b"20             {\"op\": 0, \"test\": 0}";
const BAD_LOGIN: &[u8] = b"20             {\"op\": 0, \"test\": 1}";

/// The 15-byte space-padded header and the body.
fn frame(json: &str) -> Vec<u8> {
    let mut out = format!("{:<15}", json.len()).into_bytes();
    out.extend_from_slice(json.as_bytes());
    out
}

/// A JSON string body as Python's `json.dumps` writes it (non-ASCII as `\uXXXX`).
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("bytes before close");
    buf
}

/// Header and body in two writes, as the client sends them.
async fn send(stream: &mut TcpStream, json: &str) {
    let bytes = frame(json);
    stream.write_all(&bytes[..15]).await.expect("write header");
    stream.write_all(&bytes[15..]).await.expect("write body");
}

/// A new connection, one request, one whole reply frame.
async fn ask(addr: SocketAddr, json: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send(&mut stream, json).await;
    let mut out = read_exactly(&mut stream, 15).await;
    let len: usize = std::str::from_utf8(&out)
        .expect("ascii header")
        .trim_end()
        .parse()
        .expect("numeric header");
    out.extend(read_exactly(&mut stream, len).await);
    out
}

async fn login(bridge: &Bridge, name: &str, password: &str) -> Vec<u8> {
    ask(
        bridge.auth,
        &format!(r#"{{"op": 0, "args": {{"user_name": "{name}", "user_pwd": "{password}"}}}}"#),
    )
    .await
}

/// Every (file_name, file_type, bytes) a download sends before the bridge closes; empty for
/// the not-found reply.
async fn download(bridge: &Bridge, name: &str) -> Vec<(String, i64, Vec<u8>)> {
    let mut stream = TcpStream::connect(bridge.file).await.expect("connect");
    send(
        &mut stream,
        &format!(
            r#"{{"op": 1, "args": {{"name": "alice", "password": "abc123"}}, "look": 1, "file_name": {}}}"#,
            json_string(name)
        ),
    )
    .await;
    let mut files = Vec::new();
    loop {
        let mut header = [0u8; 15];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut header[..1]))
            .await
            .expect("read in time")
            .unwrap_or(0);
        if n == 0 {
            return files;
        }
        header[1..].copy_from_slice(&read_exactly(&mut stream, 14).await);
        let len: usize = std::str::from_utf8(&header)
            .expect("ascii header")
            .trim_end()
            .parse()
            .expect("numeric header");
        let body = parse_body(&read_exactly(&mut stream, len).await).expect("json body");
        let Some(file_name) = body["file_name"].as_str() else {
            assert_eq!(body["file_name"].as_i64(), Some(400), "{body:?}");
            assert!(files.is_empty(), "not found after files: {body:?}");
            return files;
        };
        let size: usize = body["file_size"]
            .as_str()
            .expect("size text")
            .parse()
            .expect("decimal size");
        let bytes = read_exactly(&mut stream, size).await;
        files.push((
            file_name.to_owned(),
            body["file_type"].as_i64().expect("file type"),
            bytes,
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpc_import_sqlite() {
    import_and_use(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpc_import_postgres() {
    import_and_use(Backend::Postgres).await;
}
