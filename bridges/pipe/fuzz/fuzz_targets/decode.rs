//! Arbitrary reads into the pipe codec: cutting a read into commands loses no byte but the
//! separators, each command is parsed once and the same as on its own, the reader examines
//! O(n) bytes, parsing never panics, only UTF-8 parses, and a request's free-text fields
//! survive the trip through the wire form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosetta_bridge_pipe::codec::{Request, parse, split};

/// Bytes the reader may examine per byte of input (the unit tests' bound).
const LINEAR: usize = 12;

fuzz_target!(|data: &[u8]| {
    let split = split(data);
    assert!(split.examined <= LINEAR * data.len() + 64, "{} examined", split.examined);
    let pieces = split.pieces;
    let kept: usize = pieces.iter().map(|p| p.bytes.len()).sum();
    let separators = data.len() - kept;
    assert!(
        data.iter().filter(|b| matches!(b, b'\r' | b'\n' | b'\0')).count() >= separators,
        "{pieces:?} from {data:?}"
    );
    for piece in &pieces[..pieces.len() - 1] {
        assert!(parse(piece.bytes).is_ok(), "a cut leaves a whole command: {piece:?}");
    }
    for piece in &pieces {
        assert_eq!(piece.parsed, parse(piece.bytes), "parsed once, the same");
    }
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
