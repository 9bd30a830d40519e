//! A session ended elsewhere ends the CloudChat login on every WebSocket bound to it: the
//! password changed over gRPC (which revokes the user's sessions), the socket is closed with
//! a close frame saying why (the protocol has no message for it), and a new login works.

mod common;

use common::{Bridge, change_password, login, payload, register};
use rosetta_testkit::{Backend, TestServer, both_backends};

async fn password_change_closes_the_socket(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let (alice, _) = register(bridge.addr, "alice", "secret1").await;
    let (mut ws, _) = login(bridge.addr, "alice", "secret1").await;
    // The login is live: a request is served.
    payload(
        &ws.ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#
        ))
        .await,
        "CONTACTS_LOADED",
    );

    change_password(&server, "alice", "secret1", "secret2").await;

    assert_eq!(
        ws.closed().await,
        Some((1008, "session ended".to_owned())),
        "the socket of the revoked login is closed, saying why"
    );
    // The new password logs in again, on a new socket.
    let (mut again, _) = login(bridge.addr, "alice", "secret2").await;
    payload(
        &again
            .ask(&format!(
                r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#
            ))
            .await,
        "CONTACTS_LOADED",
    );
    bridge.stop().await;
    server.stop().await;
}
both_backends!(
    password_change_closes_the_socket,
    super::password_change_closes_the_socket
);
