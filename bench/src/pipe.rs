//! A minimal client of the pipe protocol (QtQQ's `cmd|field|…` over TCP), written from the
//! protocol notes rather than from the bridge, so it also checks the bridge independently.
//!
//! The protocol has no framing: one write is one message. Replies and pushes that reach us in
//! one read are split again at the message names this client knows.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::tcp::OwnedWriteHalf,
    sync::mpsc,
    task::JoinHandle,
};

use crate::connect::connect_from;

/// Message names the server sends that this client understands; used to split glued reads.
const HEADS: [&str; 7] = [
    "message|",
    "send_message_succ|",
    "send_message_error|",
    "login_succ|",
    "login_error|",
    "update_profile_error|",
    "token_error|",
];

/// How long to wait for a reply before giving up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A chat message pushed to this connection.
#[derive(Debug, PartialEq, Eq)]
pub struct Push {
    /// The sender's uid as the server wrote it.
    pub from: String,
    pub data: String,
}

/// A logged-in pipe connection.
pub struct Conn {
    writer: OwnedWriteHalf,
    replies: mpsc::UnboundedReceiver<String>,
    reader: JoinHandle<()>,
    pub uid: String,
    pub token: String,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Splits one read into the messages it holds.
pub fn split(chunk: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = HEADS
        .iter()
        .flat_map(|head| chunk.match_indices(head).map(|(i, _)| i))
        // A head inside a longer name (`unread_message|`) is not a boundary.
        .filter(|&i| i == 0 || !chunk[..i].ends_with('_'))
        .collect();
    starts.sort_unstable();
    starts.dedup();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(chunk.len());
        let piece = chunk[s..end].trim_end_matches(['\r', '\n', '\0']);
        if !piece.is_empty() {
            out.push(piece);
        }
    }
    out
}

/// Reads a private-message push: `message|<type>|<from>|<time>|<data>`.
pub fn parse_push(message: &str) -> Option<Push> {
    let rest = message.strip_prefix("message|")?;
    let mut fields = rest.splitn(4, '|');
    let _kind = fields.next()?;
    let from = fields.next()?;
    let _time = fields.next()?;
    let data = fields.next()?;
    Some(Push {
        from: from.to_owned(),
        data: data.to_owned(),
    })
}

impl Conn {
    /// Connects from `source` (any local address when `None`), logs in as `name` and hands
    /// every message push to `on_push`.
    pub async fn login(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        name: &str,
        password: &str,
        on_push: Arc<dyn Fn(Push) + Send + Sync>,
    ) -> anyhow::Result<Conn> {
        Self::login_with_buffer(addr, source, name, password, on_push, 64 * 1024).await
    }

    /// [`Conn::login`] with a read buffer of `buffer` bytes: a soak of 100,000 idle
    /// connections holds one buffer each in this process.
    pub async fn login_with_buffer(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        name: &str,
        password: &str,
        on_push: Arc<dyn Fn(Push) + Send + Sync>,
        buffer: usize,
    ) -> anyhow::Result<Conn> {
        let stream = connect_from(addr, source).await?;
        stream.set_nodelay(true)?;
        let (mut read, writer) = stream.into_split();
        let (tx, replies) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; buffer.max(1)];
            loop {
                let n = match read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let chunk = String::from_utf8_lossy(&buf[..n]);
                for message in split(&chunk) {
                    if let Some(push) = parse_push(message) {
                        on_push(push);
                    } else if tx.send(message.to_owned()).is_err() {
                        return;
                    }
                }
            }
        });
        let mut conn = Conn {
            writer,
            replies,
            reader,
            uid: String::new(),
            token: String::new(),
        };
        let reply = conn
            .request(
                &format!("login|{name}|{password}"),
                &["login_succ", "login_error"],
            )
            .await?;
        // login_succ|登录成功!|<uid>|<token>|<unread>
        let fields: Vec<&str> = reply.split('|').collect();
        match fields.as_slice() {
            ["login_succ", _, uid, token, ..] => {
                conn.uid = (*uid).to_owned();
                conn.token = (*token).to_owned();
                Ok(conn)
            }
            _ => bail!("login of {name} refused: {reply}"),
        }
    }

    /// The server has not closed the connection.
    pub fn is_open(&self) -> bool {
        !self.reader.is_finished()
    }

    /// Writes one command and waits for the first reply named in `expect` (other messages,
    /// such as friend-request pushes, are skipped).
    pub async fn request(&mut self, command: &str, expect: &[&str]) -> anyhow::Result<String> {
        self.writer
            .write_all(command.as_bytes())
            .await
            .context("pipe write failed")?;
        let wanted = async {
            while let Some(reply) = self.replies.recv().await {
                let name = reply.split('|').next().unwrap_or_default();
                if expect.contains(&name) {
                    return Some(reply);
                }
            }
            None
        };
        tokio::time::timeout(REPLY_TIMEOUT, wanted)
            .await
            .context("no pipe reply within 30 s")?
            .context("pipe connection closed")
    }

    /// Sends a private text message and waits for `send_message_succ`.
    pub async fn send_private(&mut self, to: i64, time: &str, data: &str) -> anyhow::Result<()> {
        let command = format!(
            "send_message|0|{}|{to}|{time}|{data}|{}",
            self.uid, self.token
        );
        let reply = self
            .request(
                &command,
                &[
                    "send_message_succ",
                    "send_message_error",
                    "update_profile_error",
                    "token_error",
                ],
            )
            .await?;
        if reply.starts_with("send_message_succ|") {
            Ok(())
        } else {
            bail!("send refused: {reply}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_glued_messages() {
        let glued = "send_message_succ|发送成功！message|0|00124|t|k1.message|0|00125|t|k2.";
        assert_eq!(
            split(glued),
            vec![
                "send_message_succ|发送成功！",
                "message|0|00124|t|k1.",
                "message|0|00125|t|k2."
            ]
        );
        assert_eq!(
            split("unread_message|0|1|t|d"),
            vec!["unread_message|0|1|t|d"]
        );
        assert_eq!(split("login_succ|登录成功!|00124|tok|0\r\n").len(), 1);
    }

    #[test]
    fn reads_private_pushes() {
        assert_eq!(
            parse_push("message|0|00124|20190905103000|hello|there"),
            Some(Push {
                from: "00124".into(),
                data: "hello|there".into()
            })
        );
        assert_eq!(parse_push("send_message_succ|x"), None);
        assert_eq!(parse_push("message|0|1"), None);
    }
}
