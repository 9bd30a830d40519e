//! A minimal OurChat client (JSON over WebSocket), written from the protocol notes and the
//! bridge's README: the document form of login (with `"time"`, which turns pushes on), text
//! (code 0) to a friend by ocid, pushes of code 0 naming the sender by ocid. Text has no
//! acknowledgement; failures come back as ErrorMsg (code 18) on a push connection.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::bail;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::ws;

pub const TEXT: i64 = 0;
pub const LOGIN: i64 = 6;
pub const LOGIN_RESPONSE: i64 = 7;
pub const ERROR: i64 = 18;

const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The password as the client sends it: lowercase hex SHA-256 of its ASCII text.
pub fn password_hash(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.as_bytes()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Login by ocid (`login_type` 1) in the document's form: `time` asks for pushes.
pub fn login_frame(ocid: &str, hash: &str, time: u64) -> Value {
    json!({"code": LOGIN, "login_type": 1, "account": ocid, "password": hash, "time": time})
}

/// A private text to `peer` (an ocid).
pub fn text_frame(me: &str, peer: &str, msg: &str, time: u64) -> Value {
    json!({"code": TEXT, "time": time, "sender": {"ocid": me, "private_id": peer}, "msg": msg})
}

/// An incoming text (code 0).
#[derive(Debug, PartialEq, Eq)]
pub struct Push {
    pub from: String,
    pub msg: String,
}

pub fn parse_push(value: &Value) -> Option<Push> {
    if value.get("code")?.as_i64()? != TEXT {
        return None;
    }
    Some(Push {
        from: value.get("sender")?.get("ocid")?.as_str()?.to_owned(),
        msg: value.get("msg")?.as_str()?.to_owned(),
    })
}

/// A logged-in OurChat connection.
pub struct Conn {
    ws: ws::Conn,
    pub ocid: String,
}

impl Conn {
    /// Connects, logs in by ocid with pushes on, and routes texts to `on_push`.
    pub async fn login(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        ocid: &str,
        password: &str,
        on_push: Arc<dyn Fn(Push) + Send + Sync>,
    ) -> anyhow::Result<Conn> {
        let mut ws = ws::Conn::open(addr, source, move |value| match parse_push(&value) {
            Some(push) => {
                on_push(push);
                None
            }
            None => Some(value),
        })
        .await?;
        ws.send(&login_frame(ocid, &password_hash(password), now_secs()))
            .await?;
        let reply = ws.reply(REPLY_TIMEOUT).await?;
        match (
            reply.get("code").and_then(Value::as_i64),
            reply.get("status").and_then(Value::as_i64),
        ) {
            (Some(LOGIN_RESPONSE), Some(0)) => Ok(Conn {
                ws,
                ocid: ocid.to_owned(),
            }),
            _ => bail!("OurChat login of {ocid} refused: {reply}"),
        }
    }

    /// Sends a text to `peer`; the protocol acknowledges nothing.
    pub async fn send(&mut self, peer: &str, msg: &str) -> anyhow::Result<()> {
        let frame = text_frame(&self.ocid, peer, msg, now_secs());
        self.ws.send(&frame).await
    }

    /// ErrorMsg (18) details and any other unexpected frames received since login.
    /// The server has not closed the connection.
    pub fn is_open(&self) -> bool {
        self.ws.is_open()
    }

    pub fn unexpected(&mut self) -> Vec<String> {
        self.ws
            .pending()
            .into_iter()
            .map(|value| match value.get("code").and_then(Value::as_i64) {
                Some(ERROR) => format!("ErrorMsg {}", value["details"]),
                _ => value.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_notes() {
        // The notes' example: `123456` → this hash.
        assert_eq!(
            password_hash("123456"),
            "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92"
        );
        let login = login_frame("aB3dE5gH7j", "ab", 1);
        assert_eq!(login["code"], 6);
        assert_eq!(login["login_type"], 1);
        assert_eq!(login["account"], "aB3dE5gH7j");
        assert_eq!(login["time"], 1);
        let text = text_frame("aB3dE5gH7j", "Zx9Yw8Vu7T", "hi", 1_722_441_600);
        assert_eq!(
            text,
            json!({"code": 0, "time": 1_722_441_600, "sender": {"ocid": "aB3dE5gH7j", "private_id": "Zx9Yw8Vu7T"}, "msg": "hi"})
        );
    }

    #[test]
    fn reads_the_text_push() {
        let push: Value = serde_json::from_str(
            r#"{"code":0,"time":1722441600,"cid":42,"msg_id":42,"sender":{"ocid":"aB3dE5gH7j","private_id":"Zx9Yw8Vu7T"},"msg":"hi"}"#,
        )
        .unwrap();
        assert_eq!(
            parse_push(&push),
            Some(Push {
                from: "aB3dE5gH7j".into(),
                msg: "hi".into()
            })
        );
        assert_eq!(parse_push(&json!({"code": 7, "status": 0})), None);
        assert_eq!(parse_push(&json!({"code": 0, "msg": "no sender"})), None);
    }
}
