//! Arbitrary bytes as a WebSocket text frame or HTTP body: decoding never panics, and every
//! reply built from what was decoded is one valid `{"type","payload"}` JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosetta_bridge_cloudchat::codec::{self, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(request) = codec::decode(text) else {
        return;
    };
    // Round trip through the reply builders with decoded, client-controlled strings.
    let (kind, payload) = match &request {
        Request::Login { username, .. } | Request::LoginByToken { username, .. } => (
            "LOGIN_SUCCESS",
            codec::session_user(1, username, "e@x.org", "default.png", username),
        ),
        Request::SendMessage {
            temp_id,
            sender_id,
            receiver_id,
            content,
        } => (
            "MESSAGE_RECEIVED_OTHER",
            codec::message_object(&codec::MessageView {
                id: 1,
                sender_id: *sender_id,
                receiver_id: *receiver_id,
                content: &format!("{temp_id}{content}"),
                sent_at_secs: *sender_id,
                read: false,
                kind: codec::ContentKind::Text,
            }),
        ),
        Request::SearchByName { username } => (
            "SEARCH_FOR_USER_RESULT",
            serde_json::json!({"users": [codec::contact(1, username, username, true)]}),
        ),
        other => (other.kind(), serde_json::json!({})),
    };
    let frame = codec::message(kind, payload.clone());
    let back: serde_json::Value = serde_json::from_str(&frame).expect("replies are JSON");
    assert_eq!(back["type"], kind);
    assert_eq!(back["payload"], payload);
});
