//! The bridge's connection limits on real sockets: a connection over the per-address cap gets
//! the protocol's refusal (`login_error|登录失败！`) and the close, and the address gets in
//! again once one of its connections has closed; a connection that does not log in within the
//! handshake timeout is closed, one that has logged in stays.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use common::{Bridge, Client, PATIENCE};
use rosetta_bridge_kit::settings::{ConnectionLimits, PipeSettings};
use rosetta_testkit::Backend;
use tokio::io::AsyncReadExt as _;

const REFUSED: &str = "login_error|登录失败！";
/// The reply to a `login` without its fields: proof the connection is served.
const SERVED: &str = "login_error|用户名或密码错误！";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

fn settings(limits: ConnectionLimits) -> PipeSettings {
    PipeSettings {
        write_gap_ms: 0,
        limits,
        ..PipeSettings::default()
    }
}

/// Everything the bridge sends until it closes the connection.
async fn until_closed(client: &mut Client) -> String {
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, client.stream.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .expect("read");
    String::from_utf8(rest).expect("UTF-8")
}

/// A client that is served (not refused); `None` if it was refused.
async fn served(bridge: &Bridge) -> Option<Client> {
    let mut client = bridge.client_from(CLIENT).await;
    client.send("login").await;
    let reply = client.recv().await;
    if reply == SERVED {
        return Some(client);
    }
    assert_eq!(reply, REFUSED, "either served or refused");
    None
}

#[tokio::test]
async fn the_address_cap_refuses_in_the_protocols_form_until_a_connection_closes() {
    let limits = ConnectionLimits {
        max_per_address: 2,
        ..PipeSettings::default().limits
    };
    let bridge = Bridge::start_with(Backend::Sqlite, None, settings(limits)).await;
    let first = served(&bridge).await.expect("first served");
    let _second = served(&bridge).await.expect("second served");
    let mut third = bridge.client_from(CLIENT).await;
    assert_eq!(until_closed(&mut third).await, REFUSED);

    drop(first);
    // No event tells the client when the bridge has seen the close: retry until served.
    let deadline = Instant::now() + PATIENCE;
    while served(&bridge).await.is_none() {
        assert!(Instant::now() < deadline, "never admitted again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bridge.stop().await;
}

#[tokio::test]
async fn a_connection_not_logged_in_within_the_handshake_timeout_is_closed() {
    // Long enough for one login (an argon2 check) on a busy machine.
    let timeout = Duration::from_secs(2);
    let limits = ConnectionLimits {
        handshake_timeout_ms: timeout.as_millis() as u64,
        ..PipeSettings::default().limits
    };
    let bridge = Bridge::start_with(Backend::Sqlite, None, settings(limits)).await;
    let mut registering = bridge.client().await;
    registering
        .send("register|tern|pw-tern|tern|1|sig|1|answer")
        .await;
    registering.expect("register_succ|注册成功！").await;
    let mut user = bridge.client().await;
    user.login("tern", "pw-tern").await;

    let opened = Instant::now();
    let mut silent = bridge.client().await;
    assert_eq!(until_closed(&mut silent).await, "", "closed without a word");
    assert!(opened.elapsed() >= timeout, "not before the timeout");
    // The logged-in connection is past its handshake (and older): still served.
    user.send("login").await;
    user.expect(SERVED).await;
    bridge.stop().await;
}
