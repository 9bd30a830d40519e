//! Every reply and push of the CloudChat protocol, keys in the real server's order.

use chrono::{DateTime, Local};
use serde_json::{Value, json};

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
