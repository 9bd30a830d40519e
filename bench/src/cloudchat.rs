//! A minimal CloudChat web client (JSON over one WebSocket), written from the protocol notes:
//! `{"type": NAME, "payload": {…}}` per text frame; LOGIN by name and plain password;
//! SEND_MESSAGE acknowledged by MESSAGE_RECEIVED_SELF (or refused by MESSAGE_SEND_FAILED),
//! both carrying the client's `tempId`; MESSAGE_RECEIVED_OTHER pushed to the receiver.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::ws;

const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn frame(kind: &str, payload: Value) -> Value {
    json!({"type": kind, "payload": payload})
}

/// An id as the server sends it: a number, or (accepted by the original) a numeric string.
fn id(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// An incoming message (MESSAGE_RECEIVED_OTHER).
#[derive(Debug, PartialEq, Eq)]
pub struct Push {
    pub sender_id: i64,
    pub content: String,
}

pub fn parse_push(value: &Value) -> Option<Push> {
    if value.get("type")?.as_str()? != "MESSAGE_RECEIVED_OTHER" {
        return None;
    }
    let payload = value.get("payload")?;
    Some(Push {
        sender_id: id(payload.get("senderId")?)?,
        content: payload.get("content")?.as_str()?.to_owned(),
    })
}

/// A logged-in CloudChat WebSocket.
pub struct Conn {
    ws: ws::Conn,
    pub user_id: i64,
    next_temp: u64,
    /// Replies that were neither the awaited acknowledgement nor a push.
    unexpected: Vec<Value>,
}

impl Conn {
    /// Connects, logs in (which binds the socket for pushes) and routes messages to `on_push`.
    pub async fn login(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        name: &str,
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
        ws.send(&frame(
            "LOGIN",
            json!({"username": name, "password": password}),
        ))
        .await?;
        let reply = ws.reply(REPLY_TIMEOUT).await?;
        if reply["type"] != "LOGIN_SUCCESS" {
            bail!("CloudChat login of {name} refused: {reply}");
        }
        let user_id = id(&reply["payload"]["userId"]).context("LOGIN_SUCCESS without userId")?;
        Ok(Conn {
            ws,
            user_id,
            next_temp: 0,
            unexpected: Vec::new(),
        })
    }

    /// Sends `content` to `to` and waits for its acknowledgement.
    pub async fn send(&mut self, to: i64, content: &str) -> Result<(), SendError> {
        self.next_temp += 1;
        let temp_id = format!("bench-{}-{}", self.user_id, self.next_temp);
        let message = frame(
            "SEND_MESSAGE",
            json!({"tempId": temp_id, "senderId": self.user_id, "receiverId": to,
                   "content": content, "type": "text"}),
        );
        self.ws
            .send(&message)
            .await
            .map_err(|err| SendError::Refused(format!("{err:#}")))?;
        loop {
            let reply = self
                .ws
                .reply(REPLY_TIMEOUT)
                .await
                .map_err(|err| SendError::Late(format!("{err:#}")))?;
            let ours = reply["payload"]["tempId"].as_str() == Some(temp_id.as_str());
            match reply["type"].as_str() {
                Some("MESSAGE_RECEIVED_SELF") if ours => return Ok(()),
                Some("MESSAGE_SEND_FAILED") if ours => {
                    return Err(SendError::Refused(format!(
                        "MESSAGE_SEND_FAILED {}",
                        reply["payload"]["error"]
                    )));
                }
                _ => self.unexpected.push(reply),
            }
        }
    }

    /// Frames received that were neither acknowledgements of the sends nor pushes.
    /// The server has not closed the connection.
    pub fn is_open(&self) -> bool {
        self.ws.is_open()
    }

    pub fn unexpected(&mut self) -> Vec<String> {
        let mut all: Vec<Value> = std::mem::take(&mut self.unexpected);
        all.extend(self.ws.pending());
        all.iter().map(Value::to_string).collect()
    }
}

/// Why a send did not count.
#[derive(Debug)]
pub enum SendError {
    /// Refused or not written: the message was not stored.
    Refused(String),
    /// No acknowledgement in time: the message may still arrive.
    Late(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_notes_push() {
        let push: Value = serde_json::from_str(
            r#"{"type":"MESSAGE_RECEIVED_OTHER","payload":{"id":0,"senderId":1,"receiverId":2,"content":"hi","timestamp":"Sun Jan 11 12:34:56 2026\n","status":"sent","type":"text"}}"#,
        )
        .unwrap();
        assert_eq!(
            parse_push(&push),
            Some(Push {
                sender_id: 1,
                content: "hi".into()
            })
        );
        let ack = frame("MESSAGE_RECEIVED_SELF", json!({"tempId": "t", "id": 3}));
        assert_eq!(parse_push(&ack), None);
        let as_text =
            json!({"type": "MESSAGE_RECEIVED_OTHER", "payload": {"senderId": "7", "content": "x"}});
        assert_eq!(parse_push(&as_text).map(|p| p.sender_id), Some(7));
    }
}
