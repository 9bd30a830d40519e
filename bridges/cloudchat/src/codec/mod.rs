//! Messages of the CloudChat protocol (cloudchat.md §2–§8): `{"type": NAME, "payload": {…}}`,
//! compact JSON, keys in the real server's order. Ids are integers, but numbers sent as strings
//! are accepted (the real server's scanner did). Timestamps are C `ctime()` text, trailing
//! newline included.

mod replies;
mod request;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use replies::*;
pub use request::*;

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
    account_request(name, map)
        .or_else(|| contact_request(name, map))
        .or_else(|| chat_request(name, map))
        .unwrap_or_else(|| Err(DecodeError::UnknownType(name.chars().take(64).collect())))
}

/// The payload of a request type this protocol has, read as that type.
fn payload<'a>(
    name: &str,
    kinds: &[&'static str],
    map: &'a Map<String, Value>,
) -> Option<Payload<'a>> {
    let kind = kinds.iter().copied().find(|kind| *kind == name)?;
    Some(Payload { kind, map })
}

/// Logins, registration and the profile (cloudchat.md §3.1, §3.4).
fn account_request(name: &str, map: &Map<String, Value>) -> Option<Result<Request, DecodeError>> {
    const KINDS: &[&str] = &[
        "LOGIN",
        "LOGIN_BY_TOKEN",
        "REGISTER",
        "UPDATE_PROFILE",
        "LOGOUT",
        "HDL_INFO",
    ];
    let p = payload(name, KINDS, map)?;
    let read = || {
        Ok(match p.kind {
            "LOGIN" => Request::Login {
                username: p.text("username")?,
                password: p.text("password")?,
            },
            "LOGIN_BY_TOKEN" => Request::LoginByToken {
                username: p.text("username")?,
                token: p.text("token")?,
            },
            "REGISTER" => Request::Register {
                username: p.text("username")?,
                password: p.text("password")?,
                email: p.text("email")?,
            },
            "UPDATE_PROFILE" => Request::UpdateProfile {
                user_id: p.id(&["userId"])?,
                username: p.optional("username"),
                email: p.optional("email"),
                avatar: p.optional("avatar"),
            },
            "LOGOUT" => Request::Logout {
                user_id: p.id(&["userId"])?,
            },
            _ => Request::HdlInfo {
                user_id: p.id(&["userId"])?,
            },
        })
    };
    Some(read())
}

/// Contacts, searches and friend requests (cloudchat.md §3.2).
fn contact_request(name: &str, map: &Map<String, Value>) -> Option<Result<Request, DecodeError>> {
    const KINDS: &[&str] = &[
        "LOAD_CONTACTS",
        "SEARCH_FOR_USER_BY_ID",
        "SEARCH_FOR_USER_BY_NAME",
        "LOAD_FRIEND_REQUEST",
        "ADD_FRIEND_REQUEST",
        "ACCEPT_FRIEND_REQUEST",
        "REFUSE_FRIEND_REQUEST",
        "DELETE_CONTACT",
        "ADD_CONTACT",
    ];
    let p = payload(name, KINDS, map)?;
    let read = || {
        Ok(match p.kind {
            "LOAD_CONTACTS" => Request::LoadContacts {
                user_id: p.id(&["userId"])?,
            },
            "SEARCH_FOR_USER_BY_ID" => Request::SearchById {
                user_id: p.id(&["userId"])?,
            },
            "SEARCH_FOR_USER_BY_NAME" => Request::SearchByName {
                username: p.text("username")?,
            },
            "LOAD_FRIEND_REQUEST" => Request::LoadFriendRequests {
                user_id: p.id(&["userId"])?,
            },
            "ADD_FRIEND_REQUEST" => Request::AddFriendRequest(NewFriendRequest {
                requester_id: p.id(&["requesterId"])?,
                target_id: p.id(&["targetId"])?,
            }),
            "ACCEPT_FRIEND_REQUEST" => Request::AcceptFriendRequest { id: p.id(&["id"])? },
            "REFUSE_FRIEND_REQUEST" => Request::RefuseFriendRequest { id: p.id(&["id"])? },
            "DELETE_CONTACT" => Request::DeleteContact {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            },
            _ => Request::AddContact {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            },
        })
    };
    Some(read())
}

/// Messages and files (cloudchat.md §3.3).
fn chat_request(name: &str, map: &Map<String, Value>) -> Option<Result<Request, DecodeError>> {
    const KINDS: &[&str] = &[
        "LOAD_MESSAGES",
        "SEND_MESSAGE",
        "MARK_READ",
        "CLEAR_MESSAGES",
        "SEND_FILE",
        "SEND_IMAGE",
        "UPLOAD_FILE",
    ];
    let p = payload(name, KINDS, map)?;
    let read = || {
        Ok(match p.kind {
            "LOAD_MESSAGES" => Request::LoadMessages {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            },
            "SEND_MESSAGE" => Request::SendMessage {
                temp_id: p.text("tempId")?,
                sender_id: p.id(&["senderId"])?,
                receiver_id: p.id(&["receiverId"])?,
                content: p.text("content")?,
            },
            "MARK_READ" => Request::MarkRead {
                user_id: p.id(&["userId"])?,
                target_id: p.id(&["targetId"])?,
            },
            "CLEAR_MESSAGES" => Request::ClearMessages {
                user_id: p.id(&["requesterUserId", "userId"])?,
                target_id: p.id(&["targetUserId", "targetId"])?,
            },
            "UPLOAD_FILE" => Request::UploadFile {
                path: p.text("filePath")?,
                data: p.text("dataStream")?,
            },
            _ => send_file(&p)?,
        })
    };
    Some(read())
}

/// SEND_FILE / SEND_IMAGE: the same fields under the kind's own key names.
fn send_file(p: &Payload<'_>) -> Result<Request, DecodeError> {
    let image = p.kind == "SEND_IMAGE";
    let (name_key, content_key) = if image {
        ("imageName", "imageContent")
    } else {
        ("fileName", "fileContent")
    };
    Ok(Request::SendFile {
        temp_id: p
            .optional("tempId")
            .or_else(|| p.optional("messageId"))
            .unwrap_or_default(),
        sender_id: p.id(&["senderId"])?,
        receiver_id: p.id(&["receiverId"])?,
        name: p.text(name_key)?,
        content: p.text(content_key)?,
        image,
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
