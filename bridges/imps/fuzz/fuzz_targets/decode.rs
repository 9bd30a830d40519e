//! Arbitrary bytes as a client would send them: stream reassembly and message decoding must
//! never panic, and every decoded client message must encode back to a frame that decodes to
//! the same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rosetta_bridge_imps::codec::{ClientMessage, FrameCodec, MAX_FRAME};
use tokio_util::codec::{Decoder as _, Encoder as _};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let frame = match FrameCodec.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        assert!(frame.wire_len() <= MAX_FRAME);
        let Ok(Some(message)) = ClientMessage::decode(&frame) else {
            continue;
        };
        let again = message.encode();
        let mut wire = BytesMut::new();
        if FrameCodec.encode(again, &mut wire).is_err() {
            continue;
        }
        let reframed = FrameCodec
            .decode(&mut wire)
            .expect("own frame decodes")
            .expect("own frame is whole");
        let back = ClientMessage::decode(&reframed)
            .expect("own message decodes")
            .expect("known command");
        // NaN locations compare unequal to themselves; compare the encodings instead.
        assert_eq!(back.encode(), message.encode());
    }
});
