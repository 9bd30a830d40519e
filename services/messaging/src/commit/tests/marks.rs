//! Read marks written by the lanes, with the sends.

use rosetta_db::entity::messaging::read_state;

use super::*;

/// Marks queued between sends ride in the sends' batch and are applied after them: clamped
/// to the conversation's newest message (which the batch moved), the furthest of one user's
/// marks wins, and a sender's own mark (moved by the send) does not go back.
async fn marks_ride_with_the_sends(backend: Backend) {
    let world = world(backend).await;
    let held = world.hold().await;
    let first = world.enqueue(world.draft("a")).await;
    world.until_queued(0).await;
    let sends = [
        world.enqueue(world.draft("b")).await,
        world.enqueue(world.draft("c")).await,
    ];
    let bob_marks = [
        world.enqueue_mark(world.bob, 2).await,
        world.enqueue_mark(world.bob, 99).await,
    ];
    let alice_mark = world.enqueue_mark(world.alice, 1).await;
    assert_eq!(world.queued(), 5, "the sends and marks wait as one batch");
    held.release().await;

    first.await.unwrap().unwrap();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    for mark in bob_marks {
        assert_eq!(mark.await.unwrap().unwrap(), 3, "clamped to the newest");
    }
    assert_eq!(
        alice_mark.await.unwrap().unwrap(),
        3,
        "the sender's mark stays"
    );
    assert_eq!(read_seq(&world, world.bob).await, 3);
    assert_eq!(world.writer.fallbacks(), 0);
}
both_backends!(marks_ride_with_the_sends);

/// A mark never moves back; 0 marks everything; a conversation that does not exist marks
/// nothing.
async fn a_mark_moves_forward_only(backend: Backend) {
    let world = world(backend).await;
    for key in ["a", "b", "c"] {
        world.writer.write(world.draft(key)).await.unwrap();
    }
    let mark = |conversation_id, up_to| Mark {
        conversation_id,
        user: world.bob,
        up_to,
    };
    let id = world.conversation.id;
    assert_eq!(world.writer.mark(mark(id, 2)).await.unwrap(), 2);
    assert_eq!(world.writer.mark(mark(id, 1)).await.unwrap(), 2);
    assert_eq!(read_seq(&world, world.bob).await, 2);
    assert_eq!(world.writer.mark(mark(id, 0)).await.unwrap(), 3);
    assert_eq!(world.writer.mark(mark(id + 1000, 1)).await.unwrap(), 0);
    assert_eq!(read_seq(&world, world.bob).await, 3);
}
both_backends!(a_mark_moves_forward_only);

async fn read_seq(world: &World, user: i64) -> i64 {
    read_state::Entity::find_by_id((world.conversation.id, user))
        .one(&world.db)
        .await
        .unwrap()
        .map_or(0, |row| row.last_read_seq)
}
