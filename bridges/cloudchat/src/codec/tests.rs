use serde_json::{Value, json};

use super::*;

#[test]
fn example_session_requests() {
    assert_eq!(
        decode(
            r#"{"type":"REGISTER","payload":{"username":"alice","password":"secret1","email":"alice@example.com"}}"#
        ),
        Ok(Request::Register {
            username: "alice".into(),
            password: "secret1".into(),
            email: "alice@example.com".into()
        })
    );
    assert_eq!(
        decode(
            r#"{"type":"LOGIN_BY_TOKEN","payload":{"token":"Qw8&zL%4mN!pR2s","username":"bob"}}"#
        ),
        Ok(Request::LoginByToken {
            username: "bob".into(),
            token: "Qw8&zL%4mN!pR2s".into()
        })
    );
    let add = r#"{"type":"ADD_FRIEND_REQUEST","payload":{"id":-1,"requesterId":1,"requesterUsername":"alice","requesterAvatar":"default.png","targetId":2,"targetUsername":"bob","targetAvatar":"default.png","status":"pending"}}"#;
    assert_eq!(
        decode(add),
        Ok(Request::AddFriendRequest(NewFriendRequest {
            requester_id: 1,
            target_id: 2
        }))
    );
    let send = r#"{"type":"SEND_MESSAGE","payload":{"tempId":"ae8ca08a-a6de-493a-b18c-20781f5930fd","senderId":1,"receiverId":2,"content":"hi","type":"text"}}"#;
    assert!(
        matches!(decode(send), Ok(Request::SendMessage { receiver_id: 2, ref content, .. }) if content == "hi")
    );
    assert_eq!(
        decode(r#"{"type":"MARK_READ","payload":{"userId":"2","targetId":1}}"#),
        Ok(Request::MarkRead {
            user_id: 2,
            target_id: 1
        })
    );
    assert_eq!(
        decode(r#"{"type":"CLEAR_MESSAGES","payload":{"requesterUserId":1,"targetUserId":2}}"#),
        Ok(Request::ClearMessages {
            user_id: 1,
            target_id: 2
        })
    );
}

#[test]
fn example_session_replies() {
    assert_eq!(
        message(
            "LOGIN_SUCCESS",
            session_user(
                2,
                "bob",
                "bob@example.com",
                "default.png",
                "e>7Yu$1Kd@c9Vb^Tq"
            )
        ),
        r#"{"type":"LOGIN_SUCCESS","payload":{"userId":2,"username":"bob","email":"bob@example.com","avatar":"default.png","token":"e>7Yu$1Kd@c9Vb^Tq"}}"#
    );
    assert_eq!(
        failure("LOGIN_FAILURE", "密码错误"),
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"密码错误"}}"#
    );
    let fr = FriendRequestView {
        id: 1,
        requester_id: 1,
        target_id: 2,
        requester_username: "alice",
        target_username: "bob",
        requester_avatar: "default.png",
        target_avatar: "default.png",
        status: RequestStatus::Pending,
    };
    assert_eq!(
        message("FRIEND_REQUEST_ADDED", friend_request(&fr)),
        r#"{"type":"FRIEND_REQUEST_ADDED","payload":{"id":1,"requesterId":1,"targetId":2,"requesterUsername":"alice","targetUsername":"bob","requesterAvatar":"default.png","targetAvatar":"default.png","status":"pending"}}"#
    );
    assert_eq!(
        message(
            "CONTACT_ADDED",
            contact_added(1, "alice", "default.png", true)
        ),
        r#"{"type":"CONTACT_ADDED","payload":{"contactId":1,"userId":1,"username":"alice","avatar":"default.png","online":true}}"#
    );
    let m = MessageView {
        id: 1,
        sender_id: 1,
        receiver_id: 2,
        content: "hi",
        sent_at_secs: 0,
        read: true,
        kind: ContentKind::Text,
    };
    let value = message_object(&m);
    let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "id",
            "senderId",
            "receiverId",
            "content",
            "timestamp",
            "status",
            "type"
        ]
    );
    assert_eq!(value["status"], "read");
    assert_eq!(
        message(
            "SEARCH_FOR_USER_RESULT",
            json!({"users": [contact(2, "bob", "default.png", true)]})
        ),
        r#"{"type":"SEARCH_FOR_USER_RESULT","payload":{"users":[{"contactId":2,"username":"bob","avatar":"default.png","online":true}]}}"#
    );
}

#[test]
fn ctime_shape() {
    let text = ctime(1_768_134_896);
    assert_eq!(text.len(), 25, "{text:?}");
    assert!(text.ends_with('\n'));
    // Day of month is space-padded to two characters, as ctime() does.
    let day = &text[8..10];
    assert!(
        day.starts_with(' ') || day.chars().all(|c| c.is_ascii_digit()),
        "{text:?}"
    );
}

#[test]
fn ctime_out_of_range_falls_back_to_the_epoch() {
    for secs in [i64::MIN, i64::MAX, -1] {
        let text = ctime(secs);
        assert_eq!(text.len(), 25, "{secs}: {text:?}");
    }
}

#[test]
fn replies_escape_any_client_text() {
    // Tokens may hold '"' and '\'; names and contents any Unicode, control characters too
    // (which the original server sent raw, breaking the JSON).
    for text in ["k3#\"q!\\x9", "line\nbreak\u{1}\u{7f}", "你好 😀", ""] {
        let frame = message("LOGIN_SUCCESS", session_user(1, text, text, text, text));
        let back: Value = serde_json::from_str(&frame).expect("valid JSON");
        assert_eq!(back["payload"]["token"], text);
        let request = format!(
            r#"{{"type":"LOGIN_BY_TOKEN","payload":{{"token":{},"username":"a"}}}}"#,
            Value::from(text)
        );
        assert_eq!(
            decode(&request),
            Ok(Request::LoginByToken {
                username: "a".into(),
                token: text.into()
            })
        );
    }
}

#[test]
fn malformed_messages_are_refused() {
    assert_eq!(decode("{"), Err(DecodeError::NotAMessage));
    assert_eq!(decode(r#"{"payload":{}}"#), Err(DecodeError::NotAMessage));
    assert_eq!(
        decode(r#"{"type":"NOPE","payload":{}}"#),
        Err(DecodeError::UnknownType("NOPE".into()))
    );
    assert_eq!(
        decode(r#"{"type":"LOGIN","payload":{"username":"a"}}"#),
        Err(DecodeError::BadField {
            kind: "LOGIN",
            field: "password"
        })
    );
    assert_eq!(
        decode(r#"{"type":"MARK_READ","payload":{"userId":"x","targetId":1}}"#),
        Err(DecodeError::BadField {
            kind: "MARK_READ",
            field: "userId"
        })
    );
    assert_eq!(
        decode(r#"{"type":"LOGIN","payload":[1]}"#),
        Err(DecodeError::NotAMessage)
    );
}
