//! The messaging service end to end over real gRPC: on SQLite and on PostgreSQL, and across
//! processes over PostgreSQL + NATS (127.0.0.1:4222).
//!
//! Friendships and group memberships are written straight into the social tables (the same
//! database the node uses): these tests exercise messaging's policy, not the social service.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use std::{collections::BTreeSet, time::Duration};

use rosetta_db::{
    entity::social::{friendship, group, group_member},
    sea_orm::{ActiveModelTrait as _, ActiveValue::Set, DatabaseConnection},
};
use rosetta_proto::{
    common::v1::{ConversationRef, Location, conversation_ref::Ref},
    messaging::v1::{
        ClearHistoryRequest, Event, GetPresenceRequest, GetUnreadCountsRequest, HeartbeatRequest,
        ListMessagesRequest, MarkReadRequest, MessageKind, RecallMessageRequest,
        SendMessageRequest, SendMessageResponse, SendTypingRequest, SetPresenceRequest,
        SubscribeRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
    social::v1::{GroupRole, PresenceStatus},
};
use support::{Backend, TestServer, authed, reason};
use tonic::{Code, Streaming, transport::Channel};

type Client = MessagingServiceClient<Channel>;

/// A logged-in test user.
struct User {
    id: i64,
    token: String,
}

async fn user(server: &TestServer, name: &str) -> User {
    let login = server.user(name, "pw").await;
    User {
        id: login.user.expect("user").id,
        token: login.access_token,
    }
}

async fn db(server: &TestServer) -> DatabaseConnection {
    rosetta_db::connect(&server.config.database_url())
        .await
        .expect("test connects to the node's database")
}

async fn befriend(db: &DatabaseConnection, a: i64, b: i64) {
    for (user_id, friend_id) in [(a, b), (b, a)] {
        friendship::ActiveModel {
            user_id: Set(user_id),
            friend_id: Set(friend_id),
            since_ms: Set(rosetta_db::now_ms()),
        }
        .insert(db)
        .await
        .expect("friendship row");
    }
}

/// A group owned by `members[0]`; returns its id.
async fn group_of(db: &DatabaseConnection, members: &[i64]) -> i64 {
    let g = group::ActiveModel {
        name: Set("g".into()),
        owner_id: Set(members[0]),
        public: Set(false),
        slug: Set(None),
        created_at_ms: Set(rosetta_db::now_ms()),
        dissolved_at_ms: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("group row");
    for (i, &user_id) in members.iter().enumerate() {
        let role = if i == 0 {
            GroupRole::Owner
        } else {
            GroupRole::Member
        };
        member(db, g.id, user_id, role, 0).await;
    }
    g.id
}

async fn member(db: &DatabaseConnection, group_id: i64, user_id: i64, role: GroupRole, muted: i64) {
    group_member::ActiveModel {
        group_id: Set(group_id),
        user_id: Set(user_id),
        role: Set(role as i16),
        joined_at_ms: Set(rosetta_db::now_ms()),
        muted_until_ms: Set(muted),
    }
    .insert(db)
    .await
    .expect("member row");
}

fn text_to(to: To, text: &str, client_id: &str) -> SendMessageRequest {
    SendMessageRequest {
        to: Some(to),
        kind: MessageKind::Text.into(),
        text: text.into(),
        client_message_id: client_id.into(),
        ..Default::default()
    }
}

async fn send(client: &mut Client, from: &User, to: To, text: &str) -> SendMessageResponse {
    client
        .send_message(authed(
            text_to(to, text, &uuid::Uuid::new_v4().to_string()),
            &from.token,
        ))
        .await
        .expect("send")
        .into_inner()
}

/// `user` marks their private chat with `peer` read up to `up_to_seq`; their read mark after.
async fn mark_read(
    client: &mut Client,
    user: &User,
    peer: i64,
    up_to_seq: u64,
    no_receipt: bool,
) -> u64 {
    let request = MarkReadRequest {
        conversation: private(peer),
        up_to_seq,
        no_receipt,
    };
    client
        .mark_read(authed(request, &user.token))
        .await
        .expect("marked read")
        .into_inner()
        .last_read_seq
}

async fn subscribe(
    client: &mut Client,
    who: &User,
    after: Option<u64>,
) -> Streaming<SubscribeResponse> {
    client
        .subscribe(authed(
            SubscribeRequest {
                after_seq: after,
                ..Default::default()
            },
            &who.token,
        ))
        .await
        .expect("subscribe")
        .into_inner()
}

async fn next_item(stream: &mut Streaming<SubscribeResponse>) -> Item {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an item within 10 s")
        .expect("stream healthy")
        .expect("stream open")
        .item
        .expect("item set")
}

async fn next_event(stream: &mut Streaming<SubscribeResponse>) -> Event {
    match next_item(stream).await {
        Item::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The next durable event, skipping live-only ones (presence, typing).
async fn next_durable(stream: &mut Streaming<SubscribeResponse>) -> Event {
    loop {
        let event = next_event(stream).await;
        if event.seq != 0 {
            return event;
        }
    }
}

/// The next event `pred` accepts, skipping others.
async fn next_where(
    stream: &mut Streaming<SubscribeResponse>,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    loop {
        let event = next_event(stream).await;
        if pred(&event) {
            return event;
        }
    }
}

async fn caught_up(stream: &mut Streaming<SubscribeResponse>) -> u64 {
    match next_item(stream).await {
        Item::CaughtUp(c) => c.head_seq,
        other => panic!("expected CaughtUp, got {other:?}"),
    }
}

fn text_of(event: &Event) -> &str {
    match &event.kind {
        Some(Kind::Message(m)) => &m.text,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn private(user: i64) -> Option<ConversationRef> {
    Some(ConversationRef {
        r#ref: Some(Ref::UserId(user)),
    })
}

async fn private_and_group_delivery(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob, carol) = (
        user(&server, "alice").await,
        user(&server, "bob").await,
        user(&server, "carol").await,
    );
    let db = db(&server).await;
    befriend(&db, alice.id, bob.id).await;
    let gid = group_of(&db, &[alice.id, bob.id, carol.id]).await;
    let mut client = Client::new(server.channel().await);

    let mut bob_stream = subscribe(&mut client, &bob, None).await;
    assert_eq!(caught_up(&mut bob_stream).await, 0);
    let mut carol_stream = subscribe(&mut client, &carol, None).await;
    caught_up(&mut carol_stream).await;

    let sent = send(&mut client, &alice, To::ToUserId(bob.id), "hi bob").await;
    assert!(sent.recipient_online, "bob has a live stream");
    assert!(!sent.duplicate);
    let message = sent.message.unwrap();
    assert_eq!(message.seq, 1);
    let event = next_durable(&mut bob_stream).await;
    assert_eq!(event.seq, 1);
    assert_eq!(text_of(&event), "hi bob");

    send(&mut client, &alice, To::ToGroupId(gid), "hi all").await;
    assert_eq!(text_of(&next_durable(&mut bob_stream).await), "hi all");
    let carol_event = next_durable(&mut carol_stream).await;
    assert_eq!(text_of(&carol_event), "hi all");
    assert_eq!(carol_event.seq, 1, "per-user seq starts at 1 for carol");

    // Typing reaches the other side live, with seq 0, seen from the recipient's side.
    let mut alice_stream = subscribe(&mut client, &alice, None).await;
    caught_up(&mut alice_stream).await;
    client
        .send_typing(authed(
            SendTypingRequest {
                conversation: private(alice.id),
            },
            &bob.token,
        ))
        .await
        .expect("typing");
    let typing = next_where(&mut alice_stream, |e| {
        matches!(e.kind, Some(Kind::Typing(_)))
    })
    .await;
    assert_eq!(typing.seq, 0);
    let Some(Kind::Typing(typing)) = typing.kind else {
        unreachable!()
    };
    assert_eq!(
        (typing.user_id, typing.conversation),
        (bob.id, private(bob.id))
    );

    // Policy.
    let err = client
        .send_message(authed(
            text_to(To::ToUserId(carol.id), "x", "c1"),
            &alice.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::PermissionDenied, Reason::NotFriends)
    );
    let outsider = user(&server, "dave").await;
    let err = client
        .send_message(authed(
            text_to(To::ToGroupId(gid), "x", "d1"),
            &outsider.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Reason::NotMember);
    let muted_group = group_of(&db, &[alice.id]).await;
    member(
        &db,
        muted_group,
        carol.id,
        GroupRole::Member,
        rosetta_db::now_ms() + 60_000,
    )
    .await;
    let err = client
        .send_message(authed(
            text_to(To::ToGroupId(muted_group), "x", "m1"),
            &carol.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Reason::Muted);
    let mut image = text_to(To::ToUserId(bob.id), "", "img1");
    image.kind = MessageKind::Image.into();
    let err = client
        .send_message(authed(image, &alice.token))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::InvalidArgument, Reason::FileIdRequired)
    );
    let err = client
        .send_message(authed(text_to(To::ToUserId(bob.id), "x", ""), &alice.token))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Reason::ClientMessageIdRequired);
    let err = client
        .send_message(tonic::Request::new(text_to(
            To::ToUserId(bob.id),
            "x",
            "n1",
        )))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    drop((alice_stream, bob_stream, carol_stream));
}
both_backends!(
    private_and_group_delivery,
    super::private_and_group_delivery
);

/// Offline delivery on the next subscribe, history, unread counts, read receipts, clearing and
/// recall.
async fn offline_delivery_and_history(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (user(&server, "alice").await, user(&server, "bob").await);
    let db = db(&server).await;
    befriend(&db, alice.id, bob.id).await;
    let mut client = Client::new(server.channel().await);

    let mut ids = Vec::new();
    for i in 1..=5 {
        let sent = send(&mut client, &alice, To::ToUserId(bob.id), &format!("m{i}")).await;
        assert!(!sent.recipient_online, "bob never connected");
        ids.push(sent.message.unwrap().id);
    }
    let unread = client
        .get_unread_counts(authed(GetUnreadCountsRequest {}, &bob.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unread.total, 5);
    assert_eq!(unread.conversations.len(), 1);
    assert_eq!(unread.conversations[0].r#ref, private(alice.id));
    let alice_unread = client
        .get_unread_counts(authed(GetUnreadCountsRequest {}, &alice.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice_unread.total, 0, "own messages are read");

    let mut stream = subscribe(&mut client, &bob, Some(0)).await;
    for i in 1..=5u64 {
        let event = next_event(&mut stream).await;
        assert_eq!(event.seq, i);
        assert_eq!(text_of(&event), format!("m{i}"));
    }
    assert_eq!(caught_up(&mut stream).await, 5);

    // History pages: newest below a bound, oldest above one.
    let page = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(alice.id),
                before_seq: 5,
                limit: 2,
                ..Default::default()
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [3, 4]
    );
    assert!(page.has_more);
    let page = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(alice.id),
                after_seq: 3,
                limit: 10,
                ..Default::default()
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(!page.has_more);

    // Marking read sends alice a durable receipt, unless the mark only records delivery to a
    // client without read state: alice's first receipt is then the later mark's.
    let mut alice_stream = subscribe(&mut client, &alice, None).await;
    caught_up(&mut alice_stream).await;
    assert_eq!(mark_read(&mut client, &bob, alice.id, 2, true).await, 2);
    assert_eq!(mark_read(&mut client, &bob, alice.id, 3, false).await, 3);
    let receipt = next_where(&mut alice_stream, |e| {
        matches!(e.kind, Some(Kind::ReadReceipt(_)))
    })
    .await;
    assert!(receipt.seq > 0, "receipts are durable");
    let Some(Kind::ReadReceipt(receipt)) = receipt.kind else {
        unreachable!()
    };
    assert_eq!((receipt.reader_id, receipt.up_to_seq), (bob.id, 3));
    // A mark never moves back.
    assert_eq!(mark_read(&mut client, &bob, alice.id, 1, true).await, 3);
    let unread = client
        .get_unread_counts(authed(GetUnreadCountsRequest {}, &bob.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unread.total, 2);
    // History carries both read marks: alice sees how far bob read her messages.
    let page = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(bob.id),
                ..Default::default()
            },
            &alice.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.last_read_seq, page.peer_last_read_seq), (5, 3));

    // Recall: the sender may; bob may not recall alice's message.
    let err = client
        .recall_message(authed(
            RecallMessageRequest { message_id: ids[4] },
            &bob.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Reason::NotAllowed);
    client
        .recall_message(authed(
            RecallMessageRequest { message_id: ids[4] },
            &alice.token,
        ))
        .await
        .expect("recall");
    let recalled = next_where(&mut stream, |e| {
        matches!(e.kind, Some(Kind::MessageRecalled(_)))
    })
    .await;
    let Some(Kind::MessageRecalled(recalled)) = recalled.kind else {
        unreachable!()
    };
    assert_eq!((recalled.message_id, recalled.seq), (ids[4], 5));
    let last = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(alice.id),
                ..Default::default()
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let m5 = last.messages.last().unwrap();
    assert!(
        m5.recalled && m5.text.is_empty(),
        "recalled messages lose their content"
    );

    // Clearing hides history for bob only.
    let cleared = client
        .clear_history(authed(
            ClearHistoryRequest {
                conversation: private(alice.id),
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.cleared_up_to_seq, 5);
    let bob_view = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(alice.id),
                ..Default::default()
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(bob_view.messages.is_empty());
    let alice_view = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(bob.id),
                ..Default::default()
            },
            &alice.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice_view.messages.len(), 5);
    drop((stream, alice_stream));
}
both_backends!(
    offline_delivery_and_history,
    super::offline_delivery_and_history
);

async fn idempotent_retry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (user(&server, "alice").await, user(&server, "bob").await);
    befriend(&db(&server).await, alice.id, bob.id).await;
    let mut client = Client::new(server.channel().await);
    let request = text_to(To::ToUserId(bob.id), "once", "retry-key-1");
    let first = client
        .send_message(authed(request.clone(), &alice.token))
        .await
        .unwrap()
        .into_inner();
    // Concurrent retries race the unique key; all answer with the original.
    let retries = futures::future::join_all((0..5).map(|_| {
        let mut client = client.clone();
        let request = authed(request.clone(), &alice.token);
        async move { client.send_message(request).await.unwrap().into_inner() }
    }))
    .await;
    assert!(!first.duplicate);
    for retry in retries {
        assert!(retry.duplicate);
        assert_eq!(retry.message, first.message);
    }
    let history = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(alice.id),
                ..Default::default()
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.messages.len(), 1, "stored once");
    let mut stream = subscribe(&mut client, &bob, Some(0)).await;
    next_event(&mut stream).await;
    assert_eq!(caught_up(&mut stream).await, 1, "one event, not six");
}
both_backends!(idempotent_retry, super::idempotent_retry);

/// Concurrent senders in one group: seqs 1..=N with no gap or duplicate, and every member's
/// stream sees them in seq order.
async fn ordering_under_concurrent_senders(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut members = Vec::new();
    for name in ["s1", "s2", "s3", "s4", "reader"] {
        members.push(user(&server, name).await);
    }
    let gid = group_of(
        &db(&server).await,
        &members.iter().map(|u| u.id).collect::<Vec<_>>(),
    )
    .await;
    let mut client = Client::new(server.channel().await);
    let reader = members.pop().unwrap();
    let mut stream = subscribe(&mut client, &reader, None).await;
    caught_up(&mut stream).await;
    const EACH: usize = 40;
    let senders = members.iter().map(|sender| {
        let mut client = client.clone();
        async move {
            let mut seqs = Vec::new();
            for i in 0..EACH {
                let sent = send(
                    &mut client,
                    sender,
                    To::ToGroupId(gid),
                    &format!("{}:{i}", sender.id),
                )
                .await;
                seqs.push(sent.message.unwrap().seq);
            }
            seqs
        }
    });
    let results = futures::future::join_all(senders).await;
    let total = EACH * results.len();
    let all: BTreeSet<u64> = results.iter().flatten().copied().collect();
    assert_eq!(all, (1..=total as u64).collect(), "no gap, no duplicate");
    for seqs in &results {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a sender's messages keep their order"
        );
    }
    let mut last_conversation_seq = 0;
    for expected in 1..=total as u64 {
        let event = next_durable(&mut stream).await;
        assert_eq!(event.seq, expected, "per-user seq without gaps");
        let Some(Kind::Message(m)) = event.kind else {
            panic!("a message")
        };
        assert!(
            m.seq > last_conversation_seq,
            "delivered in conversation order"
        );
        last_conversation_seq = m.seq;
    }
}
both_backends!(
    ordering_under_concurrent_senders,
    super::ordering_under_concurrent_senders
);

/// 1,000 messages, a forced disconnect midway, and a resume from the last seq seen: every
/// message exactly once.
async fn resume_after_disconnect(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (user(&server, "alice").await, user(&server, "bob").await);
    befriend(&db(&server).await, alice.id, bob.id).await;
    let client = Client::new(server.channel().await);
    let bob_channel = server.channel().await;
    let mut bob_client = Client::new(bob_channel);
    let mut stream = subscribe(&mut bob_client, &bob, Some(0)).await;
    assert_eq!(caught_up(&mut stream).await, 0);

    const TOTAL: u64 = 1000;
    let sender = tokio::spawn({
        let (mut client, token, to) = (client.clone(), alice.token.clone(), bob.id);
        async move {
            for i in 1..=TOTAL {
                let request = text_to(To::ToUserId(to), &i.to_string(), &format!("k{i}"));
                client
                    .send_message(authed(request, &token))
                    .await
                    .expect("send");
            }
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 300 {
        let event = next_durable(&mut stream).await;
        seen.push((event.seq, text_of(&event).to_owned()));
    }
    // Forced disconnect: the stream and its whole connection go away mid-flight.
    drop(stream);
    drop(bob_client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut bob_client = Client::new(server.channel().await);
    let resume_from = seen.last().unwrap().0;
    let mut stream = subscribe(&mut bob_client, &bob, Some(resume_from)).await;
    sender.await.expect("sender");
    loop {
        match next_item(&mut stream).await {
            Item::Event(event) if event.seq != 0 => {
                seen.push((event.seq, text_of(&event).to_owned()))
            }
            Item::Event(_) => {}
            Item::CaughtUp(c) => {
                if c.head_seq == TOTAL {
                    break;
                }
            }
        }
        if seen.len() as u64 == TOTAL {
            break;
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=TOTAL).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let texts: Vec<String> = seen.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(
        texts,
        (1..=TOTAL).map(|i| i.to_string()).collect::<Vec<_>>()
    );
}
both_backends!(resume_after_disconnect, super::resume_after_disconnect);

/// A stream outlives nothing it was opened with: once its session is revoked (here by a logout
/// with the same token, as a password change elsewhere would), the stream ends with
/// SESSION_REVOKED instead of delivering that session's events any longer.
async fn revoked_session_ends_its_stream(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bob = user(&server, "bob").await;
    let mut client = Client::new(server.channel().await);
    let mut stream = subscribe(&mut client, &bob, None).await;
    caught_up(&mut stream).await;
    server
        .account()
        .await
        .logout(authed(
            rosetta_proto::account::v1::LogoutRequest {},
            &bob.token,
        ))
        .await
        .expect("logout");
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream closed without an error"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream of a revoked session ends within 30 s");
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert_eq!(reason(&ended), Reason::SessionRevoked);
}
both_backends!(
    revoked_session_ends_its_stream,
    super::revoked_session_ends_its_stream
);

/// Streams make users present; contacts hear it; invisible users appear offline; the timeout
/// takes users without stream or heartbeat offline.
async fn presence(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.messaging.presence_timeout_ms = 600;
    })
    .await;
    let (alice, bob) = (user(&server, "alice").await, user(&server, "bob").await);
    let stranger = user(&server, "eve").await;
    befriend(&db(&server).await, alice.id, bob.id).await;
    let mut client = Client::new(server.channel().await);
    let mut alice_stream = subscribe(&mut client, &alice, None).await;
    caught_up(&mut alice_stream).await;

    let is_presence = |status: PresenceStatus| move |e: &Event| matches!(&e.kind, Some(Kind::PresenceChanged(p)) if p.status == status as i32);
    let bob_stream = subscribe(&mut client, &bob, None).await;
    let online = next_where(&mut alice_stream, is_presence(PresenceStatus::Online)).await;
    assert_eq!(online.seq, 0, "presence is live-only");

    client
        .set_presence(authed(
            SetPresenceRequest {
                status: PresenceStatus::Invisible.into(),
            },
            &bob.token,
        ))
        .await
        .unwrap();
    next_where(&mut alice_stream, is_presence(PresenceStatus::Offline)).await;
    let reader = client.clone();
    let seen = |viewer: &User| {
        let mut client = reader.clone();
        let (token, id) = (viewer.token.clone(), bob.id);
        async move {
            client
                .get_presence(authed(GetPresenceRequest { user_ids: vec![id] }, &token))
                .await
                .unwrap()
                .into_inner()
                .presences[0]
                .clone()
        }
    };
    assert_eq!(seen(&alice).await.status, PresenceStatus::Offline as i32);
    assert_eq!(
        seen(&bob).await.status,
        PresenceStatus::Invisible as i32,
        "users see themselves"
    );
    client
        .set_presence(authed(
            SetPresenceRequest {
                status: PresenceStatus::Online.into(),
            },
            &bob.token,
        ))
        .await
        .unwrap();
    next_where(&mut alice_stream, is_presence(PresenceStatus::Online)).await;

    // Heartbeats alone keep a user present and carry a location.
    drop(bob_stream);
    let location = Location {
        latitude: 52.5,
        longitude: 13.4,
        client_time: "2026-01-01 10:00:00".into(),
        received_at_ms: 0,
    };
    for _ in 0..4 {
        client
            .heartbeat(authed(
                HeartbeatRequest {
                    location: Some(location.clone()),
                },
                &bob.token,
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let shown = seen(&alice).await;
    assert_eq!(shown.status, PresenceStatus::Online as i32);
    assert_eq!(shown.location.as_ref().map(|l| l.latitude), Some(52.5));
    assert_eq!(
        seen(&stranger).await.status,
        PresenceStatus::Offline as i32,
        "strangers see nothing"
    );

    // No stream, no heartbeat: offline after the timeout.
    let offline = next_where(&mut alice_stream, is_presence(PresenceStatus::Offline)).await;
    let Some(Kind::PresenceChanged(p)) = offline.kind else {
        unreachable!()
    };
    assert_eq!(p.user_id, bob.id);
    assert_eq!(seen(&alice).await.status, PresenceStatus::Offline as i32);
}
both_backends!(presence, super::presence);

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// A bus subject of this test's own, so tests sharing the NATS server cannot see each other.
fn bus_subject() -> String {
    format!("rosetta.test.{}", uuid::Uuid::new_v4().simple())
}

/// Two messaging processes over one PostgreSQL database and NATS: a message sent through one
/// reaches a stream served by the other at once (streams never poll: only the bus can carry
/// it), and presence is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_postgres_and_nats() {
    let subject = bus_subject();
    let setup = |c: &mut rosetta_node::Config, subject: &str| {
        c.nats_url = Some(NATS_URL.into());
        c.messaging.bus_subject = subject.into();
    };
    let first = TestServer::start_with(Backend::Postgres, |c| setup(c, &subject)).await;
    let (url, dir) = (first.config.database_url(), first.config.data_dir.clone());
    let second = TestServer::start_with(Backend::Postgres, |c| {
        setup(c, &subject);
        c.database_url = Some(url);
        // Same data dir: the same token keys, as a deployment would configure them.
        c.data_dir = dir;
    })
    .await;
    let (alice, bob) = (user(&first, "alice").await, user(&first, "bob").await);
    befriend(&db(&first).await, alice.id, bob.id).await;
    let mut on_first = Client::new(first.channel().await);
    let mut on_second = Client::new(second.channel().await);

    let mut bob_stream = subscribe(&mut on_second, &bob, None).await;
    caught_up(&mut bob_stream).await;
    let mut alice_stream = subscribe(&mut on_first, &alice, None).await;
    caught_up(&mut alice_stream).await;
    for i in 0..20 {
        let sent = send(
            &mut on_first,
            &alice,
            To::ToUserId(bob.id),
            &format!("x{i}"),
        )
        .await;
        assert!(
            sent.recipient_online,
            "bob's stream on the other process counts"
        );
        let event = tokio::time::timeout(Duration::from_secs(5), next_durable(&mut bob_stream))
            .await
            .expect("delivered across processes by the bus, not the minute-long poll");
        assert_eq!(text_of(&event), format!("x{i}"));
    }
    send(&mut on_second, &bob, To::ToUserId(alice.id), "back").await;
    let is_reply = |e: &Event| matches!(&e.kind, Some(Kind::Message(m)) if m.text == "back");
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        next_where(&mut alice_stream, is_reply),
    )
    .await
    .expect("and back, through the bus");
    assert!(
        reply.seq > 20,
        "after alice's own twenty messages in her log"
    );
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `rosetta all` as a child process on PostgreSQL + NATS.
fn spawn_rosetta(
    port: u16,
    database_url: &str,
    dir: &std::path::Path,
    subject: &str,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
        .args([
            "all",
            "--grpc-listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("ROSETTA_NATS_URL", NATS_URL)
        .env("ROSETTA_MESSAGING__BUS_SUBJECT", subject)
        .env("ROSETTA_ACCOUNT__CODE_RESEND_INTERVAL_SECS", "0")
        // Two replicas run at once: neither serves the web client or metrics on a fixed port.
        .env("ROSETTA_WEB_LISTEN", "")
        .env("ROSETTA_METRICS_LISTEN", "")
        .envs(
            ["PIPE", "DPC", "IMPS", "OURCHAT", "CLOUDCHAT"]
                .map(|b| (format!("ROSETTA_BRIDGES__{b}__ENABLED"), "false")),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn rosetta")
}

async fn connect(port: u16) -> Channel {
    support::connect(&format!("http://127.0.0.1:{port}"), Duration::from_secs(30)).await
}

async fn register(channel: Channel, name: &str) -> User {
    use rosetta_proto::account::v1::{
        LoginRequest, PasswordScheme, RegisterRequest,
        account_service_client::AccountServiceClient, login_request::Identifier,
    };
    let mut account = AccountServiceClient::new(channel);
    account
        .register(RegisterRequest {
            username: name.into(),
            password: "pw".into(),
            password_scheme: PasswordScheme::Plain.into(),
            nickname: name.into(),
            ..Default::default()
        })
        .await
        .expect("register");
    let login = account
        .login(LoginRequest {
            identifier: Some(Identifier::Username(name.into())),
            password: "pw".into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "test".into(),
        })
        .await
        .expect("login")
        .into_inner();
    User {
        id: login.user.expect("user").id,
        token: login.access_token,
    }
}

/// SIGKILL in the middle of a burst of sends: after a restart every acknowledged message is
/// there exactly once, seqs have no gaps, and retrying the unacknowledged sends with their
/// keys stores nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_message() {
    let pg = support::PgDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let subject = bus_subject();
    let port = free_port();
    let mut child = spawn_rosetta(port, &pg.url, dir.path(), &subject);
    let channel = connect(port).await;
    let (alice, bob) = (
        register(channel.clone(), "alice").await,
        register(channel.clone(), "bob").await,
    );
    let db = rosetta_db::connect(&pg.url).await.expect("db");
    befriend(&db, alice.id, bob.id).await;

    const SENDERS: usize = 4;
    const EACH: usize = 100;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let tasks: Vec<_> = (0..SENDERS)
        .map(|t| {
            let (mut client, token, to, acked) = (
                Client::new(channel.clone()),
                alice.token.clone(),
                bob.id,
                acked.clone(),
            );
            tokio::spawn(async move {
                for i in 0..EACH {
                    let key = format!("t{t}-{i}");
                    match client
                        .send_message(authed(text_to(To::ToUserId(to), &key, &key), &token))
                        .await
                    {
                        Ok(reply) => acked
                            .lock()
                            .unwrap()
                            .push((key, reply.into_inner().message.unwrap().seq)),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    for task in tasks {
        task.await.expect("sender task");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 150 && acked.len() < SENDERS * EACH,
        "killed mid-burst ({} acked)",
        acked.len()
    );

    let mut child = spawn_rosetta(port, &pg.url, dir.path(), &subject);
    let channel = connect(port).await;
    let mut client = Client::new(channel);
    // Retry every send (acked or not) with its key: nothing may be stored twice.
    for t in 0..SENDERS {
        for i in 0..EACH {
            let key = format!("t{t}-{i}");
            client
                .send_message(authed(
                    text_to(To::ToUserId(bob.id), &key, &key),
                    &alice.token,
                ))
                .await
                .expect("retry after restart");
        }
    }
    let mut stream = subscribe(&mut client, &bob, Some(0)).await;
    let mut delivered = Vec::new();
    // Everything up to CaughtUp.
    while let Item::Event(event) = next_item(&mut stream).await {
        let Some(Kind::Message(m)) = event.kind else {
            continue;
        };
        assert_eq!(
            event.seq,
            delivered.len() as u64 + 1,
            "per-user seqs without gaps"
        );
        delivered.push((m.client_message_id, m.seq));
    }
    assert_eq!(
        delivered.len(),
        SENDERS * EACH,
        "every key stored exactly once"
    );
    let seqs: Vec<u64> = delivered.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (1..=(SENDERS * EACH) as u64).collect::<Vec<_>>(),
        "conversation seqs without gaps"
    );
    let stored: std::collections::HashMap<String, u64> = delivered.into_iter().collect();
    for (key, seq) in &acked {
        assert_eq!(
            stored.get(key),
            Some(seq),
            "acknowledged {key} kept its seq"
        );
    }
    child.kill().expect("stop");
    child.wait().expect("reaped");
}
