//! What an idle stream's outbox costs: 10,000 outboxes, measured with a counting allocator,
//! against the channel of unboxed items they replace (whose first block of 32 slots was about
//! 15 KiB per stream). Run with `--nocapture` to see the numbers.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
};

use rosetta_messaging::{Outgoing, outbox};

/// Bytes currently allocated by the whole test process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const STREAMS: isize = 10_000;
/// The capacity the gRPC Subscribe handler gives a stream's outbox.
const CAPACITY: usize = 256;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

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
