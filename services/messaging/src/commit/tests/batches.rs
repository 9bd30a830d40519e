//! One lane's batches: order, retries, failures, stopping.

use super::*;

/// A batch's sends get consecutive conversation seqs in queue order, and each participant's
/// log gets one event per message, in the same order, with consecutive log seqs.
async fn a_batch_fans_out_in_order(backend: Backend) {
    let world = world(backend).await;
    let keys = ["a", "b", "c", "d", "e", "f"];
    let drafts = keys.iter().map(|key| world.draft(key)).collect();
    let seqs: Vec<i64> = world
        .write_batched(drafts)
        .await
        .into_iter()
        .map(|stored| stored.unwrap().message.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6], "seqs in queue order");
    let expected: Vec<(u64, String)> = (1..).zip(keys.iter().map(|k| (*k).to_string())).collect();
    for user in [world.alice, world.bob] {
        assert_eq!(world.log(user).await, expected, "log of user {user}");
    }
    let row = conversation::Entity::find_by_id(world.conversation.id)
        .one(&world.db)
        .await
        .unwrap()
        .unwrap();
    let newest = message::Entity::find_by_id(row.last_message_id)
        .one(&world.db)
        .await
        .unwrap()
        .expect("last_message_id names a message");
    assert_eq!(
        (row.last_seq, newest.seq),
        (6, 6),
        "the conversation row is current"
    );
    assert_eq!(world.writer.fallbacks(), 0);
}
both_backends!(a_batch_fans_out_in_order);

/// A repeated key inside one batch: the first is written, the repeat answered with its
/// message as a duplicate, and the seqs stay gapless.
async fn a_repeat_inside_a_batch_answers_the_first(backend: Backend) {
    let world = world(backend).await;
    let keys = ["a", "b", "c", "b", "d", "e"];
    let drafts = keys.iter().map(|key| world.draft(key)).collect();
    let outcomes: Vec<Stored> = world
        .write_batched(drafts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let seqs: Vec<(i64, bool)> = outcomes
        .iter()
        .map(|s| (s.message.seq, s.duplicate))
        .collect();
    assert_eq!(
        seqs,
        [
            (1, false),
            (2, false),
            (3, false),
            (2, true),
            (4, false),
            (5, false)
        ]
    );
    assert_eq!(
        outcomes[3].message, outcomes[1].message,
        "the stored message"
    );
    assert_eq!(
        world.events.head(world.bob).await.unwrap(),
        5,
        "one event per message"
    );
}
both_backends!(a_repeat_inside_a_batch_answers_the_first);

/// A retry of a send stored by an earlier batch is answered with the stored message, and the
/// batch's other sends are written with no seq gap.
async fn a_retry_across_batches_answers_the_stored_message(backend: Backend) {
    let world = world(backend).await;
    let first = world.writer.write(world.draft("a")).await.unwrap();
    assert!(!first.duplicate);
    world.writer.write(world.draft("b")).await.unwrap();
    let drafts = ["c", "a", "d", "a"]
        .iter()
        .map(|key| world.draft(key))
        .collect();
    let outcomes: Vec<Stored> = world
        .write_batched(drafts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let seqs: Vec<(i64, bool)> = outcomes
        .iter()
        .map(|s| (s.message.seq, s.duplicate))
        .collect();
    assert_eq!(seqs, [(3, false), (1, true), (4, false), (1, true)]);
    assert_eq!(outcomes[1].message, first.message);
    let texts: Vec<String> = world
        .log(world.bob)
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(
        texts,
        ["a", "b", "c", "d"],
        "stored once each, logs gapless"
    );
    // A retry alone, through the public path.
    let again = world.writer.write(world.draft("b")).await.unwrap();
    assert_eq!((again.message.seq, again.duplicate), (2, true));
    assert_eq!(world.writer.fallbacks(), 0, "retries are no failures");
}
both_backends!(a_retry_across_batches_answers_the_stored_message);

/// A send that cannot be written (its conversation does not exist) fails alone; the others of
/// its batch are written, gapless.
async fn a_bad_send_in_a_batch_fails_alone(backend: Backend) {
    let world = world(backend).await;
    let mut bad = world.draft("bad");
    // Same lane, no such row.
    bad.conversation.id += i64::try_from(LANES).unwrap() * 1_000_000;
    let drafts = vec![world.draft("a"), world.draft("b"), bad, world.draft("c")];
    let outcomes = world.write_batched(drafts).await;
    assert!(outcomes[2].is_err(), "the bad send fails");
    let seqs: Vec<i64> = [0, 1, 3]
        .iter()
        .map(|&i| outcomes[i].as_ref().unwrap().message.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(world.events.head(world.bob).await.unwrap(), 3);
    assert_eq!(
        world.writer.fallbacks(),
        1,
        "one batch written again send by send"
    );
}
both_backends!(a_bad_send_in_a_batch_fails_alone);

/// Stopped while sends wait for the held lane, the writer still writes every send it had
/// accepted, refuses later ones, and its lanes end.
async fn stopping_writes_the_queued_sends_then_ends(backend: Backend) {
    let world = world(backend).await;
    let held = world.hold().await;
    let first = world.enqueue(world.draft("a")).await;
    world.until_queued(0).await;
    let queued = [
        world.enqueue(world.draft("b")).await,
        world.enqueue(world.draft("c")).await,
    ];
    assert_eq!(world.queued(), 2);
    let stopping = {
        let tasks = world.tasks.clone();
        tokio::spawn(async move { tasks.stop("writer", Duration::from_secs(30)).await })
    };
    held.release().await;
    for written in std::iter::once(first).chain(queued) {
        let stored = written.await.expect("answered").expect("written");
        assert!(stored.message.seq > 0);
    }
    assert_eq!(stopping.await.unwrap(), 0, "every lane ended");
    let late = world.writer.write(world.draft("late")).await;
    assert!(late.is_err(), "a send after the stop is refused");
    assert_eq!(world.events.head(world.bob).await.unwrap(), 3);
}
both_backends!(stopping_writes_the_queued_sends_then_ends);

/// Group messages reach every member; private ones the two users.
async fn recipients_follow_the_conversation(backend: Backend) {
    let world = world(backend).await;
    let carol = user(&world.db, "carol").await;
    let gid = group_of(&world.db, &[world.alice, world.bob, carol]).await;
    let group = world
        .conversations
        .get_or_create(&world.db, carol, Target::Group(gid))
        .await
        .unwrap();
    let to_group = draft(group, carol, Target::Group(gid), "to all");
    let stored = world.writer.write(to_group).await.unwrap().message;
    assert_eq!((stored.to_group_id, stored.to_user_id), (Some(gid), None));
    let private = world.writer.write(world.draft("to bob")).await.unwrap();
    assert_eq!(private.message.to_user_id, Some(world.bob));
    assert_eq!(world.log(carol).await, [(1, "to all".to_string())]);
    assert_eq!(world.log(world.bob).await.len(), 2);
}
both_backends!(recipients_follow_the_conversation);

/// A private send's answer comes with the recipient's presence row as the batch read it (no
/// read of its own); a group send's without.
async fn the_batch_reads_the_recipients_presence(backend: Backend) {
    use rosetta_db::entity::messaging::presence;
    use sea_orm::ActiveValue::Set;

    use crate::presence::Liveness;

    let world = world(backend).await;
    let first = world.writer.write(world.draft("never seen")).await.unwrap();
    assert_eq!(first.recipient, Recipient::Read(None));

    let seen_ms = rosetta_db::now_ms();
    presence::Entity::insert(presence::ActiveModel {
        user_id: Set(world.bob),
        status: Set(1),
        last_active_ms: Set(seen_ms),
        announced: Set(0),
        latitude: Set(None),
        longitude: Set(None),
        location_client_time: Set(None),
        location_at_ms: Set(None),
    })
    .exec_without_returning(&world.db)
    .await
    .unwrap();
    let second = world.writer.write(world.draft("present")).await.unwrap();
    let bob = Liveness {
        status: 1,
        last_active_ms: seen_ms,
    };
    assert_eq!(second.recipient, Recipient::Read(Some(bob)));

    let gid = group_of(&world.db, &[world.alice, world.bob]).await;
    let group = world
        .conversations
        .get_or_create(&world.db, world.alice, Target::Group(gid))
        .await
        .unwrap();
    let to_group = draft(group, world.alice, Target::Group(gid), "to all");
    let stored = world.writer.write(to_group).await.unwrap();
    assert_eq!(stored.recipient, Recipient::Unread);
}
both_backends!(the_batch_reads_the_recipients_presence);
