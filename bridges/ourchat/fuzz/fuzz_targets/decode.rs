//! Arbitrary bytes as one text frame: decoding never panics, and a text message the bridge
//! pushes decodes back to the same target and text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosetta_bridge_ourchat::codec::{self, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Request::Text { target, msg }) = codec::decode(text) {
        let pushed = codec::text_push(1_722_441_600, 42, "aB3dE5gH7j", &target, &msg);
        // The decoder refuses frames over MAX_FRAME, pushes included.
        if pushed.len() > codec::MAX_FRAME {
            return;
        }
        assert_eq!(
            codec::decode(&pushed),
            Ok(Request::Text { target, msg }),
            "round trip of {pushed}"
        );
    }
});
