//! Load on one in-process bridge and node (SQLite): logged-in idle WebSocket connections held
//! and the memory they take, request/reply throughput (LOAD_CONTACTS) and message throughput
//! (SEND_MESSAGE acknowledged, pushed to the receiver) with many concurrent clients.
//!
//! `CLOUDCHAT_BENCH_CONNECTIONS` (default 1000) idle connections, `CLOUDCHAT_BENCH_CLIENTS`
//! (default 100) concurrent clients, `CLOUDCHAT_BENCH_ROUNDS` (default 20) requests each,
//! `CLOUDCHAT_BENCH_SENDERS` (default 20) connections of the sending user.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Bridge, Ws, js, payload, register};
use rosetta_bridge_kit::settings::CloudChatSettings;
use rosetta_testkit::bench::{env_or as env, rss_kib};
use rosetta_testkit::{Backend, TestServer};

/// Users sharing the idle connections (each login rotates the user's token, so logins of one
/// user chain one after the other; the users' chains run side by side).
const USERS: usize = 10;

fn token_login(name: &str, token: &str) -> String {
    format!(
        r#"{{"type":"LOGIN_BY_TOKEN","payload":{{"token":{},"username":"{name}"}}}}"#,
        js(token)
    )
}

/// `count` connections logged in as `name`, one after the other (each rotates the token).
async fn logged_in(
    addr: std::net::SocketAddr,
    name: String,
    mut token: String,
    count: usize,
) -> (Vec<Ws>, String) {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let mut ws = Ws::connect(addr).await;
        let reply = ws.ask(&token_login(&name, &token)).await;
        token = payload(&reply, "LOGIN_SUCCESS")["token"]
            .as_str()
            .expect("token")
            .to_owned();
        sockets.push(ws);
    }
    (sockets, token)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let connections: usize = env("CLOUDCHAT_BENCH_CONNECTIONS", 1000);
    let clients = env("CLOUDCHAT_BENCH_CLIENTS", 100);
    let rounds = env("CLOUDCHAT_BENCH_ROUNDS", 20);
    let senders_count = env("CLOUDCHAT_BENCH_SENDERS", 20);
    let server = TestServer::start(Backend::Sqlite).await;
    // Every benchmark connection comes from 127.0.0.1: no per-address cap.
    let settings = CloudChatSettings {
        limits: rosetta_bridge_kit::settings::ConnectionLimits {
            max_per_address: usize::MAX,
            ..CloudChatSettings::default().limits
        },
        ..CloudChatSettings::default()
    };
    let bridge = Bridge::start_with(server.backend(), settings).await;
    let addr = bridge.addr;

    let mut users = Vec::new();
    for i in 0..USERS {
        let name = format!("idle{i}");
        let (id, token) = register(addr, &name, "secret").await;
        users.push((name, id, token));
    }

    // Messages: many connections of one sender to one receiver, who reads every push.
    let (sender, sender_token) = register(addr, "sender", "secret").await;
    let (receiver, receiver_token) = register(addr, "receiver", "secret").await;
    let (mut senders, _) = logged_in(addr, "sender".into(), sender_token, senders_count).await;
    let (mut inbox, _) = logged_in(addr, "receiver".into(), receiver_token, 1).await;
    let mut inbox = inbox.pop().expect("receiver");
    let s = &mut senders[0];
    let fr = payload(
        &s.ask(&format!(
            r#"{{"type":"ADD_FRIEND_REQUEST","payload":{{"id":-1,"requesterId":{sender},"requesterUsername":"sender","requesterAvatar":"","targetId":{receiver},"targetUsername":"receiver","targetAvatar":"","status":"pending"}}}}"#
        ))
        .await,
        "FRIEND_REQUEST_ADDED",
    )["id"]
        .as_i64()
        .expect("id");
    payload(&inbox.recv().await, "ADD_FRIEND_REQUEST");
    payload(
        &inbox
            .ask(&format!(
                r#"{{"type":"ACCEPT_FRIEND_REQUEST","payload":{{"id":{fr}}}}}"#
            ))
            .await,
        "FRIEND_REQUEST_ACCEPTED",
    );
    payload(&inbox.recv().await, "CONTACT_ADDED");
    // Each sender connection sees the acceptance pushed; drain it before timing.
    for ws in &mut senders {
        payload(&ws.recv().await, "ACCEPT_FRIEND_REQUEST");
        payload(&ws.recv().await, "CONTACT_ADDED");
    }
    let total = senders.len() * rounds;
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        for _ in 0..total {
            payload(&inbox.recv().await, "MESSAGE_RECEIVED_OTHER");
        }
    });
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(c, mut ws)| {
            tokio::spawn(async move {
                for r in 0..rounds {
                    let reply = ws
                        .ask(&format!(
                            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"{c}-{r}","senderId":{sender},"receiverId":{receiver},"content":"load {c} {r}","type":"text"}}}}"#
                        ))
                        .await;
                    payload(&reply, "MESSAGE_RECEIVED_SELF");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("sender");
    }
    let acked = started.elapsed();
    reader.await.expect("receiver");
    let delivered = started.elapsed();
    println!(
        "messages: {total} SEND_MESSAGE from {senders_count} concurrent connections of one user: acknowledged in {:.2} s ({:.0} msg/s), all pushed to the receiver in {:.2} s ({:.0} msg/s)",
        acked.as_secs_f64(),
        total as f64 / acked.as_secs_f64(),
        delivered.as_secs_f64(),
        total as f64 / delivered.as_secs_f64()
    );

    // Idle logged-in connections.
    let before = rss_kib();
    let started = Instant::now();
    let per_user = connections.div_ceil(USERS);
    let chains: Vec<_> = users
        .iter()
        .map(|(name, id, token)| {
            let id = *id;
            let chain = logged_in(addr, name.clone(), token.clone(), per_user);
            tokio::spawn(async move { (id, chain.await.0) })
        })
        .collect();
    // (user id, connection), users interleaved.
    let mut idle: Vec<(i64, Ws)> = Vec::new();
    for chain in chains {
        let (id, sockets) = chain.await.expect("logins");
        idle.extend(sockets.into_iter().map(|ws| (id, ws)));
    }
    let opened = started.elapsed();
    // Let the event streams of the new sessions settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib();
    let held = idle.len();
    println!(
        "idle: {held} logged-in WebSocket connections opened in {:.1} s ({:.0} logins/s)",
        opened.as_secs_f64(),
        held as f64 / opened.as_secs_f64()
    );
    println!(
        "idle: VmRSS {before} KiB -> {after} KiB, {:.1} KiB per connection (bridge, node and client sockets in one process)",
        after.saturating_sub(before) as f64 / held as f64
    );

    // Request/reply: concurrent clients, each a logged-in idle connection.
    let active: Vec<(i64, Ws)> = idle.drain(..clients.min(held)).collect();
    let started = Instant::now();
    let tasks: Vec<_> = active
        .into_iter()
        .map(|(user, mut ws)| {
            tokio::spawn(async move {
                let load = format!(r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{user}}}}}"#);
                let mut worst = Duration::ZERO;
                for _ in 0..rounds {
                    let asked = Instant::now();
                    payload(&ws.ask(&load).await, "CONTACTS_LOADED");
                    worst = worst.max(asked.elapsed());
                }
                worst
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    let mut done = 0;
    for task in tasks {
        worst = worst.max(task.await.expect("client"));
        done += rounds;
    }
    let elapsed = started.elapsed();
    println!(
        "request/reply: {done} LOAD_CONTACTS from {} concurrent clients in {:.2} s: {:.0} req/s, slowest {:.0} ms",
        clients.min(held),
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        worst.as_secs_f64() * 1000.0
    );

    drop(idle);
    bridge.stop().await;
    server.stop().await;
}
