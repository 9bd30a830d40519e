//! What idle streams cost: 10,000 open subscriptions of the hub, measured with a counting
//! allocator, against the per-user 1,024-slot broadcast channel they replace. Run with
//! `--nocapture` to see the numbers.

use std::sync::Arc;

use counting::live;
use rosetta_messaging::Hub;
use rosetta_proto::messaging::v1::Event;

mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const USERS: i64 = 10_000;

/// One test, so that no other test allocates while this one counts.
#[test]
fn idle_streams_hold_no_preallocated_buffer() {
    let hub = Arc::new(Hub::default());
    let before = live();
    let subscriptions: Vec<_> = (0..USERS).map(|user| hub.subscribe(user)).collect();
    let per_stream = (live() - before) / USERS as isize;

    let before_broadcast = live();
    let channels: Vec<_> = (0..USERS)
        .map(|_| tokio::sync::broadcast::channel::<Arc<Event>>(1024))
        .collect();
    let per_broadcast = (live() - before_broadcast) / USERS as isize;
    println!(
        "per idle stream: hub {per_stream} B (all {USERS}: {} KiB); a 1,024-slot broadcast \
         channel per user, as before: {per_broadcast} B (all: {} KiB)",
        per_stream * USERS as isize / 1024,
        per_broadcast * USERS as isize / 1024,
    );
    assert!(
        per_stream < 1024,
        "an idle stream costs {per_stream} B, no preallocated buffer"
    );
    drop(channels);

    // And everything goes when the streams close.
    drop(subscriptions);
    assert!(hub.live_users().is_empty());
    assert!(
        live() - before < 64 * 1024,
        "closed streams leave (almost) nothing: {} B",
        live() - before
    );
}
