//! What an idle stream's outbox costs: 10,000 outboxes, measured with a counting allocator,
//! against the channel of unboxed items they replace (whose first block of 32 slots was about
//! 15 KiB per stream). Run with `--nocapture` to see the numbers.

use counting::live;
use rosetta_messaging::{Outgoing, outbox};

mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const STREAMS: isize = 10_000;
/// The capacity the gRPC Subscribe handler gives a stream's outbox.
const CAPACITY: usize = 256;

/// One test, so that no other test allocates while this one counts.
#[test]
fn an_idle_outbox_holds_no_block_of_unboxed_items() {
    let before = live();
    let boxes: Vec<_> = (0..STREAMS).map(|_| outbox(CAPACITY)).collect();
    let per_outbox = (live() - before) / STREAMS;

    let before_plain = live();
    let plain: Vec<_> = (0..STREAMS)
        .map(|_| tokio::sync::mpsc::channel::<Outgoing>(CAPACITY))
        .collect();
    let per_plain = (live() - before_plain) / STREAMS;
    println!("per idle stream: outbox {per_outbox} B; a channel of unboxed items: {per_plain} B");
    assert!(
        per_outbox < 1024,
        "an idle outbox costs {per_outbox} B, no block of unboxed items"
    );
    drop((boxes, plain));
}
