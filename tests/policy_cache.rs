//! Messaging answers who may send where from memory (issue #20), and a change made through
//! the social service binds the very next send: on SQLite and PostgreSQL, under concurrent
//! sends, and when the change is made through another process whose events never arrive.
//!
//! Every change here goes through the social service's RPCs, as clients make them; every
//! send before a change succeeds at least twice, so that the decision is cached when the
//! change comes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rosetta_proto::{
    Reason,
    common::v1::{ConversationRef, conversation_ref::Ref},
    messaging::v1::{
        ListMessagesRequest, MessageKind, SendMessageRequest, SendTypingRequest,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
    },
    social::v1::{
        AddGroupMembersRequest, BlockUserRequest, CreateGroupRequest, DissolveGroupRequest,
        KickMemberRequest, LeaveGroupRequest, MuteMemberRequest, RemoveFriendRequest,
        RespondFriendRequestRequest, SendFriendRequestRequest, UnblockUserRequest,
        respond_friend_request_request::Request as FriendWhich,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends, reason};
use tokio::sync::watch;
use tonic::{Code, Status, transport::Channel};

type Social = SocialServiceClient<Channel>;
type Messaging = MessagingServiceClient<Channel>;

/// A logged-in user.
struct Who {
    id: i64,
    token: String,
}

async fn who(server: &TestServer, name: &str) -> Who {
    let login = server.user(name, "pw").await;
    Who {
        id: login.user.expect("user").id,
        token: login.access_token,
    }
}

/// Sends a text as `from`; the stored message's conversation seq, or the refusal.
async fn send(m: &mut Messaging, from: &Who, to: To) -> Result<u64, Status> {
    let request = SendMessageRequest {
        to: Some(to),
        kind: MessageKind::Text.into(),
        text: "hi".into(),
        client_message_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let sent = m.send_message(authed(request, &from.token)).await?;
    Ok(sent.into_inner().message.expect("the stored message").seq)
}

/// Two sends that must succeed (the second one answered from the cache).
async fn sends(m: &mut Messaging, from: &Who, to: To) {
    for _ in 0..2 {
        send(m, from, to).await.expect("this send is allowed");
    }
}

/// The code and reason of a send that must be refused.
async fn refused(m: &mut Messaging, from: &Who, to: To) -> (Code, Reason) {
    let err = send(m, from, to)
        .await
        .expect_err("this send must be refused");
    (err.code(), reason(&err))
}

const fn denied(reason: Reason) -> (Code, Reason) {
    (Code::PermissionDenied, reason)
}

/// `a` asks, `b` accepts.
async fn befriend(s: &mut Social, a: &Who, b: &Who) {
    let ask = SendFriendRequestRequest {
        to: Some(rosetta_proto::common::v1::UserRef {
            r#ref: Some(rosetta_proto::common::v1::user_ref::Ref::Id(b.id)),
        }),
        note: String::new(),
    };
    s.send_friend_request(authed(ask, &a.token))
        .await
        .expect("friend request");
    let accept = RespondFriendRequestRequest {
        request: Some(FriendWhich::FromUserId(a.id)),
        accept: true,
    };
    s.respond_friend_request(authed(accept, &b.token))
        .await
        .expect("accepted");
}

async fn block(s: &mut Social, by: &Who, whom: &Who) {
    let request = BlockUserRequest { user_id: whom.id };
    s.block_user(authed(request, &by.token))
        .await
        .expect("block");
}

async fn unblock(s: &mut Social, by: &Who, whom: &Who) {
    let request = UnblockUserRequest { user_id: whom.id };
    s.unblock_user(authed(request, &by.token))
        .await
        .expect("unblock");
}

/// A group owned by `owner` with `member` (a friend of the owner's) in it.
async fn group_with(s: &mut Social, owner: &Who, member: &Who) -> i64 {
    let request = CreateGroupRequest {
        name: "team".into(),
        member_ids: vec![member.id],
        ..Default::default()
    };
    let group = s.create_group(authed(request, &owner.token)).await;
    group.expect("group").into_inner().id
}

async fn add(s: &mut Social, owner: &Who, group_id: i64, member: &Who) {
    let request = AddGroupMembersRequest {
        group_id,
        user_ids: vec![member.id],
        friends_only: true,
    };
    let added = s.add_group_members(authed(request, &owner.token)).await;
    assert_eq!(
        added.expect("added").into_inner().added_user_ids,
        [member.id]
    );
}

async fn mute(s: &mut Social, owner: &Who, group_id: i64, member: &Who, until_ms: i64) {
    let request = MuteMemberRequest {
        group_id,
        user_id: member.id,
        until_ms,
    };
    s.mute_member(authed(request, &owner.token))
        .await
        .expect("mute");
}

async fn kick(s: &mut Social, owner: &Who, group_id: i64, member: &Who) {
    let request = KickMemberRequest {
        group_id,
        user_id: member.id,
    };
    s.kick_member(authed(request, &owner.token))
        .await
        .expect("kick");
}

/// Blocks (either way) and unfriending refuse the next private send, and so does a block for
/// typing; unblocking and befriending allow it again at once.
async fn private_changes_bind_the_next_send(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (who(&server, "alice").await, who(&server, "bob").await);
    let mut s = Social::new(server.channel().await);
    let mut m = Messaging::new(server.channel().await);
    let to_bob = To::ToUserId(bob.id);
    assert_eq!(
        refused(&mut m, &alice, to_bob).await,
        denied(Reason::NotFriends)
    );
    befriend(&mut s, &alice, &bob).await;
    sends(&mut m, &alice, to_bob).await;

    block(&mut s, &bob, &alice).await;
    assert_eq!(
        refused(&mut m, &alice, to_bob).await,
        denied(Reason::Blocked)
    );
    let typing = SendTypingRequest {
        conversation: Some(ConversationRef {
            r#ref: Some(Ref::UserId(bob.id)),
        }),
    };
    let err = m
        .send_typing(authed(typing, &alice.token))
        .await
        .expect_err("no typing across a block");
    assert_eq!(reason(&err), Reason::Blocked);
    unblock(&mut s, &bob, &alice).await;
    assert_eq!(
        refused(&mut m, &alice, to_bob).await,
        denied(Reason::NotFriends),
        "the block ended the friendship"
    );
    befriend(&mut s, &alice, &bob).await;
    sends(&mut m, &alice, to_bob).await;

    block(&mut s, &alice, &bob).await;
    assert_eq!(
        refused(&mut m, &alice, to_bob).await,
        denied(Reason::Blocked),
        "the sender's own block"
    );
    unblock(&mut s, &alice, &bob).await;
    befriend(&mut s, &bob, &alice).await;
    sends(&mut m, &alice, to_bob).await;

    let unfriend = RemoveFriendRequest { user_id: alice.id };
    s.remove_friend(authed(unfriend, &bob.token))
        .await
        .expect("unfriend");
    assert_eq!(
        refused(&mut m, &alice, to_bob).await,
        denied(Reason::NotFriends)
    );
    befriend(&mut s, &alice, &bob).await;
    sends(&mut m, &alice, to_bob).await;
    server.stop().await;
}
both_backends!(private_changes, super::private_changes_bind_the_next_send);

/// A retry whose first attempt was stored before a block (its answer lost) still gets the
/// stored message, marked duplicate; a new send is refused.
async fn a_retry_after_a_block_gets_the_stored_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (who(&server, "alice").await, who(&server, "bob").await);
    let mut s = Social::new(server.channel().await);
    let mut m = Messaging::new(server.channel().await);
    befriend(&mut s, &alice, &bob).await;
    let request = SendMessageRequest {
        to: Some(To::ToUserId(bob.id)),
        kind: MessageKind::Text.into(),
        text: "before the block".into(),
        client_message_id: "retried".into(),
        ..Default::default()
    };
    let first = m
        .send_message(authed(request.clone(), &alice.token))
        .await
        .expect("sent")
        .into_inner();
    block(&mut s, &bob, &alice).await;
    let retry = m
        .send_message(authed(request, &alice.token))
        .await
        .expect("a retry of a stored send is answered")
        .into_inner();
    assert!(retry.duplicate, "answered as a retry");
    assert_eq!(retry.message, first.message, "with the stored message");
    assert!(!retry.recipient_online, "no presence across the block");
    assert_eq!(
        refused(&mut m, &alice, To::ToUserId(bob.id)).await,
        denied(Reason::Blocked),
        "a new send is refused"
    );
}
both_backends!(
    retry_after_block,
    super::a_retry_after_a_block_gets_the_stored_message
);

/// A mute, a kick, leaving and dissolution refuse the next group send; unmuting and adding
/// back allow it again at once.
async fn group_changes_bind_the_next_send(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (who(&server, "alice").await, who(&server, "bob").await);
    let mut s = Social::new(server.channel().await);
    let mut m = Messaging::new(server.channel().await);
    befriend(&mut s, &alice, &bob).await;
    let group = group_with(&mut s, &alice, &bob).await;
    let to_group = To::ToGroupId(group);
    sends(&mut m, &bob, to_group).await;

    mute(
        &mut s,
        &alice,
        group,
        &bob,
        rosetta_db::now_ms() + 3_600_000,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(refused(&mut m, &bob, to_group).await, denied(Reason::Muted));
    }
    mute(&mut s, &alice, group, &bob, 0).await;
    sends(&mut m, &bob, to_group).await;

    kick(&mut s, &alice, group, &bob).await;
    assert_eq!(
        refused(&mut m, &bob, to_group).await,
        denied(Reason::NotMember)
    );
    add(&mut s, &alice, group, &bob).await;
    sends(&mut m, &bob, to_group).await;

    let leave = LeaveGroupRequest { group_id: group };
    s.leave_group(authed(leave, &bob.token))
        .await
        .expect("left");
    assert_eq!(
        refused(&mut m, &bob, to_group).await,
        denied(Reason::NotMember)
    );
    add(&mut s, &alice, group, &bob).await;
    sends(&mut m, &bob, to_group).await;

    let dissolve = DissolveGroupRequest { group_id: group };
    s.dissolve_group(authed(dissolve, &alice.token))
        .await
        .expect("dissolved");
    assert_eq!(
        refused(&mut m, &bob, to_group).await,
        (Code::NotFound, Reason::NotFound)
    );
    server.stop().await;
}
both_backends!(group_changes, super::group_changes_bind_the_next_send);

/// Sender tasks racing one block.
const SENDERS: usize = 4;
/// Sends accepted before the block is made, so that it lands among sends in flight.
const BEFORE_BLOCK: usize = 20;
/// Refusals each sender sees after the block returned before it stops.
const REFUSALS_AFTER: usize = 3;

/// Sends until refused `REFUSALS_AFTER` times after `block_returned`; returns the seqs of the
/// accepted sends. A send begun after the block returned must be refused, and once refused, no
/// later send of this task is accepted.
async fn send_until_blocked(
    mut m: Messaging,
    alice: Arc<Who>,
    to: To,
    block_returned: Arc<AtomicBool>,
    accepted: Arc<watch::Sender<usize>>,
) -> Vec<u64> {
    let mut seqs = Vec::new();
    let (mut refusals_after, mut refused_once) = (0, false);
    for _ in 0..100_000 {
        let after = block_returned.load(Ordering::SeqCst);
        match send(&mut m, &alice, to).await {
            Ok(seq) => {
                assert!(!after, "a send begun after the block returned was accepted");
                assert!(!refused_once, "a send was accepted after one was refused");
                seqs.push(seq);
                accepted.send_modify(|count| *count += 1);
            }
            Err(err) => {
                assert_eq!(reason(&err), Reason::Blocked, "{err:?}");
                refused_once = true;
                if after {
                    refusals_after += 1;
                    if refusals_after == REFUSALS_AFTER {
                        return seqs;
                    }
                }
            }
        }
    }
    panic!("the block never took effect");
}

/// Senders keep sending while the recipient blocks them: after the block RPC returns no send
/// is accepted, no sender sees an acceptance after a refusal, and the accepted messages are
/// exactly the conversation's messages: seqs 1..=n, the newest stored one n.
async fn a_block_binds_every_later_send(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (who(&server, "alice").await, who(&server, "bob").await);
    let mut s = Social::new(server.channel().await);
    let m = Messaging::new(server.channel().await);
    befriend(&mut s, &alice, &bob).await;
    let alice = Arc::new(alice);
    let block_returned = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(watch::Sender::new(0));
    let mut counted = accepted.subscribe();
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            tokio::spawn(send_until_blocked(
                m.clone(),
                alice.clone(),
                To::ToUserId(bob.id),
                block_returned.clone(),
                accepted.clone(),
            ))
        })
        .collect();
    tokio::time::timeout(
        Duration::from_secs(30),
        counted.wait_for(|&count| count >= BEFORE_BLOCK),
    )
    .await
    .expect("sends never got going")
    .expect("the senders hold the counter");
    block(&mut s, &bob, &alice).await;
    block_returned.store(true, Ordering::SeqCst);

    let mut seqs = Vec::new();
    for sender in senders {
        seqs.extend(sender.await.expect("sender task"));
    }
    seqs.sort_unstable();
    let n = seqs.len() as u64;
    assert!(n >= BEFORE_BLOCK as u64);
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "accepted seqs are 1..=n");
    // Seqs are gap-free per conversation: a newest seq of n means n messages, the accepted.
    let newest = ListMessagesRequest {
        conversation: Some(ConversationRef {
            r#ref: Some(Ref::UserId(alice.id)),
        }),
        limit: 1,
        ..Default::default()
    };
    let mut reader = Messaging::new(server.channel().await);
    let stored = reader
        .list_messages(authed(newest, &bob.token))
        .await
        .expect("history")
        .into_inner()
        .messages;
    assert_eq!(
        stored.first().map(|m| m.seq),
        Some(n),
        "nothing but the accepted messages is stored"
    );
    server.stop().await;
}
both_backends!(block_race, super::a_block_binds_every_later_send);

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Two processes on one PostgreSQL database, each with NATS but on a bus subject of its own:
/// nothing the first publishes reaches the second, so a refusal by the second can only come
/// from the database. Changes go through the first's social service, sends through the
/// second's messaging service, whose cache is warm when the change comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_process_binds_sends_through_another() {
    let subject = || format!("rosetta.test.{}", uuid::Uuid::new_v4().simple());
    let first = TestServer::start_with(Backend::Postgres, |c| {
        c.nats_url = Some(NATS_URL.into());
        c.messaging.bus_subject = subject();
    })
    .await;
    let (url, dir) = (first.config.database_url(), first.config.data_dir.clone());
    let second = TestServer::start_with(Backend::Postgres, |c| {
        c.nats_url = Some(NATS_URL.into());
        c.messaging.bus_subject = subject();
        c.database_url = Some(url);
        // Same data dir: the same token keys, as a deployment would configure them.
        c.data_dir = dir;
    })
    .await;
    let (alice, bob) = (who(&first, "alice").await, who(&first, "bob").await);
    let mut s = Social::new(first.channel().await);
    let mut m = Messaging::new(second.channel().await);
    let to_bob = To::ToUserId(bob.id);

    befriend(&mut s, &alice, &bob).await;
    sends(&mut m, &alice, to_bob).await;
    block(&mut s, &bob, &alice).await;
    assert_eq!(
        refused(&mut m, &alice, to_bob).await,
        denied(Reason::Blocked)
    );
    unblock(&mut s, &bob, &alice).await;
    befriend(&mut s, &alice, &bob).await;
    sends(&mut m, &alice, to_bob).await;

    let group = group_with(&mut s, &alice, &bob).await;
    let to_group = To::ToGroupId(group);
    sends(&mut m, &bob, to_group).await;
    mute(
        &mut s,
        &alice,
        group,
        &bob,
        rosetta_db::now_ms() + 3_600_000,
    )
    .await;
    assert_eq!(refused(&mut m, &bob, to_group).await, denied(Reason::Muted));
    mute(&mut s, &alice, group, &bob, 0).await;
    sends(&mut m, &bob, to_group).await;
    kick(&mut s, &alice, group, &bob).await;
    assert_eq!(
        refused(&mut m, &bob, to_group).await,
        denied(Reason::NotMember)
    );
    second.stop().await;
    first.stop().await;
}
