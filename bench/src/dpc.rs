//! A minimal DPC client, written from the protocol notes: every frame is a 15-byte header
//! (the body's byte count in ASCII decimal, right-padded with spaces) and a JSON body. A user
//! logs in on the auth port (`op` 0, plain password), then holds one chat connection; a chat
//! line carries the name and password again, and the server broadcasts `name:text` to every
//! other chat socket. Nothing is acknowledged.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpStream, tcp::OwnedWriteHalf},
    task::JoinHandle,
};

use crate::connect::connect_from;

const HEADER: usize = 15;
/// Larger bodies are not chat lines; the tool treats them as a broken stream.
const MAX_BODY: usize = 1 << 20;
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// `body` behind its 15-byte header.
pub fn frame(body: &Value) -> Vec<u8> {
    let body = body.to_string();
    let mut out = format!("{:<HEADER$}", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Takes one complete body off the front of `buf`.
pub fn take_frame(buf: &mut Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len: usize = std::str::from_utf8(&buf[..HEADER])
        .ok()
        .and_then(|h| h.trim().parse().ok())
        .filter(|&len| len <= MAX_BODY)
        .context("bad DPC header")?;
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    let body = buf[HEADER..HEADER + len].to_vec();
    buf.drain(..HEADER + len);
    Ok(Some(body))
}

/// A broadcast line: who wrote it and the text as typed (without the `name:` prefix and the
/// newline the client appends).
#[derive(Debug, PartialEq, Eq)]
pub struct Push {
    pub from: String,
    pub text: String,
}

pub fn parse_push(body: &[u8]) -> Option<Push> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let from = value.get("args")?.get("name")?.as_str()?;
    let news = value.get("news")?.as_str()?;
    let text = news.strip_prefix(from)?.strip_prefix(':')?;
    Some(Push {
        from: from.to_owned(),
        text: text.strip_suffix('\n').unwrap_or(text).to_owned(),
    })
}

/// Logs `name` in on the auth port, as the client does before it opens the chat connection.
pub async fn login(auth: SocketAddr, name: &str, password: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(auth)
        .await
        .with_context(|| format!("cannot connect to the DPC auth port {auth}"))?;
    let request = json!({"op": 0, "args": {"user_name": name, "user_pwd": password}});
    stream.write_all(&frame(&request)).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    let body = tokio::time::timeout(REPLY_TIMEOUT, async {
        loop {
            if let Some(body) = take_frame(&mut buf)? {
                return anyhow::Ok(body);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("DPC auth connection closed before the reply");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .context("no DPC login reply within 30 s")??;
    let reply: Value = serde_json::from_slice(&body).context("DPC login reply is not JSON")?;
    match reply.get("test").and_then(Value::as_i64) {
        Some(0) => Ok(()),
        _ => bail!("login of {name} refused: {reply}"),
    }
}

/// A chat connection.
pub struct Conn {
    writer: OwnedWriteHalf,
    reader: JoinHandle<()>,
    name: String,
    password: String,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Logs in on `auth`, opens the chat connection from `source` and routes lines to
    /// `on_push`.
    pub async fn login(
        auth: SocketAddr,
        chat: SocketAddr,
        source: Option<std::net::IpAddr>,
        name: &str,
        password: &str,
        on_push: Arc<dyn Fn(Push) + Send + Sync>,
    ) -> anyhow::Result<Conn> {
        login(auth, name, password).await?;
        let stream = connect_from(chat, source).await?;
        stream.set_nodelay(true)?;
        let (mut read, writer) = stream.into_split();
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                let n = match read.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some(body)) = take_frame(&mut buf) {
                    if let Some(push) = parse_push(&body) {
                        on_push(push);
                    }
                }
            }
        });
        Ok(Conn {
            writer,
            reader,
            name: name.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The server has not closed the connection.
    pub fn is_open(&self) -> bool {
        !self.reader.is_finished()
    }

    /// Sends one chat line (the client always ends it with a newline).
    pub async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        let line = json!({
            "op": 0,
            "args": {"name": self.name, "password": self.password},
            "news": format!("{text}\n"),
        });
        self.writer
            .write_all(&frame(&line))
            .await
            .context("DPC write failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_pushes_match_the_notes() {
        let bytes = frame(&json!({"op": 0, "test": 0}));
        assert_eq!(&bytes[..HEADER], b"17             ");
        let push = br#"{"op": 0, "args": {"name": "alice"}, "news": "alice:k1.x\n"}"#;
        let mut wire = format!("{:<15}", push.len()).into_bytes();
        wire.extend_from_slice(push);
        let mut buf = wire[..20].to_vec();
        assert_eq!(take_frame(&mut buf).unwrap(), None);
        buf.extend_from_slice(&wire[20..]);
        let body = take_frame(&mut buf).unwrap().unwrap();
        assert_eq!(
            parse_push(&body),
            Some(Push {
                from: "alice".into(),
                text: "k1.x".into()
            })
        );
        assert!(take_frame(&mut b"abc            {}".to_vec()).is_err());
    }
}
