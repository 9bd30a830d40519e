//! Arbitrary bytes into the DPC frame decoder and the request parsers of the three servers:
//! they must never panic, and whatever decodes must re-encode to an equal frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosetta_bridge_dpc::codec::{
    AuthRequest, ChatLine, FileRequest, HEADER_LEN, decode_frame, frame, parse_body,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((used, map))) = decode_frame(rest) {
        assert!(used >= HEADER_LEN && used <= rest.len());
        let _ = AuthRequest::parse(&map);
        let _ = ChatLine::parse(&map);
        let _ = FileRequest::parse(&map);
        // Encode → decode round trip: the Python-style writer yields an equal object.
        let value = Value::Object(map);
        let encoded = frame(&value);
        match decode_frame(&encoded) {
            Ok(Some((n, again))) => {
                assert_eq!(n, encoded.len());
                assert_eq!(Value::Object(again), value);
            }
            // Only a body beyond the size limit may fail to come back.
            other => assert!(encoded.len() > HEADER_LEN + rosetta_bridge_dpc::codec::MAX_BODY, "{other:?}"),
        }
        rest = &rest[used..];
    }
    let _ = parse_body(data);
});
