//! Login floods over the pipe socket (issue 18, item 3): a connection that keeps failing
//! logins gets no more tries, and one client address that floods logins is refused by the
//! account service's per-source limit, which sees the client's address (the bridge forwards
//! it with its bridge key), not the bridge's: other addresses still log in.

mod common;

use std::net::IpAddr;

use common::{Bridge, MD5_123456};
use rosetta_bridge_kit::{client::MAX_FAILED_LOGINS, settings::PipeSettings};
use rosetta_testkit::{Backend, TestServer, both_backends};

const WRONG: &str = "00000000000000000000000000000000";

/// After `MAX_FAILED_LOGINS` refused logins, the connection's next login is refused even
/// with the right password; a new connection logs in.
async fn failed_logins_per_connection(backend: Backend) {
    let bridge = Bridge::start(backend, None).await;
    bridge.server.user("alice", "123456").await;
    let mut client = bridge.client().await;
    // Different unknown users, so the per-account lock-out is not what refuses.
    for i in 0..MAX_FAILED_LOGINS {
        client.send(&format!("login|nobody{i}|{WRONG}")).await;
        client.expect("login_error|用户名或密码错误！").await;
    }
    client.send(&format!("login|alice|{MD5_123456}")).await;
    let refused = client.recv().await;
    assert!(refused.starts_with("login_error|"), "{refused:?}");
    bridge.client().await.login("alice", MD5_123456).await;
    bridge.stop().await;
}
both_backends!(
    failed_logins_per_connection,
    super::failed_logins_per_connection
);

/// Four logins per address at once: a fifth from 127.0.0.2, on a new connection and with the
/// right password, is refused; 127.0.0.3, behind the same bridge, logs in.
async fn login_flood_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.account.source_login_burst = 4;
        c.account.source_login_per_minute = 1;
    })
    .await;
    server.user("alice", "123456").await;
    let bridge = Bridge::in_front_of(server, PipeSettings::default()).await;
    let flooder = IpAddr::from([127, 0, 0, 2]);
    for i in 0..4 {
        let mut client = bridge.client_from(flooder).await;
        client.send(&format!("login|nobody{i}|{WRONG}")).await;
        client.expect("login_error|用户名或密码错误！").await;
    }
    let mut client = bridge.client_from(flooder).await;
    client.send(&format!("login|alice|{MD5_123456}")).await;
    let refused = client.recv().await;
    assert!(refused.starts_with("login_error|"), "{refused:?}");
    bridge
        .client_from(IpAddr::from([127, 0, 0, 3]))
        .await
        .login("alice", MD5_123456)
        .await;
    bridge.stop().await;
}
both_backends!(login_flood_per_address, super::login_flood_per_address);
