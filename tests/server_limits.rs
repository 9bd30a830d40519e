//! The gRPC server's protections, on a real node over real gRPC: a call whose handler overruns
//! the server's time limit ends with DEADLINE_EXCEEDED while an event stream opened before it
//! lives on, and calls beyond the concurrency limit are refused at once with UNAVAILABLE while
//! open streams take no place.
//!
//! A call is held inside its handler by the password-hashing pool: the test occupies the pool's
//! only worker, so a login waits in the queue for as long as the test wants.

use std::time::{Duration, Instant};

use rosetta_account::HashPool;
use rosetta_db::{
    entity::social::friendship,
    sea_orm::{ActiveModelTrait as _, ActiveValue::Set},
};
use rosetta_proto::{
    Reason,
    account::v1::{GetMyProfileRequest, LoginRequest, PasswordScheme, login_request::Identifier},
    messaging::v1::{
        MessageKind, SendMessageRequest, SubscribeRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, hold_hash_worker, reason};
use tonic::{Code, Status, Streaming};

fn login(username: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: "pw".into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

/// Holds the pool's only worker until the returned sender is used (or dropped).
fn hold_the_worker(pool: &HashPool) -> std::sync::mpsc::Sender<()> {
    let (open, held) = hold_hash_worker(pool);
    tokio::spawn(held);
    open
}

/// Waits until `n` requests are in the pool: a login admitted there is inside its handler.
async fn until_admitted(pool: &HashPool, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.admitted() < n {
        assert!(
            Instant::now() < deadline,
            "the login never reached the pool"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Users `a` and `b`, friends (written into the node's database), and their access tokens.
async fn friends(server: &TestServer) -> ((i64, String), (i64, String)) {
    let [a, b] = [
        server.user("alice", "pw").await,
        server.user("bob", "pw").await,
    ]
    .map(|login| (login.user.expect("user").id, login.access_token));
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("test connects to the node's database");
    for (user_id, friend_id) in [(a.0, b.0), (b.0, a.0)] {
        friendship::ActiveModel {
            user_id: Set(user_id),
            friend_id: Set(friend_id),
            since_ms: Set(rosetta_db::now_ms()),
        }
        .insert(&db)
        .await
        .expect("friendship row");
    }
    (a, b)
}

fn text_to(user: i64, text: &str) -> SendMessageRequest {
    SendMessageRequest {
        to: Some(To::ToUserId(user)),
        kind: MessageKind::Text.into(),
        text: text.into(),
        client_message_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

/// Reads `stream` until the message `text` arrives.
async fn receives(stream: &mut Streaming<SubscribeResponse>, text: &str) {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an item within 10 s")
            .expect("the stream is healthy")
            .expect("the stream is open")
            .item;
        if let Some(Item::Event(event)) = item
            && let Some(Kind::Message(message)) = event.kind
            && message.text == text
        {
            return;
        }
    }
}

async fn subscribe(server: &TestServer, token: &str) -> Streaming<SubscribeResponse> {
    MessagingServiceClient::new(server.channel().await)
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("subscribe")
        .into_inner()
}

#[tokio::test]
async fn a_call_past_the_time_limit_is_cut_while_an_older_stream_lives_on() {
    let limit = Duration::from_millis(1500);
    let pool = HashPool::new(1, 1);
    let server = TestServer::start_with_hash_pool(
        Backend::Sqlite,
        |config| config.grpc_request_timeout_ms = 1500,
        Some(pool.clone()),
    )
    .await;
    let ((_, alice), (bob_id, bob)) = friends(&server).await;
    let mut stream = subscribe(&server, &bob).await;

    let open = hold_the_worker(&pool);
    let begun = Instant::now();
    // The caller's own deadline is far off, so only the server's limit can cut the call.
    let mut request = tonic::Request::new(login("alice"));
    request.set_timeout(Duration::from_secs(60));
    let cut = server
        .account()
        .await
        .login(request)
        .await
        .expect_err("a login stuck in the pool's queue is cut");
    assert_eq!(cut.code(), Code::DeadlineExceeded, "{cut:?}");
    assert!(begun.elapsed() >= limit, "cut after {:?}", begun.elapsed());
    drop(open);

    // Bob's stream has been open for longer than the limit and still delivers.
    MessagingServiceClient::new(server.channel().await)
        .send_message(authed(text_to(bob_id, "still there"), &alice))
        .await
        .expect("send");
    receives(&mut stream, "still there").await;
    // A graceful stop waits for open streams.
    drop(stream);
    server.stop().await;
}

fn refused_as_overloaded(result: Result<impl std::fmt::Debug, Status>) {
    let status = result.expect_err("the only place is taken");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), Reason::Unavailable);
}

#[tokio::test]
async fn calls_beyond_the_limit_are_refused_at_once_and_streams_take_no_place() {
    let pool = HashPool::new(1, 1);
    let server = TestServer::start_with_hash_pool(
        Backend::Sqlite,
        |config| config.grpc_max_concurrent_requests = 1,
        Some(pool.clone()),
    )
    .await;
    let ((_, alice), (bob_id, bob)) = friends(&server).await;
    // Two open streams and a call after them: with room for one call, streams hold no place.
    let mut stream = subscribe(&server, &bob).await;
    let alices = subscribe(&server, &alice).await;
    let mut account = server.account().await;
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    account
        .get_my_profile(authed(GetMyProfileRequest {}, &bob))
        .await
        .expect("a call while two streams are open");

    let open = hold_the_worker(&pool);
    let mut stuck_client = server.account().await;
    let stuck = tokio::spawn(async move { stuck_client.login(login("alice")).await });
    until_admitted(&pool, 2).await;
    refused_as_overloaded(
        account
            .get_my_profile(authed(GetMyProfileRequest {}, &bob))
            .await,
    );
    refused_as_overloaded(
        messaging
            .send_message(authed(text_to(bob_id, "refused"), &alice))
            .await,
    );

    open.send(()).expect("the worker waits at the gate");
    stuck
        .await
        .expect("login task")
        .expect("the held login completes once the worker is free");
    // Its place came back; Bob's stream, open all along, delivers.
    messaging
        .send_message(authed(text_to(bob_id, "admitted"), &alice))
        .await
        .expect("send once the place is free");
    receives(&mut stream, "admitted").await;
    drop((stream, alices));
    server.stop().await;
}
