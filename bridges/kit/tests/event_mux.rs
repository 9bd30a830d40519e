//! The bridge process's one multiplexed event stream (`BridgeEvents`) against real nodes: only
//! a caller with the bridge key may open it, and only with a live user's access token may it
//! follow that user; two users on one stream each get their own events only; a stream cut
//! mid-traffic, or moved to another messaging replica (PostgreSQL + NATS), loses and repeats
//! nothing; a revoked session ends its user's feed.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use rosetta_bridge_kit::{Backend, Endpoints, EventStream, UserSession};
use rosetta_proto::{
    Reason,
    account::v1::LogoutRequest,
    messaging::v1::{
        BridgeEventsRequest, BridgeEventsResponse, BridgeFeedAdd, Event, MessageKind,
        SendMessageRequest, bridge_events_request::Action, bridge_events_response::Item, event,
        messaging_service_client::MessagingServiceClient, send_message_request,
    },
    metadata,
    social::v1::{CreateGroupRequest, social_service_client::SocialServiceClient},
};
use rosetta_testkit::{TestServer, authed, both_backends, relay::Relay};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Status, Streaming, transport::Channel};

/// Longest wait for something the test expects to happen.
const PATIENCE: Duration = Duration::from_secs(10);

/// The node's bridge key, as `rosetta all` generated it into its data directory.
fn bridge_key(server: &TestServer) -> String {
    std::fs::read_to_string(server.config.data_dir.join("bridge.key"))
        .expect("the node generated a bridge key")
        .trim()
        .to_owned()
}

/// Opens BridgeEvents with `key` (none: no key at all); returns the request sender and the
/// responses.
async fn open(
    channel: Channel,
    key: Option<&str>,
) -> Result<
    (
        mpsc::Sender<BridgeEventsRequest>,
        Streaming<BridgeEventsResponse>,
    ),
    Status,
> {
    let (tx, rx) = mpsc::channel(16);
    let mut request = Request::new(ReceiverStream::new(rx));
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert(metadata::BRIDGE_KEY, key.parse().expect("ascii"));
    }
    let responses = MessagingServiceClient::new(channel)
        .bridge_events(request)
        .await?
        .into_inner();
    Ok((tx, responses))
}

async fn add(requests: &mpsc::Sender<BridgeEventsRequest>, feed_id: u64, token: &str) {
    requests
        .send(BridgeEventsRequest {
            action: Some(Action::Add(BridgeFeedAdd {
                feed_id,
                access_token: token.into(),
                after_seq: None,
                conversation_cursors: Vec::new(),
            })),
        })
        .await
        .expect("request sent");
}

async fn next_response(responses: &mut Streaming<BridgeEventsResponse>) -> BridgeEventsResponse {
    tokio::time::timeout(PATIENCE, responses.message())
        .await
        .expect("a response within the patience")
        .expect("the stream goes on")
        .expect("not ended")
}

async fn refuses_callers_and_users_it_must(backend: rosetta_testkit::Backend) {
    let server = TestServer::start(backend).await;
    for key in [None, Some("00".repeat(32))] {
        let Err(refused) = open(server.channel().await, key.as_deref()).await else {
            panic!("opened without the bridge key");
        };
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert_eq!(Reason::of(&refused), Some(Reason::BridgeKeyRequired));
    }

    let alice = server.user("alice", "secret-pw-1").await;
    let alice_id = alice.user.as_ref().expect("user").id;
    let gone = server.user("gone", "secret-pw-2").await;
    server
        .account()
        .await
        .logout(authed(LogoutRequest {}, &gone.access_token))
        .await
        .expect("logged out");
    let (requests, mut responses) = open(server.channel().await, Some(&bridge_key(&server)))
        .await
        .expect("opened with the key");
    add(&requests, 1, "not-a-token").await;
    add(&requests, 2, &gone.access_token).await;
    add(&requests, 3, &alice.access_token).await;
    let mut ended = Vec::new();
    let mut caught_up = false;
    while ended.len() < 2 || !caught_up {
        let response = next_response(&mut responses).await;
        match response.item.expect("an item") {
            Item::Ended(end) => ended.push((response.feed_id, end.code, end.reason)),
            Item::CaughtUp(_) => {
                assert_eq!((response.feed_id, response.user_id), (3, alice_id));
                caught_up = true;
            }
            Item::Event(_) => {}
        }
    }
    ended.sort();
    assert_eq!(
        ended,
        vec![
            (1, Code::Unauthenticated as i32, "TOKEN_INVALID".to_owned()),
            (
                2,
                Code::Unauthenticated as i32,
                "SESSION_REVOKED".to_owned()
            ),
        ]
    );

    // Alice's session ends elsewhere: her feed ends with it.
    server
        .account()
        .await
        .logout(authed(LogoutRequest {}, &alice.access_token))
        .await
        .expect("logged out");
    loop {
        let response = next_response(&mut responses).await;
        if let Some(Item::Ended(end)) = response.item {
            assert_eq!(response.feed_id, 3);
            assert_eq!(end.reason, "SESSION_REVOKED");
            break;
        }
    }
}
both_backends!(refusals, super::refuses_callers_and_users_it_must);

async fn next(events: &mut EventStream) -> Option<Event> {
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event or the end within the patience")
}

/// The next message event's text, skipping other events (presence, group changes).
async fn next_text(events: &mut EventStream) -> String {
    loop {
        if let Some(event::Kind::Message(message)) =
            next(events).await.expect("the stream goes on").kind
        {
            return message.text;
        }
    }
}

/// Sends texts to a group of one (its creator), so only the creator receives them.
#[derive(Clone)]
struct Notes {
    messaging: MessagingServiceClient<Channel>,
    token: String,
    group: i64,
}

impl Notes {
    async fn create(channel: Channel, token: &str) -> Self {
        let group = SocialServiceClient::new(channel.clone())
            .create_group(authed(
                CreateGroupRequest {
                    name: "notes".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("group")
            .into_inner()
            .id;
        Self {
            messaging: MessagingServiceClient::new(channel),
            token: token.into(),
            group,
        }
    }

    async fn send(&self, text: &str) {
        self.messaging
            .clone()
            .send_message(authed(
                SendMessageRequest {
                    to: Some(send_message_request::To::ToGroupId(self.group)),
                    kind: MessageKind::Text.into(),
                    text: text.into(),
                    client_message_id: text.into(),
                    ..Default::default()
                },
                &self.token,
            ))
            .await
            .expect("sent");
    }
}

async fn two_users_share_one_stream(backend: rosetta_testkit::Backend) {
    let server = TestServer::start(backend).await;
    let bridge = server.backend();
    let (alice, bob) = (
        server.user("alice", "secret-pw-1").await,
        server.user("bob", "secret-pw-2").await,
    );
    let channel = server.channel().await;
    let alices_notes = Notes::create(channel.clone(), &alice.access_token).await;
    let bobs_notes = Notes::create(channel, &bob.access_token).await;
    let mut alices = EventStream::open(Arc::new(UserSession::new(bridge.clone(), alice)), PATIENCE)
        .await
        .expect("alice follows");
    let mut bobs = EventStream::open(Arc::new(UserSession::new(bridge.clone(), bob)), PATIENCE)
        .await
        .expect("bob follows");
    let mux = bridge.event_mux().expect("the backend has the key");
    assert_eq!(mux.feeds(), 2, "both follow over the process's one stream");
    assert!(mux.refused().is_none());

    alices_notes.send("a1").await;
    bobs_notes.send("b1").await;
    alices_notes.send("a2").await;
    bobs_notes.send("b2").await;
    assert_eq!(next_text(&mut alices).await, "a1");
    assert_eq!(next_text(&mut alices).await, "a2");
    assert_eq!(next_text(&mut bobs).await, "b1");
    assert_eq!(next_text(&mut bobs).await, "b2", "nothing of alice's");

    drop(alices);
    assert_eq!(mux.feeds(), 1, "a login's end removes its feed");
    bobs_notes.send("b3").await;
    assert_eq!(next_text(&mut bobs).await, "b3");
}
both_backends!(two_users, super::two_users_share_one_stream);

/// Sends `count` texts while `during` runs after the first third; returns them in order.
async fn traffic(notes: &Notes, count: usize, during: impl FnOnce()) -> Vec<String> {
    let texts: Vec<String> = (0..count).map(|n| format!("m{n:03}")).collect();
    let mut during = Some(during);
    for (n, text) in texts.iter().enumerate() {
        if n == count / 3
            && let Some(during) = during.take()
        {
            during();
        }
        notes.send(text).await;
    }
    texts
}

async fn expect_exactly(events: &mut EventStream, texts: &[String]) {
    for text in texts {
        assert_eq!(
            &next_text(events).await,
            text,
            "in order, none lost or repeated"
        );
    }
}

async fn a_cut_mid_traffic_loses_and_repeats_nothing(backend: rosetta_testkit::Backend) {
    let server = TestServer::start(backend).await;
    let relay = Relay::start(server.addr).await;
    let bridge = Backend::connect_lazy(&format!("http://{}", relay.addr))
        .expect("endpoint")
        .with_bridge_key(&bridge_key(&server))
        .expect("hex key");
    let login = server.user("alice", "secret-pw-1").await;
    let notes = Notes::create(server.channel().await, &login.access_token).await;
    let mut events = EventStream::open(Arc::new(UserSession::new(bridge.clone(), login)), PATIENCE)
        .await
        .expect("subscribed");
    assert_eq!(bridge.event_mux().expect("mux").feeds(), 1);

    let texts = traffic(&notes, 30, || relay.cut()).await;
    expect_exactly(&mut events, &texts).await;
    notes.send("last").await;
    assert_eq!(next_text(&mut events).await, "last", "nothing repeated");
    assert!(relay.accepted() >= 2, "the stream was reopened");
    assert!(!events.revoked());
}
both_backends!(
    cut_mid_traffic,
    super::a_cut_mid_traffic_loses_and_repeats_nothing
);

/// A TCP relay whose target can change: the messaging replica a bridge reaches.
struct Switch {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Switch {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let switch = Self {
            addr: listener.local_addr().expect("addr"),
            target: Arc::new(Mutex::new(target)),
            links: Arc::default(),
        };
        let (target, links) = (switch.target.clone(), switch.links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = *target.lock().expect("target");
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.lock().expect("links").push(link);
            }
        });
        switch
    }

    /// From now on connects to `target`, and drops every connection made so far.
    fn fail_over(&self, target: SocketAddr) {
        *self.target.lock().expect("target") = target;
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }
}

/// Two messaging replicas on one PostgreSQL database and one NATS bus: the bridge's stream
/// moves from the first to the second mid-traffic and its user misses and repeats nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_failover_loses_and_repeats_nothing() {
    let nats =
        std::env::var("ROSETTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let subject = format!("rosetta.test.{}", uuid_like());
    let first = TestServer::start_with(rosetta_testkit::Backend::Postgres, |c| {
        c.nats_url = Some(nats.clone());
        c.messaging.bus_subject = subject.clone();
    })
    .await;
    let (db_url, dir) = (first.config.database_url(), first.config.data_dir.clone());
    let second = TestServer::start_with(rosetta_testkit::Backend::Postgres, |c| {
        c.nats_url = Some(nats.clone());
        c.messaging.bus_subject = subject.clone();
        c.database_url = Some(db_url);
        // The same token keys and bridge key, as a deployment mounts them.
        c.data_dir = dir;
    })
    .await;
    let switch = Switch::start(first.addr).await;
    let bridge = Backend::connect_each(&Endpoints {
        messaging: format!("http://{}", switch.addr),
        ..Endpoints::single(&second.endpoint())
    })
    .expect("endpoints")
    .with_bridge_key(&bridge_key(&first))
    .expect("hex key");
    let login = second.user("alice", "secret-pw-1").await;
    let notes = Notes::create(second.channel().await, &login.access_token).await;
    let mut events = EventStream::open(Arc::new(UserSession::new(bridge.clone(), login)), PATIENCE)
        .await
        .expect("subscribed on the first replica");

    let texts = traffic(&notes, 30, || switch.fail_over(second.addr)).await;
    expect_exactly(&mut events, &texts).await;
    notes.send("last").await;
    assert_eq!(next_text(&mut events).await, "last", "nothing repeated");
}

fn uuid_like() -> String {
    format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}
