//! PostgreSQL: concurrent senders over overlapping conversations through several lanes.

use std::collections::BTreeMap;

use rosetta_db::entity::messaging::user_event;
use sea_orm::{ColumnTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _};

use super::*;

/// 32 tasks send into the private chats of six users and a group of all of them, through
/// two writers (as two processes would: the same conversation in two lanes at once) of four
/// lanes each, spreading by conversation whatever the load (batches span several
/// conversations and share users' log heads): no deadlock
/// (no batch fails and falls back), every conversation's seqs are 1..n and every log is
/// gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lanes_keep_every_sequence_gapless() {
    let world = world_with(Backend::Postgres, Writer::spread).await;
    let mut users = vec![world.alice, world.bob];
    for name in ["carol", "dave", "erin", "frank"] {
        users.push(user(&world.db, name).await);
    }
    let gid = group_of(&world.db, &users).await;
    // A second process's writer: its own pool, lanes and task group.
    let other_db = rosetta_db::connect(&world.url).await.unwrap();
    let other_bus: Arc<dyn Bus> = Arc::new(LocalBus::default());
    let other_events = Arc::new(Events::new(other_db.clone(), other_bus));
    let other_tasks = Tasks::new();
    let other = Arc::new(
        Writer::new(
            &other_db,
            other_events,
            Arc::new(Policy::new(other_db.clone())),
            LANES,
            crate::config::DEFAULT_GROUP_FANOUT_MAX_MEMBERS,
            &other_tasks,
        )
        .spread(),
    );
    const TASKS: usize = 32;
    const EACH: usize = 20;
    let sends = (0..TASKS).map(|task| {
        let writer = if task % 2 == 0 {
            world.writer.clone()
        } else {
            other.clone()
        };
        let (users, db) = (users.clone(), world.db.clone());
        let cache = &world.conversations;
        async move {
            let me = users[task % users.len()];
            let mut stored = Vec::new();
            for i in 0..EACH {
                // Cycle over every peer and the group, from a task-dependent start.
                let pick = (task * 7 + i) % users.len();
                let target = match users[pick] {
                    peer if peer == me => Target::Group(gid),
                    peer => Target::User(peer),
                };
                let conversation = cache.get_or_create(&db, me, target).await.unwrap();
                let key = format!("{task}-{i}");
                let written = writer.write(draft(conversation, me, target, &key)).await;
                stored.push(written.expect("every send is written"));
            }
            stored
        }
    });
    let all = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(sends))
        .await
        .expect("no deadlock: every send answered");
    let stored: Vec<Stored> = all.into_iter().flatten().collect();
    assert_eq!(stored.len(), TASKS * EACH);
    assert!(stored.iter().all(|s| !s.duplicate));
    let fallbacks = world.writer.fallbacks() + other.fallbacks();
    assert_eq!(fallbacks, 0, "no batch failed (e.g. deadlocked)");

    let mut by_conversation = BTreeMap::<i64, Vec<i64>>::new();
    for s in &stored {
        by_conversation
            .entry(s.message.conversation_id)
            .or_default()
            .push(s.message.seq);
    }
    for (id, mut seqs) in by_conversation {
        seqs.sort_unstable();
        let n = i64::try_from(seqs.len()).unwrap();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "conversation {id}");
        let row = conversation::Entity::find_by_id(id)
            .one(&world.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.last_seq, n, "conversation {id}'s counter");
    }
    for &user in &users {
        let seqs: Vec<i64> = user_event::Entity::find()
            .select_only()
            .column(user_event::Column::Seq)
            .filter(user_event::Column::UserId.eq(user))
            .order_by_asc(user_event::Column::Seq)
            .into_tuple()
            .all(&world.db)
            .await
            .unwrap();
        let n = i64::try_from(seqs.len()).unwrap();
        assert!(n > 0);
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "log of user {user}");
    }
}

/// A light load goes to one lane, whose batches then hold whatever arrived while it wrote,
/// instead of each job starting a transaction in an idle lane; from `ONE_LANE_BELOW` jobs in
/// the writer on, each conversation has its own lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_load_goes_to_one_lane() {
    let world = world(Backend::Postgres).await;
    let (writer, lanes) = (&world.writer, &world.writer.lanes);
    assert_eq!(lanes.len(), LANES);
    let lane_of = |conversation: i64| {
        (0..LANES)
            .find(|&i| writer.lane_for(conversation).same_channel(&lanes[i]))
            .unwrap()
    };
    let conversations = [1, 2, 3, 6, 7];
    let held: Vec<Load> = (1..ONE_LANE_BELOW)
        .map(|_| Load::count(&writer.in_flight))
        .collect();
    let light: Vec<usize> = conversations.iter().map(|&c| lane_of(c)).collect();
    assert_eq!(
        light,
        [0, 0, 0, 0, 0],
        "one job short of the bound: one lane"
    );
    let _one_more = Load::count(&writer.in_flight);
    let heavy: Vec<usize> = conversations.iter().map(|&c| lane_of(c)).collect();
    assert_eq!(heavy, [1, 2, 3, 2, 3], "at the bound: by conversation");
    drop(held);
    assert_eq!(lane_of(7), 0, "light again");
}
