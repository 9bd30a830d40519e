//! The file server: a 20 MB file and a nested folder round-trip with identical bytes; hostile
//! names are never stored outside the shared area.

mod common;

use std::collections::BTreeMap;

use common::*;
use rosetta_testkit::{Backend, TestServer};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

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

/// An upload header as the client's `json.dumps` writes it (names JSON-escaped).
fn upload_header(name: &str, size: usize, folder: Option<&str>) -> String {
    let name = serde_json::to_string(name).expect("json string");
    let name = &name[1..name.len() - 1];
    match folder {
        None => format!(
            r#"{{"op": 0, "args": {{"name": "alice", "password": "abc123"}}, "file_name": "{name}", "file_type": 0, "file_size": "{size}"}}"#
        ),
        Some(dir) => format!(
            r#"{{"op": 0, "args": {{"name": "alice", "password": "abc123"}}, "file_name": "{name}", "file_type": 1, "file_size": "{size}", "file_dirname": "{dir}"}}"#
        ),
    }
}

fn download_request(name: &str) -> String {
    format!(
        r#"{{"op": 1, "args": {{"name": "alice", "password": "abc123"}}, "look": 1, "file_name": "{name}"}}"#
    )
}

/// Every (file_name, file_type, bytes) a download sends before the bridge closes.
async fn download(bridge: &Bridge, name: &str) -> Vec<(String, i64, Vec<u8>)> {
    let mut stream = connect(bridge.file).await;
    send(&mut stream, &download_request(name)).await;
    let mut files = Vec::new();
    loop {
        let mut header = [0u8; 15];
        match tokio::time::timeout(
            PATIENCE,
            tokio::io::AsyncReadExt::read(&mut stream, &mut header[..1]),
        )
        .await
        .expect("read in time")
        {
            Ok(0) | Err(_) => return files,
            Ok(_) => {}
        }
        header[1..].copy_from_slice(&read_exactly(&mut stream, 14).await);
        let len: usize = std::str::from_utf8(&header)
            .unwrap()
            .trim_end()
            .parse()
            .unwrap();
        let body: Value = serde_json::from_slice(&read_exactly(&mut stream, len).await).unwrap();
        let Some(file_name) = body["file_name"].as_str() else {
            assert_eq!(body["file_name"], 400);
            expect_closed(&mut stream).await;
            return files;
        };
        let size: usize = body["file_size"].as_str().unwrap().parse().unwrap();
        let bytes = read_exactly(&mut stream, size).await;
        files.push((
            file_name.to_owned(),
            body["file_type"].as_i64().unwrap(),
            bytes,
        ));
    }
}

async fn listing(bridge: &Bridge) -> Value {
    let reply = ask(
        bridge.file,
        r#"{"op": 1, "args": {"name": "alice", "password": "abc123"}, "look": 0}"#,
    )
    .await;
    serde_json::from_slice(&reply[15..]).expect("json listing")
}

fn names(listing: &Value) -> Vec<String> {
    listing["exist_file"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r[0].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_and_nested_folder_round_trip() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    server.user("alice", "abc123").await;

    // 20 MB, sent in the client's 2048-byte pieces.
    let big = content(20 * 1024 * 1024, 0x9e37_79b9_7f4a_7c15);
    let mut stream = connect(bridge.file).await;
    send(&mut stream, &upload_header("big.bin", big.len(), None)).await;
    for piece in big.chunks(2048) {
        stream.write_all(piece).await.expect("write");
    }
    // A folder with nested sub-folders on the same connection, one path the Windows way.
    let files: [(&str, Vec<u8>); 4] = [
        ("tree/top.txt", b"top".to_vec()),
        ("tree/a/b/c/deep.bin", content(100_000, 7)),
        ("tree\\win\\back.txt", b"backslashes".to_vec()),
        ("tree/empty.txt", Vec::new()),
    ];
    for (name, bytes) in &files {
        send(&mut stream, &upload_header(name, bytes.len(), Some("tree"))).await;
        stream.write_all(bytes).await.expect("write");
    }
    stream.shutdown().await.expect("half-close");
    expect_closed(&mut stream).await;

    let list = listing(&bridge).await;
    assert_eq!(names(&list), ["big.bin", "tree"], "{list}");

    let got = download(&bridge, "big.bin").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "big.bin");
    assert_eq!(got[0].1, 0);
    assert!(got[0].2 == big, "20 MB came back different");

    let got: BTreeMap<String, (i64, Vec<u8>)> = download(&bridge, "tree")
        .await
        .into_iter()
        .map(|(name, kind, bytes)| (name, (kind, bytes)))
        .collect();
    let expected: BTreeMap<String, (i64, Vec<u8>)> = files
        .iter()
        .map(|(name, bytes)| (name.replace('\\', "/"), (1, bytes.clone())))
        .collect();
    let summary = |m: &BTreeMap<String, (i64, Vec<u8>)>| -> Vec<(String, i64, usize)> {
        m.iter()
            .map(|(k, (t, b))| (k.clone(), *t, b.len()))
            .collect()
    };
    assert_eq!(summary(&got), summary(&expected));
    assert!(got == expected, "folder contents differ");
    // A sub-folder can be fetched alone too.
    let sub = download(&bridge, "tree/a").await;
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].0, "tree/a/b/c/deep.bin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_refused_and_the_connection_goes_on() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    server.user("alice", "abc123").await;

    let hostile = [
        ("../evil.txt", None),
        ("/etc/passwd", None),
        ("..\\..\\win.ini", None),
        ("C:\\boot.ini", None),
        ("../up/a.txt", Some("..")),
        ("pics/../../b.txt", Some("pics")),
        ("pics/./c.txt", Some("pics")),
        ("pics//d.txt", Some("pics")),
        ("bad\u{1}name", None),
    ];
    let headers: Vec<String> = hostile
        .iter()
        .map(|(name, dir)| upload_header(name, 4, *dir))
        .collect();
    let mut parts: Vec<(&str, &[u8])> =
        headers.iter().map(|h| (h.as_str(), &b"evil"[..])).collect();
    let safe = upload_header("safe.txt", 4, None);
    parts.push((&safe, b"good"));
    upload(bridge.file, &parts).await;

    assert_eq!(names(&listing(&bridge).await), ["safe.txt"]);
    for name in ["../evil.txt", "/etc/passwd", "..", "pics", "up"] {
        assert!(download(&bridge, name).await.is_empty(), "{name}");
    }
    let got = download(&bridge, "safe.txt").await;
    assert_eq!(got, [("safe.txt".to_owned(), 0, b"good".to_vec())]);
}

/// The client closes right after an upload's last byte and may list at once on a new
/// connection, never waiting for the server: the listing already shows the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_right_after_an_upload_shows_it() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    server.user("alice", "abc123").await;
    for round in 0..3 {
        let name = format!("quick{round}.bin");
        let bytes = content(2 * 1024 * 1024, round + 1);
        let mut stream = connect(bridge.file).await;
        send(&mut stream, &upload_header(&name, bytes.len(), None)).await;
        stream.write_all(&bytes).await.expect("write");
        drop(stream);
        let list = listing(&bridge).await;
        assert!(names(&list).contains(&name), "{name} missing from {list}");
    }
}
