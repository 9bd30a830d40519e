//! The services out of reach: a pipe login's event stream broken by the network resumes where
//! it stopped, a token that cannot be checked is not called bad, and a command waiting on
//! services that do not answer does not hold up the bridge's shutdown. The bridge reaches the
//! node through a relay that the test cuts or turns into a black hole.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use common::{Bridge, grpc_friends};
use rosetta_bridge_kit::settings::PipeSettings;
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, messaging_service_client::MessagingServiceClient,
    send_message_request::To,
};
use rosetta_testkit::{Backend, TestServer, authed};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
    time::Instant,
};

/// A TCP relay to the node that can drop every connection and refuse new ones for a while,
/// or accept them and never answer.
#[derive(Clone)]
struct Relay {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    black_hole: Arc<AtomicBool>,
    /// Told when a connection falls into the black hole.
    swallowed: Arc<Notify>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let relay = Self {
            addr: listener.local_addr().expect("addr"),
            open: Arc::new(AtomicBool::new(true)),
            black_hole: Arc::default(),
            swallowed: Arc::default(),
            links: Arc::default(),
        };
        let accepting = relay.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.open.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let link = if accepting.black_hole.load(Ordering::SeqCst) {
                    accepting.swallowed.notify_one();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut inbound, &mut tokio::io::sink()).await;
                    })
                } else {
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(to).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    })
                };
                accepting.links.lock().expect("links").push(link);
            }
        });
        relay
    }

    /// Drops every relayed connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// From now on, accepts connections and never answers.
    fn swallow(&self) {
        self.black_hole.store(true, Ordering::SeqCst);
    }
}

/// The bridge in front of `server`, reaching it through `relay`.
async fn bridge_through(server: TestServer, relay: &Relay) -> Bridge {
    let key = rosetta_node::node::bridge_key(&server.config, false)
        .expect("bridge key readable")
        .expect("the node generated a bridge key");
    let backend = rosetta_bridge_kit::Backend::connect_lazy(&format!("http://{}", relay.addr))
        .expect("endpoint")
        .with_bridge_key(&key.to_hex())
        .expect("hex key");
    Bridge::with_backend(server, backend, PipeSettings::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_event_stream_resumes_where_it_stopped() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (alice, bob) = grpc_friends(&server, "alice", "bob").await;
    let (alice_id, bob_id) = (
        alice.user.as_ref().expect("user").id,
        bob.user.as_ref().expect("user").id,
    );
    let messaging = MessagingServiceClient::new(server.channel().await);
    let relay = Relay::start(server.addr).await;
    let bridge = bridge_through(server, &relay).await;
    let mut pipe = bridge.client().await;
    pipe.login("alice", "alice-pw").await;

    let send = |text: &'static str, n: u32| {
        let request = authed(
            SendMessageRequest {
                to: Some(To::ToUserId(alice_id)),
                kind: MessageKind::Text.into(),
                text: text.into(),
                client_message_id: format!("resume-{n}"),
                client_time: format!("t{n}"),
                ..Default::default()
            },
            &bob.access_token,
        );
        let mut messaging = messaging.clone();
        async move { messaging.send_message(request).await.expect("bob writes") }
    };
    send("before", 1).await;
    let bob_uid = format!("{bob_id:05}");
    pipe.expect(&format!("message|0|{bob_uid}|t1|before")).await;

    relay.cut();
    send("while_cut", 2).await;
    relay.reopen();
    pipe.expect(&format!("message|0|{bob_uid}|t2|while_cut"))
        .await;
    send("after", 3).await;
    pipe.expect(&format!("message|0|{bob_uid}|t3|after")).await;
    bridge.stop().await;
}

/// The bridge's one event stream cut while a friend writes steadily: the pipe client gets
/// every message once, in order (the stream is reopened and the login's feed resumes after
/// the newest event it queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_mid_traffic_loses_and_repeats_nothing() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (alice, bob) = grpc_friends(&server, "alice", "bob").await;
    let (alice_id, bob_id) = (
        alice.user.as_ref().expect("user").id,
        bob.user.as_ref().expect("user").id,
    );
    let messaging = MessagingServiceClient::new(server.channel().await);
    let relay = Relay::start(server.addr).await;
    let bridge = bridge_through(server, &relay).await;
    let mut pipe = bridge.client().await;
    pipe.login("alice", "alice-pw").await;

    for n in 1..=31u32 {
        match n {
            11 => relay.cut(),
            16 => relay.reopen(),
            _ => {}
        }
        let text = if n == 31 {
            "last".to_owned()
        } else {
            format!("m{n:02}")
        };
        let request = authed(
            SendMessageRequest {
                to: Some(To::ToUserId(alice_id)),
                kind: MessageKind::Text.into(),
                text,
                client_message_id: format!("burst-{n}"),
                client_time: format!("t{n}"),
                ..Default::default()
            },
            &bob.access_token,
        );
        messaging
            .clone()
            .send_message(request)
            .await
            .expect("bob writes");
    }
    let bob_uid = format!("{bob_id:05}");
    for n in 1..=30u32 {
        pipe.expect(&format!("message|0|{bob_uid}|t{n}|m{n:02}"))
            .await;
    }
    // A repeat of any of them would come before this one.
    pipe.expect(&format!("message|0|{bob_uid}|t31|last")).await;
    bridge.stop().await;
}

/// With the services out of reach, a token issued to another connection cannot be checked:
/// that is the command's failure form (and a log line), not a token error that would tell the
/// client to log in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_not_a_bad_token() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, bob) = grpc_friends(&server, "alice", "bob").await;
    let bob_id = bob.user.as_ref().expect("user").id;
    let relay = Relay::start(server.addr).await;
    let bridge = bridge_through(server, &relay).await;
    let mut first = bridge.client().await;
    let (uid, token, _) = first.login("alice", "alice-pw").await;
    let mut other = bridge.client().await;
    other.send(&format!("get_user_friend|{uid}|{token}")).await;
    other.expect(&format!("friendinfo|1|00{bob_id}")).await;

    relay.cut();
    // The failure form of `get_user_friend` is an empty list.
    other.send(&format!("get_user_friend|{uid}|{token}")).await;
    other.expect("friendinfo|0").await;
    other.send(&format!("get_user_group|{uid}|{token}")).await;
    other.expect("groupinfo|0").await;
    // A wrong token is still refused as one, without asking the services.
    other.send(&format!("get_user_friend|{uid}|")).await;
    other.expect("get_user_friend|您无权进行此操作！").await;
    relay.reopen();
    bridge.stop().await;
}

/// With the services accepting connections but never answering, a command waiting on them
/// does not hold up the bridge's shutdown: the connection stops at once instead of when the
/// call gives up (the bridge's handlers used to run to the end of their calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_a_call_that_hangs() {
    let server = TestServer::start(Backend::Sqlite).await;
    let alice = server.user("alice", "alice-pw").await;
    let uid = alice.user.as_ref().expect("user").id;
    let relay = Relay::start(server.addr).await;
    relay.swallow();
    let bridge = bridge_through(server, &relay).await;
    let mut c = bridge.client().await;
    // A token issued elsewhere: checked with the services, which never answer.
    c.send(&format!("get_user_friend|{uid}|aB3dE5fG7hJ9kL1m"))
        .await;
    relay.swallowed.notified().await;
    let stopping = Instant::now();
    bridge.stop().await;
    assert!(
        stopping.elapsed() < SHUTDOWN_BOUND,
        "the bridge took {:?} to stop",
        stopping.elapsed()
    );
}

/// Well under the bridge kit's 10 s call deadline.
const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(5);
