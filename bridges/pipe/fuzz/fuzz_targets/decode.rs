//! Arbitrary reads into the pipe codec: parsing never panics, only UTF-8 parses, and a
//! request's free-text fields survive the trip through the wire form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosetta_bridge_pipe::codec::{Request, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse(data) else {
        return;
    };
    assert!(std::str::from_utf8(data).is_ok(), "{request:?} from invalid UTF-8");
    // A message rebuilt from its parsed fields parses back to the same request.
    if let Request::SendMessage {
        auth,
        kind,
        to,
        time,
        data,
    } = &request
    {
        let line = format!(
            "send_message|{kind}|{}|{}|{time}|{data}|{}",
            auth.uid.raw, to.raw, auth.token
        );
        if !auth.token.contains('|') && !time.contains('|') {
            assert_eq!(parse(line.as_bytes()).as_ref(), Ok(&request), "{line:?}");
        }
    }
});
