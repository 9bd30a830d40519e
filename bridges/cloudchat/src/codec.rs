//! Messages of the CloudChat protocol (cloudchat.md §2–§8): `{"type": NAME, "payload": {…}}`,
//! compact JSON, keys in the real server's order. Ids are integers, but numbers sent as strings
//! are accepted (the real server's scanner did). Timestamps are C `ctime()` text, trailing
//! newline included.

use chrono::{DateTime, Local};
use serde_json::{Map, Value, json};

/// Largest message accepted.
pub const MAX_MESSAGE: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge,
    /// Not `{"type": string, "payload": object}`.
    NotAMessage,
    /// The type is not one this protocol has; the real server sent no reply.
    UnknownType(String),
    BadField {
        kind: &'static str,
        field: &'static str,
    },
}

/// A friend request as the client builds it (names and avatars are the client's claim and
/// are not trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFriendRequest {
    pub requester_id: i64,
    pub target_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Login {
        username: String,
        password: String,
    },
    LoginByToken {
        username: String,
        token: String,
    },
    Register {
        username: String,
        password: String,
        email: String,
    },
    UpdateProfile {
        user_id: i64,
        username: Option<String>,
        email: Option<String>,
        avatar: Option<String>,
    },
    Logout {
        user_id: i64,
    },
    LoadContacts {
        user_id: i64,
    },
    SearchById {
        user_id: i64,
    },
    SearchByName {
        username: String,
    },
    LoadFriendRequests {
        user_id: i64,
    },
    AddFriendRequest(NewFriendRequest),
    AcceptFriendRequest {
        id: i64,
    },
    RefuseFriendRequest {
        id: i64,
    },
    DeleteContact {
        user_id: i64,
        target_id: i64,
    },
    AddContact {
        user_id: i64,
        target_id: i64,
    },
    LoadMessages {
        user_id: i64,
        target_id: i64,
    },
    SendMessage {
        temp_id: String,
        sender_id: i64,
        receiver_id: i64,
        content: String,
    },
    MarkRead {
        user_id: i64,
        target_id: i64,
    },
    ClearMessages {
        user_id: i64,
        target_id: i64,
    },
    /// SEND_FILE / SEND_IMAGE: the content is inline text (base64 in practice).
    SendFile {
        temp_id: String,
        sender_id: i64,
        receiver_id: i64,
        name: String,
        content: String,
        image: bool,
    },
    UploadFile {
        path: String,
        data: String,
    },
    HdlInfo {
        user_id: i64,
    },
}

impl Request {
    /// The user the payload says is acting (the real server trusted it; the bridge checks it
    /// against the logged-in user and uses it to find an HTTP client's session).
    pub fn actor(&self) -> Option<i64> {
        match self {
            Request::UpdateProfile { user_id, .. }
            | Request::Logout { user_id }
            | Request::LoadContacts { user_id }
            | Request::LoadFriendRequests { user_id }
            | Request::DeleteContact { user_id, .. }
            | Request::AddContact { user_id, .. }
            | Request::LoadMessages { user_id, .. }
            | Request::MarkRead { user_id, .. }
            | Request::ClearMessages { user_id, .. }
            | Request::HdlInfo { user_id } => Some(*user_id),
            Request::AddFriendRequest(fr) => Some(fr.requester_id),
            Request::SendMessage { sender_id, .. } | Request::SendFile { sender_id, .. } => {
                Some(*sender_id)
            }
            Request::Login { .. }
            | Request::LoginByToken { .. }
            | Request::Register { .. }
            | Request::SearchById { .. }
            | Request::SearchByName { .. }
            | Request::AcceptFriendRequest { .. }
            | Request::RefuseFriendRequest { .. }
            | Request::UploadFile { .. } => None,
        }
    }

    /// The type name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Login { .. } => "LOGIN",
            Request::LoginByToken { .. } => "LOGIN_BY_TOKEN",
            Request::Register { .. } => "REGISTER",
            Request::UpdateProfile { .. } => "UPDATE_PROFILE",
            Request::Logout { .. } => "LOGOUT",
            Request::LoadContacts { .. } => "LOAD_CONTACTS",
            Request::SearchById { .. } => "SEARCH_FOR_USER_BY_ID",
            Request::SearchByName { .. } => "SEARCH_FOR_USER_BY_NAME",
            Request::LoadFriendRequests { .. } => "LOAD_FRIEND_REQUEST",
            Request::AddFriendRequest(_) => "ADD_FRIEND_REQUEST",
            Request::AcceptFriendRequest { .. } => "ACCEPT_FRIEND_REQUEST",
            Request::RefuseFriendRequest { .. } => "REFUSE_FRIEND_REQUEST",
            Request::DeleteContact { .. } => "DELETE_CONTACT",
            Request::AddContact { .. } => "ADD_CONTACT",
            Request::LoadMessages { .. } => "LOAD_MESSAGES",
            Request::SendMessage { .. } => "SEND_MESSAGE",
            Request::MarkRead { .. } => "MARK_READ",
            Request::ClearMessages { .. } => "CLEAR_MESSAGES",
            Request::SendFile { image: false, .. } => "SEND_FILE",
            Request::SendFile { image: true, .. } => "SEND_IMAGE",
            Request::UploadFile { .. } => "UPLOAD_FILE",
            Request::HdlInfo { .. } => "HDL_INFO",
        }
    }
}

struct Payload<'a> {
    kind: &'static str,
    map: &'a Map<String, Value>,
}

impl Payload<'_> {
    fn bad(&self, field: &'static str) -> DecodeError {
        DecodeError::BadField {
            kind: self.kind,
            field,
        }
    }

    fn id(&self, keys: &[&'static str]) -> Result<i64, DecodeError> {
        for key in keys {
            match self.map.get(*key) {
                Some(Value::Number(n)) => return n.as_i64().ok_or_else(|| self.bad(key)),
                Some(Value::String(s)) => return s.trim().parse().map_err(|_| self.bad(key)),
                _ => {}
            }
        }
        Err(self.bad(keys[0]))
    }

    fn text(&self, key: &'static str) -> Result<String, DecodeError> {
        self.map
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.bad(key))
    }

    fn optional(&self, key: &'static str) -> Option<String> {
        self.map.get(key).and_then(Value::as_str).map(str::to_owned)
    }
}

/// Parses one message.
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    if text.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLarge);
    }
    let Ok(Value::Object(outer)) = serde_json::from_str::<Value>(text) else {
        return Err(DecodeError::NotAMessage);
    };
    let Some(name) = outer.get("type").and_then(Value::as_str) else {
        return Err(DecodeError::NotAMessage);
    };
    let empty = Map::new();
    let map = match outer.get("payload") {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(DecodeError::NotAMessage),
    };
    macro_rules! p {
        ($kind:literal) => {
            Payload { kind: $kind, map }
        };
    }
    Ok(match name {
        "LOGIN" => {
            let p = p!("LOGIN");
            Request::Login {
                username: p.text("username")?,
                password: p.text("password")?,
            }
        }
        "LOGIN_BY_TOKEN" => {
            let p = p!("LOGIN_BY_TOKEN");
            Request::LoginByToken {
                username: p.text("username")?,
                token: p.text("token")?,
            }
        }
        "REGISTER" => {
            let p = p!("REGISTER");
            Request::Register {
                username: p.text("username")?,
                password: p.text("password")?,
                email: p.text("email")?,
            }
        }
        "UPDATE_PROFILE" => {
            let p = p!("UPDATE_PROFILE");
            Request::UpdateProfile {
                user_id: p.id(&["userId"])?,
                username: p.optional("username"),
                email: p.optional("email"),
                avatar: p.optional("avatar"),
            }
        }
        "LOGOUT" => Request::Logout {
            user_id: p!("LOGOUT").id(&["userId"])?,
        },
        "LOAD_CONTACTS" => Request::LoadContacts {
            user_id: p!("LOAD_CONTACTS").id(&["userId"])?,
        },
        "SEARCH_FOR_USER_BY_ID" => Request::SearchById {
            user_id: p!("SEARCH_FOR_USER_BY_ID").id(&["userId"])?,
        },
        "SEARCH_FOR_USER_BY_NAME" => Request::SearchByName {
            username: p!("SEARCH_FOR_USER_BY_NAME").text("username")?,
        },
        "LOAD_FRIEND_REQUEST" => Request::LoadFriendRequests {
            user_id: p!("LOAD_FRIEND_REQUEST").id(&["userId"])?,
        },
        "ADD_FRIEND_REQUEST" => {
            let p = p!("ADD_FRIEND_REQUEST");
            Request::AddFriendRequest(NewFriendRequest {
                requester_id: p.id(&["requesterId"])?,
                target_id: p.id(&["targetId"])?,
            })
        }
        "ACCEPT_FRIEND_REQUEST" => Request::AcceptFriendRequest {
            id: p!("ACCEPT_FRIEND_REQUEST").id(&["id"])?,
        },
        "REFUSE_FRIEND_REQUEST" => Request::RefuseFriendRequest {
            id: p!("REFUSE_FRIEND_REQUEST").id(&["id"])?,
        },
        "DELETE_CONTACT" => {
            let p = p!("DELETE_CONTACT");
            Request::DeleteContact {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            }
        }
        "ADD_CONTACT" => {
            let p = p!("ADD_CONTACT");
            Request::AddContact {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            }
        }
        "LOAD_MESSAGES" => {
            let p = p!("LOAD_MESSAGES");
            Request::LoadMessages {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            }
        }
        "SEND_MESSAGE" => {
            let p = p!("SEND_MESSAGE");
            Request::SendMessage {
                temp_id: p.text("tempId")?,
                sender_id: p.id(&["senderId"])?,
                receiver_id: p.id(&["receiverId"])?,
                content: p.text("content")?,
            }
        }
        "MARK_READ" => {
            let p = p!("MARK_READ");
            Request::MarkRead {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            }
        }
        "CLEAR_MESSAGES" => {
            let p = p!("CLEAR_MESSAGES");
            Request::ClearMessages {
                user_id: p.id(&["requesterUserId", "userId"])?,
                target_id: p.id(&["targetUserId", "targetId"])?,
            }
        }
        "SEND_FILE" | "SEND_IMAGE" => {
            let image = name == "SEND_IMAGE";
            let p = Payload {
                kind: if image { "SEND_IMAGE" } else { "SEND_FILE" },
                map,
            };
            let (name_key, content_key) = if image {
                ("imageName", "imageContent")
            } else {
                ("fileName", "fileContent")
            };
            Request::SendFile {
                temp_id: p
                    .optional("tempId")
                    .or_else(|| p.optional("messageId"))
                    .unwrap_or_default(),
                sender_id: p.id(&["senderId"])?,
                receiver_id: p.id(&["receiverId"])?,
                name: p.text(name_key)?,
                content: p.text(content_key)?,
                image,
            }
        }
        "UPLOAD_FILE" => {
            let p = p!("UPLOAD_FILE");
            Request::UploadFile {
                path: p.text("filePath")?,
                data: p.text("dataStream")?,
            }
        }
        "HDL_INFO" => Request::HdlInfo {
            user_id: p!("HDL_INFO").id(&["userId"])?,
        },
        other => return Err(DecodeError::UnknownType(other.chars().take(64).collect())),
    })
}

/// The failure reply of a request type, where the protocol has one (LOGOUT, MARK_READ,
/// LOAD_MESSAGES, CLEAR_MESSAGES, SEARCH_* and HDL_INFO have none).
pub fn failure_kind(request_kind: &str) -> Option<&'static str> {
    Some(match request_kind {
        "LOGIN" | "LOGIN_BY_TOKEN" => "LOGIN_FAILURE",
        "REGISTER" => "REGISTER_FAILURE",
        "UPDATE_PROFILE" => "PROFILE_UPDATED_FAILED",
        "LOAD_CONTACTS" => "CONTACTS_LOADED_FAILED",
        "LOAD_FRIEND_REQUEST" => "FRIEND_REQUEST_LOADED_FAILED",
        "ADD_FRIEND_REQUEST" | "ADD_CONTACT" => "FRIEND_REQUEST_ADDED_FAILED",
        "ACCEPT_FRIEND_REQUEST" => "FRIEND_REQUEST_ACCEPTED_FAILED",
        "REFUSE_FRIEND_REQUEST" => "FRIEND_REQUEST_REFUSED_FAILED",
        "DELETE_CONTACT" => "CONTACT_DELETED_FAILED",
        "SEND_MESSAGE" | "SEND_FILE" | "SEND_IMAGE" => "MESSAGE_SEND_FAILED",
        "UPLOAD_FILE" => "FILE_UPLOADED_FAILED",
        _ => return None,
    })
}

/// The `tempId` (SEND_FILE / SEND_IMAGE: or `messageId`) of a message that did not decode, so
/// that its MESSAGE_SEND_FAILED still names the send the client is waiting for; a number is
/// echoed as its digits. Empty when there is none.
pub fn temp_id_of(text: &str) -> String {
    let Ok(Value::Object(outer)) = serde_json::from_str::<Value>(text) else {
        return String::new();
    };
    let Some(Value::Object(payload)) = outer.get("payload") else {
        return String::new();
    };
    ["tempId", "messageId"]
        .iter()
        .find_map(|key| match payload.get(*key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// `{"type": kind, "payload": payload}` as compact JSON.
pub fn message(kind: &str, payload: Value) -> String {
    json!({"type": kind, "payload": payload}).to_string()
}

/// The `{"error": text}` payload of every failure reply.
pub fn failure(kind: &str, error: &str) -> String {
    message(kind, json!({"error": error}))
}

/// A user as LOGIN_SUCCESS / REGISTER_SUCCESS carry it.
pub fn session_user(user_id: i64, username: &str, email: &str, avatar: &str, token: &str) -> Value {
    json!({"userId": user_id, "username": username, "email": email, "avatar": avatar, "token": token})
}

/// A contact entry of CONTACTS_LOADED and SEARCH_FOR_USER_RESULT, as the real server sent it.
pub fn contact(user_id: i64, username: &str, avatar: &str, online: bool) -> Value {
    json!({"contactId": user_id, "username": username, "avatar": avatar, "online": online})
}

/// The CONTACT_ADDED payload: both `contactId` (HarmonyOS reads it) and `userId` (the Angular
/// client reads it, and the real server never sent it).
pub fn contact_added(user_id: i64, username: &str, avatar: &str, online: bool) -> Value {
    json!({"contactId": user_id, "userId": user_id, "username": username, "avatar": avatar, "online": online})
}

/// Friend-request states on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    Accepted,
    Refused,
}

impl RequestStatus {
    fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Accepted => "accepted",
            RequestStatus::Refused => "refused",
        }
    }
}

/// A friend request object `FR`, in the real server's key order.
pub struct FriendRequestView<'a> {
    pub id: i64,
    pub requester_id: i64,
    pub target_id: i64,
    pub requester_username: &'a str,
    pub target_username: &'a str,
    pub requester_avatar: &'a str,
    pub target_avatar: &'a str,
    pub status: RequestStatus,
}

pub fn friend_request(fr: &FriendRequestView<'_>) -> Value {
    json!({
        "id": fr.id,
        "requesterId": fr.requester_id,
        "targetId": fr.target_id,
        "requesterUsername": fr.requester_username,
        "targetUsername": fr.target_username,
        "requesterAvatar": fr.requester_avatar,
        "targetAvatar": fr.target_avatar,
        "status": fr.status.as_str(),
    })
}

/// Kinds of message content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Text,
    Image,
    File,
}

/// A message object `M`, in the real server's key order.
pub struct MessageView<'a> {
    pub id: i64,
    pub sender_id: i64,
    pub receiver_id: i64,
    pub content: &'a str,
    pub sent_at_secs: i64,
    pub read: bool,
    pub kind: ContentKind,
}

pub fn message_object(m: &MessageView<'_>) -> Value {
    let kind = match m.kind {
        ContentKind::Text => "text",
        ContentKind::Image => "image",
        ContentKind::File => "file",
    };
    json!({
        "id": m.id,
        "senderId": m.sender_id,
        "receiverId": m.receiver_id,
        "content": m.content,
        "timestamp": ctime(m.sent_at_secs),
        "status": if m.read { "read" } else { "sent" },
        "type": kind,
    })
}

/// C `ctime()` of a Unix time in the server's local zone: `"Sun Jan  4 09:05:01 2026\n"`.
pub fn ctime(unix_secs: i64) -> String {
    let local: DateTime<Local> = DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .with_timezone(&Local);
    local.format("%a %b %e %H:%M:%S %Y\n").to_string()
}

#[cfg(test)]
mod tests {
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
}
