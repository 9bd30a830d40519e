//! Frames of the OurChat protocol (ourchat.md §3–§6): one JSON object per WebSocket text frame,
//! dispatched on the integer `code`.
//!
//! Input is lenient where the real client (54660bbd) and the seed document disagree: `account`
//! or `email`/`ocid`, integer or string `login_type`, optional `time` and `name`. Output carries
//! the key the client reads (`status`) and the document's name for it (`state`), an integer
//! `code`, and `ocid` as a string.

use serde_json::{Map, Value, json};

/// Largest frame accepted (real frames are well under 1 KiB).
pub const MAX_FRAME: usize = 64 * 1024;

pub mod code {
    pub const TEXT: i64 = 0;
    pub const REGISTER: i64 = 4;
    pub const REGISTER_RESPONSE: i64 = 5;
    pub const LOGIN: i64 = 6;
    pub const LOGIN_RESPONSE: i64 = 7;
    pub const NEW_SESSION: i64 = 8;
    pub const NEW_SESSION_RESPONSE: i64 = 9;
    pub const ACCOUNT_INFO: i64 = 10;
    pub const ACCOUNT_INFO_RESPONSE: i64 = 11;
    pub const SERVER_STATUS: i64 = 12;
    pub const GENERATE_VERIFY: i64 = 14;
    pub const VERIFY_STATUS: i64 = 15;
    pub const UNREGISTER: i64 = 16;
    pub const UNREGISTER_RESPONSE: i64 = 17;
    pub const ERROR: i64 = 18;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge,
    /// Not a JSON object, or no integer `code`.
    NotAFrame,
    /// A known code with a missing or mistyped field.
    BadField {
        code: i64,
        field: &'static str,
    },
    /// A code the protocol does not define for clients.
    UnknownCode(i64),
}

/// How a login names the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginType {
    Email,
    Ocid,
}

/// Where a text message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A private chat with the user of this ocid (`private_id`).
    User(String),
    /// A group / session (`group_id` or the later doc's `session_id`).
    Group(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    ServerStatus,
    /// Ask for an e-mail verification code; the real client sends no address.
    GenerateVerify {
        email: Option<String>,
    },
    Register {
        email: String,
        password: String,
        name: Option<String>,
        /// The code from a [`Request::GenerateVerify`] that named the address.
        code: Option<String>,
    },
    Login {
        login_type: LoginType,
        account: String,
        password: String,
        /// The client reads pushes: it sent the document's form (with `time`, which the real
        /// client never sends) or asked with `"push": true`.
        pushes: bool,
    },
    Text {
        target: Target,
        msg: String,
    },
    NewSession {
        members: Vec<String>,
    },
    AccountInfo {
        ocid: String,
        fields: Vec<String>,
    },
    Unregister,
}

/// Parses one text frame.
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    if text.len() > MAX_FRAME {
        return Err(DecodeError::TooLarge);
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Err(DecodeError::NotAFrame);
    };
    let code = map
        .get("code")
        .and_then(Value::as_i64)
        .ok_or(DecodeError::NotAFrame)?;
    let bad = |field| DecodeError::BadField { code, field };
    let string = |key: &'static str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(match code {
        code::SERVER_STATUS => Request::ServerStatus,
        code::GENERATE_VERIFY => Request::GenerateVerify {
            email: string("email"),
        },
        code::REGISTER => Request::Register {
            email: string("email").ok_or_else(|| bad("email"))?,
            password: string("password").ok_or_else(|| bad("password"))?,
            name: string("name"),
            code: string("verify_code").or_else(|| string("verification_code")),
        },
        code::LOGIN => login_request(&map, bad)?,
        code::TEXT => text_message(&map, bad)?,
        code::NEW_SESSION => {
            let members = map
                .get("members")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("members"))?;
            Request::NewSession {
                members: members
                    .iter()
                    .map(|m| id_text(m).ok_or_else(|| bad("members")))
                    .collect::<Result<_, _>>()?,
            }
        }
        code::ACCOUNT_INFO => Request::AccountInfo {
            ocid: map
                .get("ocid")
                .and_then(id_text)
                .ok_or_else(|| bad("ocid"))?,
            fields: map
                .get("request_values")
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        },
        code::UNREGISTER => Request::Unregister,
        other => return Err(DecodeError::UnknownCode(other)),
    })
}

/// LOGIN (6) in either form: `account` with an integer `login_type` (client), or
/// `email`/`ocid` with a string one (06cff08e); `time` or `"push": true` asks for pushes.
fn login_request(
    map: &Map<String, Value>,
    bad: impl Fn(&'static str) -> DecodeError,
) -> Result<Request, DecodeError> {
    let string = |key: &'static str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    let login_type = match map.get("login_type") {
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Some(LoginType::Email),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Some(LoginType::Ocid),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("email") => Some(LoginType::Email),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ocid") => Some(LoginType::Ocid),
        Some(_) => return Err(bad("login_type")),
        None => None,
    };
    let account = string("account")
        .or_else(|| string("email"))
        .or_else(|| string("ocid"))
        .ok_or_else(|| bad("account"))?;
    // Without a type, the client's own rule: an '@' means e-mail.
    let login_type = login_type.unwrap_or(if account.contains('@') {
        LoginType::Email
    } else {
        LoginType::Ocid
    });
    Ok(Request::Login {
        login_type,
        account,
        password: string("password").ok_or_else(|| bad("password"))?,
        pushes: map.contains_key("time") || map.get("push").and_then(Value::as_bool) == Some(true),
    })
}

/// TEXT (0): to `private_id` (an ocid), else to `group_id` or `session_id`.
fn text_message(
    map: &Map<String, Value>,
    bad: impl Fn(&'static str) -> DecodeError,
) -> Result<Request, DecodeError> {
    let sender = map
        .get("sender")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("sender"))?;
    let target = if let Some(peer) = sender.get("private_id").and_then(id_text) {
        Target::User(peer)
    } else if let Some(group) = sender
        .get("group_id")
        .or_else(|| sender.get("session_id"))
        .and_then(Value::as_i64)
    {
        Target::Group(group)
    } else {
        return Err(bad("sender"));
    };
    Ok(Request::Text {
        target,
        msg: map
            .get("msg")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad("msg"))?,
    })
}

impl Request {
    /// The command name used for spans and counters.
    pub fn command(&self) -> &'static str {
        match self {
            Request::ServerStatus => "server_status",
            Request::GenerateVerify { .. } => "generate_verify",
            Request::Register { .. } => "register",
            Request::Login { .. } => "login",
            Request::Text { .. } => "text",
            Request::NewSession { .. } => "new_session",
            Request::AccountInfo { .. } => "account_info",
            Request::Unregister => "unregister",
        }
    }
}

/// Codes only the seed document's clients send (the real client never does): a connection
/// that uses one reads pushes.
pub fn is_document_only(code: i64) -> bool {
    matches!(
        code,
        code::TEXT | code::NEW_SESSION | code::ACCOUNT_INFO | code::UNREGISTER
    )
}

/// An ocid is a string; the document types it as a number, so accept both.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn with_status(code: i64, status: i64) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("code".into(), code.into());
    map.insert("status".into(), status.into());
    map.insert("state".into(), status.into());
    map
}

/// SERVER_STATUS's status while the server is in maintenance.
pub const MAINTENANCE: i64 = 1;

/// `{"code":12,"status":0}`: 0 running, 1 maintenance.
pub fn server_status(status: i64) -> String {
    Value::Object(with_status(code::SERVER_STATUS, status)).to_string()
}

/// `{"code":15,"status":n}`: 0 verified (the client then registers), 1 error, 2 timeout.
pub fn verify_status(status: i64) -> String {
    Value::Object(with_status(code::VERIFY_STATUS, status)).to_string()
}

/// Register (5) and login (7) replies: 0 success (with the ocid), 1/2 failures.
pub fn account_reply(code: i64, status: i64, ocid: Option<&str>) -> String {
    let mut map = with_status(code, status);
    if let Some(ocid) = ocid {
        map.insert("ocid".into(), ocid.into());
    }
    Value::Object(map).to_string()
}

/// New-session reply in both document forms: `success` (seed) and `status` + `session_id`.
pub fn new_session(session_id: Option<i64>, time: i64, failure: &str) -> String {
    let mut map = with_status(code::NEW_SESSION_RESPONSE, i64::from(session_id.is_none()));
    map.insert("time".into(), time.into());
    map.insert("success".into(), session_id.is_some().into());
    match session_id {
        Some(id) => map.insert("session_id".into(), id.into()),
        None => map.insert("msg".into(), failure.into()),
    };
    Value::Object(map).to_string()
}

/// Account info (11) with the requested fields.
pub fn account_info(time: i64, data: Map<String, Value>) -> String {
    json!({"code": code::ACCOUNT_INFO_RESPONSE, "time": time, "data": data}).to_string()
}

/// A text message pushed to a recipient.
pub fn text_push(time: i64, msg_id: i64, from_ocid: &str, target: &Target, msg: &str) -> String {
    let mut sender = Map::new();
    sender.insert("ocid".into(), from_ocid.into());
    match target {
        Target::User(peer) => sender.insert("private_id".into(), peer.clone().into()),
        Target::Group(group) => {
            sender.insert("session_id".into(), (*group).into());
            sender.insert("group_id".into(), (*group).into())
        }
    };
    json!({"code": code::TEXT, "time": time, "cid": msg_id, "msg_id": msg_id, "sender": sender, "msg": msg}).to_string()
}

/// `{"code":17,"status":n}`.
pub fn unregister_reply(status: i64) -> String {
    Value::Object(with_status(code::UNREGISTER_RESPONSE, status)).to_string()
}

/// `{"code":18,"details":…}`; only for connections that asked for pushes (the real client
/// aborts on codes it does not expect).
pub fn error(details: &str) -> String {
    json!({"code": code::ERROR, "details": details}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_exchange_of_the_notes() {
        assert_eq!(decode(r#"{"code": 12}"#), Ok(Request::ServerStatus));
        let status: Value = serde_json::from_str(&server_status(0)).unwrap();
        assert_eq!(
            (status["code"].as_i64(), status["status"].as_i64()),
            (Some(12), Some(0))
        );
        assert_eq!(
            decode(r#"{"code": 14}"#),
            Ok(Request::GenerateVerify { email: None })
        );
        let hash = "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92";
        assert_eq!(
            decode(&format!(
                r#"{{"code": 4, "email": "alice@example.com", "password": "{hash}"}}"#
            )),
            Ok(Request::Register {
                email: "alice@example.com".into(),
                password: hash.into(),
                name: None,
                code: None
            })
        );
        let reply: Value = serde_json::from_str(&account_reply(
            code::REGISTER_RESPONSE,
            0,
            Some("aB3dE5gH7j"),
        ))
        .unwrap();
        assert_eq!(reply["ocid"], "aB3dE5gH7j");
        assert_eq!(reply["status"], 0);
        assert_eq!(reply["state"], 0);
        assert_eq!(
            decode(&format!(
                r#"{{"code": 6, "login_type": 1, "account": "aB3dE5gH7j", "password": "{hash}"}}"#
            )),
            Ok(Request::Login {
                login_type: LoginType::Ocid,
                account: "aB3dE5gH7j".into(),
                password: hash.into(),
                pushes: false
            })
        );
        let failed: Value =
            serde_json::from_str(&account_reply(code::LOGIN_RESPONSE, 1, None)).unwrap();
        assert!(failed.get("ocid").is_none());
    }

    #[test]
    fn document_forms_are_accepted() {
        let login = decode(r#"{"code": 6, "time": 114514, "login_type": "Email", "email": "a@b.c", "password": "x"}"#).unwrap();
        assert_eq!(
            login,
            Request::Login {
                login_type: LoginType::Email,
                account: "a@b.c".into(),
                password: "x".into(),
                pushes: true
            }
        );
        let text = decode(r#"{"code": 0, "time": 1, "sender": {"ocid": "aB3dE5gH7j", "private_id": "Zx9Yw8Vu7T"}, "msg": "hi"}"#).unwrap();
        assert_eq!(
            text,
            Request::Text {
                target: Target::User("Zx9Yw8Vu7T".into()),
                msg: "hi".into()
            }
        );
        let group =
            decode(r#"{"code": 0, "sender": {"ocid": 5, "session_id": 7}, "msg": "yo"}"#).unwrap();
        assert_eq!(
            group,
            Request::Text {
                target: Target::Group(7),
                msg: "yo".into()
            }
        );
        let session = decode(r#"{"code": 8, "members": ["aB3dE5gH7j", 12]}"#).unwrap();
        assert_eq!(
            session,
            Request::NewSession {
                members: vec!["aB3dE5gH7j".into(), "12".into()]
            }
        );
    }

    /// Pseudo-random texts with quotes, escapes, control and non-ASCII characters.
    fn texts() -> impl Iterator<Item = String> {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', ' ', '"', '\\', '\n', '\u{0}', '\u{1f}', 'é', '中', '😀', '|', '{', '}',
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..500).map(move |i| {
            (0..i % 40)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ALPHABET[(seed >> 33) as usize % ALPHABET.len()]
                })
                .collect()
        })
    }

    #[test]
    fn pushed_text_decodes_back() {
        for (i, text) in texts().enumerate() {
            let target = if i % 2 == 0 {
                Target::User(text.chars().rev().collect())
            } else {
                Target::Group(i as i64 * 7_919 - 1_000)
            };
            let pushed = text_push(1_722_441_600, i as i64, "aB3dE5gH7j", &target, &text);
            assert_eq!(
                decode(&pushed),
                Ok(Request::Text { target, msg: text }),
                "{pushed}"
            );
        }
    }

    #[test]
    fn replies_carry_integer_code_and_both_status_keys() {
        for status in 0..3 {
            for frame in [
                server_status(status),
                verify_status(status),
                account_reply(code::REGISTER_RESPONSE, status, None),
                unregister_reply(status),
            ] {
                let value: Value = serde_json::from_str(&frame).unwrap();
                assert!(value["code"].is_i64(), "{frame}");
                assert_eq!(value["status"], status, "{frame}");
                assert_eq!(value["state"], status, "{frame}");
            }
        }
        let created: Value = serde_json::from_str(&new_session(Some(3), 1, "")).unwrap();
        assert_eq!(
            (
                &created["status"],
                &created["success"],
                &created["session_id"]
            ),
            (&json!(0), &json!(true), &json!(3))
        );
        let failed: Value = serde_json::from_str(&new_session(None, 1, "why")).unwrap();
        assert_eq!(
            (&failed["status"], &failed["success"], &failed["msg"]),
            (&json!(1), &json!(false), &json!("why"))
        );
    }

    #[test]
    fn register_takes_a_verification_code() {
        assert_eq!(
            decode(
                r#"{"code": 4, "time": 1, "email": "a@b.c", "password": "p", "name": "A", "verify_code": "123456"}"#
            ),
            Ok(Request::Register {
                email: "a@b.c".into(),
                password: "p".into(),
                name: Some("A".into()),
                code: Some("123456".into())
            })
        );
        assert_eq!(
            decode(r#"{"code": 14, "email": "a@b.c"}"#),
            Ok(Request::GenerateVerify {
                email: Some("a@b.c".into())
            })
        );
        let login =
            decode(r#"{"code": 6, "account": "aB3dE5gH7j", "password": "p", "push": true}"#);
        assert_eq!(
            login,
            Ok(Request::Login {
                login_type: LoginType::Ocid,
                account: "aB3dE5gH7j".into(),
                password: "p".into(),
                pushes: true
            })
        );
    }

    #[test]
    fn malformed_frames_are_refused() {
        assert_eq!(decode("not json"), Err(DecodeError::NotAFrame));
        assert_eq!(decode("[1,2]"), Err(DecodeError::NotAFrame));
        assert_eq!(decode(r#"{"code": "12"}"#), Err(DecodeError::NotAFrame));
        assert_eq!(decode(r#"{"code": 99}"#), Err(DecodeError::UnknownCode(99)));
        assert_eq!(
            decode(r#"{"code": 6, "login_type": [], "account": "a", "password": "b"}"#),
            Err(DecodeError::BadField {
                code: 6,
                field: "login_type"
            })
        );
        assert_eq!(
            decode(r#"{"code": 4, "email": 5, "password": "b"}"#),
            Err(DecodeError::BadField {
                code: 4,
                field: "email"
            })
        );
        assert_eq!(
            decode(&" ".repeat(MAX_FRAME + 1)),
            Err(DecodeError::TooLarge)
        );
    }
}
