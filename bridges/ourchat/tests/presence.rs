//! Issue 19: an OurChat user goes offline as soon as their connection closes (it used to take
//! the 300 s presence timeout), and a user with two connections stays online until the second
//! closes. A friend watches over gRPC (GetPresence) while the user's WebSocket connections
//! log in and close.

mod common;

use std::time::{Duration, Instant};

use common::{Client, befriend, bridge, grpc_login};
use futures::SinkExt as _;
use rosetta_db::{
    entity::session,
    sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _},
};
use rosetta_proto::social::v1::PresenceStatus;
use rosetta_testkit::{Backend, TestServer, both_backends};
use tokio_tungstenite::tungstenite::Message;

/// Far below the service's 300 s presence timeout: only an explicit sign-out meets it.
const OFFLINE_WITHIN: Duration = Duration::from_secs(10);

async fn offline_on_close(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server).await;
    let friend = server.user("friend", "f-pw").await;

    let mut first = Client::connect(bridge.addr).await;
    let ocid = first.register_doc("ada@example.com", "a-pw", "Ada").await;
    let ada = grpc_login(&server, &ocid, "a-pw").await;
    befriend(&server, &friend, &ada).await;
    let ada_id = ada.user.as_ref().expect("user").id;

    // Two windows of the same user on this bridge.
    first.login_doc(&ocid, "a-pw").await;
    let mut second = Client::connect(bridge.addr).await;
    second.login_doc(&ocid, "a-pw").await;
    server
        .await_presence(
            &friend.access_token,
            ada_id,
            PresenceStatus::Online,
            OFFLINE_WITHIN,
        )
        .await;

    // The first closes; once the bridge has ended its login (its session is logged out),
    // Ada is still online: the second connection is open.
    close(first).await;
    await_bridge_sessions_revoked(&server, ada_id, 1).await;
    assert_eq!(
        server.presence(&friend.access_token, ada_id).await,
        PresenceStatus::Online,
        "one of two connections closed"
    );

    // The last one closes: offline now, not after the presence timeout.
    close(second).await;
    server
        .await_presence(
            &friend.access_token,
            ada_id,
            PresenceStatus::Offline,
            OFFLINE_WITHIN,
        )
        .await;
    await_bridge_sessions_revoked(&server, ada_id, 2).await;
}
both_backends!(offline_on_close, super::offline_on_close);

/// Closes the WebSocket as the client does when its window closes.
async fn close(mut client: Client) {
    client.ws.send(Message::Close(None)).await.expect("close");
}

/// Polls until `count` of the bridge's sessions of `user` are logged out: the bridge has
/// finished ending that many logins (it signs out before it logs out).
async fn await_bridge_sessions_revoked(server: &TestServer, user: i64, count: u64) {
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("database");
    let start = Instant::now();
    loop {
        let revoked = session::Entity::find()
            .filter(session::Column::UserId.eq(user))
            .filter(session::Column::Client.starts_with("bridge-ourchat"))
            .filter(session::Column::RevokedAtMs.is_not_null())
            .count(&db)
            .await
            .expect("sessions");
        if revoked >= count {
            return;
        }
        assert!(
            start.elapsed() < OFFLINE_WITHIN,
            "{revoked} of the bridge's sessions logged out, want {count}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
