//! Large groups are fanned out on read (issue 20): a message there is one row in `messages`
//! and none in the members' logs, it reaches every live member's stream (in this process and
//! in another, over NATS) through one wake-up per group, a kicked member stops receiving at
//! once, a reopened stream resumes by conversation cursor without loss or repeat, and group
//! creation writes O(members) rows. On SQLite and PostgreSQL (ROSETTA_TEST_POSTGRES_URL,
//! default postgres://postgres@127.0.0.1:5432/postgres) and NATS (ROSETTA_TEST_NATS_URL,
//! default nats://127.0.0.1:4222); these tests fail without them.
//!
//! Groups are created and members kicked through the social service's domain, as clients do
//! through its RPCs, with this crate's event sink: creation then writes what it writes in a
//! node.

mod support;

use std::time::Instant;

use rosetta_proto::messaging::v1::ListMessagesRequest;
use support::*;

/// Groups above this are large in these tests.
const THRESHOLD: usize = 3;

/// One message in a large group writes one `messages` row and no log row (nor log head),
/// while a small group's writes one per member; creation writes one member row and one log
/// row per member; history, listing, unread counts and recall work on large groups.
async fn rows_per_message(backend: Backend) {
    let store = store(backend).await;
    let node = node(&store.url, None, THRESHOLD).await;
    let users = users(&node.db, "rows", 8).await;
    let (owner, large_members, small_members) = (users[0], &users[1..5], &users[5..7]);

    let before = counts(&node.db).await;
    let large = group(&node, owner, large_members).await;
    let created = counts(&node.db).await;
    assert_eq!(
        created.members - before.members,
        5,
        "one member row per member"
    );
    assert_eq!(
        created.events - before.events,
        5,
        "creation: one members_added row per member's log, O(n)"
    );
    let small = group(&node, owner, small_members).await;

    let before = counts(&node.db).await;
    let sent = send(&node, large_members[0], large, "one row").await;
    let after = counts(&node.db).await;
    assert_eq!(after.messages - before.messages, 1, "one message row");
    assert_eq!(
        after.events - before.events,
        0,
        "no log row for a large group's message"
    );
    assert_eq!(after.heads_total, before.heads_total, "no log head moved");

    let before = after;
    send(&node, small_members[0], small, "fanned out").await;
    let after = counts(&node.db).await;
    assert_eq!(
        after.events - before.events,
        3,
        "a small group (3 members) keeps fan-out on write"
    );

    // History, conversations and unread counts read the conversation, not the logs.
    let history = node
        .messaging
        .list_messages(large_members[1], list_request(large))
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1);
    assert_eq!(history.messages[0].id, sent.id);
    let unread = node
        .messaging
        .unread_counts(large_members[1])
        .await
        .unwrap();
    let in_large = unread
        .conversations
        .iter()
        .find(|c| c.id == sent.conversation_id)
        .expect("the large group counts as unread");
    assert_eq!(in_large.unread_count, 1);
    let listed = node
        .messaging
        .list_conversations(large_members[2], None)
        .await
        .unwrap();
    assert!(
        listed
            .conversations
            .iter()
            .any(|c| c.id == sent.conversation_id)
    );
    node.messaging
        .recall(large_members[0], sent.id)
        .await
        .unwrap();
    let history = node
        .messaging
        .list_messages(owner, list_request(large))
        .await
        .unwrap();
    assert!(history.messages[0].recalled);
}

fn list_request(group: i64) -> ListMessagesRequest {
    ListMessagesRequest {
        conversation: Some(rosetta_proto::common::v1::ConversationRef {
            r#ref: Some(rosetta_proto::common::v1::conversation_ref::Ref::GroupId(
                group,
            )),
        }),
        ..Default::default()
    }
}

/// Every live member's stream gets a large group's message once, by conversation seq (event
/// seq 0); a kicked member's stream gets nothing more from that group, at once.
async fn live_members_receive_and_a_kicked_one_stops(backend: Backend) {
    let store = store(backend).await;
    let node = node(&store.url, None, THRESHOLD).await;
    let users = users(&node.db, "live", 7).await;
    let (owner, kicked, removed) = (users[0], users[6], users[5]);
    let g1 = group(&node, owner, &users[1..]).await;
    // A second large group the removed members stay in: its message, sent after the first
    // group's, shows that nothing of the first one was queued for them before it.
    let g2 = group(&node, owner, &users[2..]).await;
    let mut streams = Vec::new();
    for &user in &users {
        streams.push(open(&node, user, Resume::default()).await);
    }

    let first = send(&node, users[1], g1, "to all").await;
    for stream in &mut streams {
        let (seq, got) = next_message(stream).await;
        assert_eq!(
            (seq, got.id),
            (0, first.id),
            "woken by conversation, not log"
        );
        assert_eq!(got.seq, 1);
    }

    kick(&node, owner, g1, kicked).await;
    let second = send(&node, users[1], g1, "after the kick").await;
    for stream in &mut streams[..6] {
        assert_eq!(next_message(stream).await, (0, second.clone()));
    }
    let sentinel = send(&node, users[2], g2, "sentinel").await;
    assert_eq!(
        next_message(&mut streams[6]).await.1.id,
        sentinel.id,
        "the kicked member's stream skipped the message sent after the kick"
    );
    for i in [0, 2, 3, 4, 5] {
        assert_eq!(next_message(&mut streams[i]).await.1.id, sentinel.id);
    }

    // A removal whose event never arrives (a lost wake-up): the membership read before each
    // delivery stops the stream all the same. Five members are left: still large.
    remove_silently(&node, g1, removed).await;
    let third = send(&node, users[1], g1, "after a silent removal").await;
    for stream in &mut streams[..5] {
        assert_eq!(next_message(stream).await, (0, third.clone()));
    }
    let sentinel = send(&node, users[2], g2, "second sentinel").await;
    assert_eq!(
        next_message(&mut streams[5]).await.1.id,
        sentinel.id,
        "removed without an event, skipped all the same"
    );
}

/// Deletes a membership row without any event, as if the removal's wake-up were lost.
async fn remove_silently(node: &Node, group: i64, user: i64) {
    use rosetta_db::entity::social::group_member;
    use sea_orm::EntityTrait as _;
    group_member::Entity::delete_by_id((group, user))
        .exec(&node.db)
        .await
        .unwrap();
}

/// A stream closed and reopened with its resume point (the log seq and the conversation
/// cursors, as the bridge kit keeps them) gets exactly the messages sent meanwhile.
async fn a_reopened_stream_loses_nothing(backend: Backend) {
    let store = store(backend).await;
    let node = node(&store.url, None, THRESHOLD).await;
    let users = users(&node.db, "reopen", 5).await;
    let (owner, me) = (users[0], users[3]);
    let g = group(&node, owner, &users[1..]).await;
    let first = send(&node, users[1], g, "before").await;

    // From the start of the log: the creation event, the message since joining, CaughtUp.
    let mut resume = Resume {
        after_seq: Some(0),
        ..Default::default()
    };
    let mut stream = open(&node, me, resume.clone()).await;
    let replayed: Vec<i64> = stream.replayed_messages().iter().map(|m| m.id).collect();
    assert_eq!(replayed, vec![first.id], "the message sent after joining");
    stream.keep(&mut resume);
    assert_eq!(
        resume.cursors.get(&first.conversation_id),
        Some(&1),
        "CaughtUp carries the cursor"
    );
    let second = send(&node, users[1], g, "live").await;
    let (_, got) = next_message(&mut stream).await;
    assert_eq!(got.id, second.id);
    stream.seen(&got, &mut resume);
    stream.close().await;

    let missed = [
        send(&node, users[1], g, "missed 1").await.id,
        send(&node, users[2], g, "missed 2").await.id,
    ];
    let mut again = open(&node, me, resume.clone()).await;
    let replayed: Vec<i64> = again.replayed_messages().iter().map(|m| m.id).collect();
    assert_eq!(
        replayed, missed,
        "exactly what was sent meanwhile, in order"
    );
    let third = send(&node, users[1], g, "live again").await;
    assert_eq!(next_message(&mut again).await.1.id, third.id);

    // Without cursors the group resumes after the read mark (none here), since joining.
    let fresh = open(
        &node,
        me,
        Resume {
            after_seq: resume.after_seq,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fresh.replayed_messages().len(), 5);
}

/// A group that was large while the stream was away and is small again when it comes back:
/// the messages of its large time are in no log, and still come back by cursor, once.
async fn a_group_that_shrank_while_away_resumes_by_cursor(backend: Backend) {
    let store = store(backend).await;
    let node = node(&store.url, None, THRESHOLD).await;
    let users = users(&node.db, "shrink", 6).await;
    let (owner, me) = (users[0], users[1]);
    let g = group(&node, owner, &users[1..]).await;
    let first = send(&node, users[2], g, "seen").await;
    let mut resume = Resume {
        after_seq: Some(0),
        ..Default::default()
    };
    let stream = open(&node, me, resume.clone()).await;
    stream.keep(&mut resume);
    assert_eq!(resume.cursors.get(&first.conversation_id), Some(&1));
    stream.close().await;

    let large = send(&node, users[2], g, "while large").await;
    for gone in &users[3..] {
        kick(&node, owner, g, *gone).await;
    }
    let small = send(&node, users[2], g, "small again").await;
    let before = counts(&node.db).await;
    send(&node, users[2], g, "probe").await;
    assert_eq!(
        counts(&node.db).await.events - before.events,
        3,
        "three members left: fanned out on write again"
    );

    let again = open(&node, me, resume).await;
    let replayed: Vec<i64> = again.replayed_messages().iter().map(|m| m.id).collect();
    assert_eq!(replayed[..2], [large.id, small.id], "in order, once each");
    assert_eq!(replayed.len(), 3, "and the probe");
}

/// Two processes sharing the database and a NATS bus: every member gets the message in
/// either process, each process receives ONE bus message for it however many of the group's
/// members stream there, and a member kicked through the other process stops receiving.
async fn across_processes(backend: Backend) {
    let store = store(backend).await;
    let prefix = prefix();
    let here = node(&store.url, Some(&prefix), THRESHOLD).await;
    let there = node(&store.url, Some(&prefix), THRESHOLD).await;
    let users = users(&here.db, "split", 5).await;
    let (owner, kicked) = (users[0], users[4]);
    let g1 = group(&here, owner, &users[1..]).await;
    let g2 = group(&here, owner, &users[2..]).await;
    // Owner and users[1] stream here; users[2..5] there.
    let mut streams = Vec::new();
    for (i, &user) in users.iter().enumerate() {
        let at = if i < 2 { &here } else { &there };
        streams.push(open(at, user, Resume::default()).await);
    }

    let received = there.nats.as_ref().unwrap().received();
    let first = send(&here, users[1], g1, "everywhere").await;
    for stream in &mut streams {
        assert_eq!(next_message(stream).await.1.id, first.id);
    }
    assert_eq!(
        there.nats.as_ref().unwrap().received() - received,
        1,
        "one bus message for three members streaming there"
    );

    kick(&here, owner, g1, kicked).await;
    let second = send(&here, users[1], g1, "after the kick").await;
    for stream in &mut streams[..4] {
        assert_eq!(next_message(stream).await.1.id, second.id);
    }
    let sentinel = send(&here, users[2], g2, "sentinel").await;
    assert_eq!(
        next_message(&mut streams[4]).await.1.id,
        sentinel.id,
        "kicked elsewhere, skipped here"
    );
}

rosetta_messaging_both_backends!(rows_per_message_large_vs_small, crate::rows_per_message);
rosetta_messaging_both_backends!(
    live_delivery_and_kick,
    crate::live_members_receive_and_a_kicked_one_stops
);
rosetta_messaging_both_backends!(reopen_without_loss, crate::a_reopened_stream_loses_nothing);
rosetta_messaging_both_backends!(two_processes_over_nats, crate::across_processes);
rosetta_messaging_both_backends!(
    shrank_while_away,
    crate::a_group_that_shrank_while_away_resumes_by_cursor
);

/// The target size on SQLite with the default threshold: creating the group writes O(n)
/// rows, one message writes one row and reaches all 2,000 live members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2000_member_group_on_sqlite() {
    let store = store(Backend::Sqlite).await;
    let node = node(
        &store.url,
        None,
        rosetta_messaging::DEFAULT_GROUP_FANOUT_MAX_MEMBERS,
    )
    .await;
    let users = users(&node.db, "big", 2000).await;
    let before = counts(&node.db).await;
    let g = group(&node, users[0], &users[1..]).await;
    let created = counts(&node.db).await;
    assert_eq!(created.members - before.members, 2000);
    assert_eq!(created.events - before.events, 2000, "creation: O(n) rows");

    let mut streams = Vec::with_capacity(users.len());
    for &user in &users {
        streams.push(open(&node, user, Resume::default()).await);
    }
    let before = counts(&node.db).await;
    let started = Instant::now();
    let sent = send(&node, users[7], g, "to 2,000").await;
    let written = started.elapsed();
    let after = counts(&node.db).await;
    assert_eq!(after.messages - before.messages, 1);
    assert_eq!(after.events - before.events, 0, "O(1) rows per message");
    for stream in &mut streams {
        assert_eq!(next_message(stream).await.1.id, sent.id);
    }
    println!(
        "2,000-member group on SQLite: send {written:?}, delivered to all {} streams in {:?}",
        streams.len(),
        started.elapsed()
    );
}

/// Measurement for BENCHMARKS.md ("Large groups"), not a check: per-send time and rows
/// written in a group of `ROSETTA_GROUP_MEMBERS` (default 2,000) members, all streaming,
/// fanned out on read (default threshold) and on write (threshold 0), on SQLite and (with
/// `ROSETTA_BENCH_POSTGRES=1`) PostgreSQL. Run:
/// `cargo test --release -p rosetta-messaging --test large_groups -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn measure_group_sends() {
    let members: usize = std::env::var("ROSETTA_GROUP_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let sends: usize = 100;
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("ROSETTA_BENCH_POSTGRES").is_ok_and(|v| v == "1") {
        backends.push(Backend::Postgres);
    }
    println!(
        "| backend | members | fan-out | rows per send | ms per send (sequential) | ms to reach all streams |"
    );
    println!("|---|---|---|---|---|---|");
    for backend in backends {
        for threshold in [rosetta_messaging::DEFAULT_GROUP_FANOUT_MAX_MEMBERS, 0] {
            let store = store(backend).await;
            let node = node(&store.url, None, threshold).await;
            let users = users(&node.db, "m", members).await;
            let g = group(&node, users[0], &users[1..]).await;
            let mut streams = Vec::with_capacity(users.len());
            for &user in &users {
                streams.push(open(&node, user, Resume::default()).await);
            }
            let before = counts(&node.db).await;
            let started = Instant::now();
            let mut reach = std::time::Duration::ZERO;
            for i in 0..sends {
                let at = Instant::now();
                let sent = send(&node, users[1 + i % (members - 1)], g, &format!("m{i}")).await;
                // Every stream drained before the next send: the time until the last member
                // has it.
                for stream in &mut streams {
                    assert_eq!(next_message(stream).await.1.id, sent.id);
                }
                reach += at.elapsed();
            }
            let elapsed = started.elapsed();
            let after = counts(&node.db).await;
            let rows = (after.events - before.events) + (after.messages - before.messages);
            let sends_i = i64::try_from(sends).unwrap();
            // Send time alone, without streams: a second run of sends, nothing drained.
            drop(streams);
            let at = Instant::now();
            for i in 0..sends {
                send(&node, users[1 + i % (members - 1)], g, &format!("q{i}")).await;
            }
            let alone = at.elapsed();
            println!(
                "| {backend:?} | {members} | {} | {} | {:.2} | {:.2} |",
                if threshold == 0 {
                    "on write"
                } else {
                    "on read"
                },
                rows / sends_i,
                alone.as_secs_f64() * 1000.0 / sends as f64,
                reach.as_secs_f64() * 1000.0 / sends as f64,
            );
            let _ = elapsed;
        }
    }
}
