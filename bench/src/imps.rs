//! A minimal client of the IMPS binary protocol, written from the protocol notes: frames are
//! `'O' 'K'`, a big-endian i32 body length, then the body (command byte first); strings are
//! an i64 byte count and the bytes. Every client body starts with the sender's user name.
//! The tool only uses ASCII, where GB2312 and UTF-8 agree.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::tcp::OwnedWriteHalf,
    sync::mpsc,
    task::JoinHandle,
};

use crate::connect::connect_from;

pub const C_LOGIN_REQ: u8 = 1;
pub const S_LOGIN_RSP: u8 = 2;
pub const C_HEARTBEAT_REQ: u8 = 3;
pub const C_SEND_MSG: u8 = 11;
pub const S_SEND_MSG: u8 = 12;
pub const S_ERROR: u8 = 17;

/// Frames larger than this cannot be decoded by either legacy side.
const MAX_FRAME: usize = 10_240;
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a client frame: command, the user name, then `fields` (already encoded).
pub fn frame(cmd: u8, user: &str, fields: &[u8]) -> Vec<u8> {
    let mut body = vec![cmd];
    put_str(&mut body, user);
    body.extend_from_slice(fields);
    let mut out = Vec::with_capacity(6 + body.len());
    out.extend_from_slice(b"OK");
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

pub fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as i64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Takes one complete frame body (command byte first) off the front of `buf`.
pub fn take_frame(buf: &mut Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
    if buf.len() < 6 {
        return Ok(None);
    }
    if &buf[..2] != b"OK" {
        bail!("bad frame tag {:02x}{:02x}", buf[0], buf[1]);
    }
    let len = i32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]);
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| (1..=MAX_FRAME).contains(&l));
    let Some(len) = len else {
        bail!("bad frame length");
    };
    if buf.len() < 6 + len {
        return Ok(None);
    }
    let body = buf[6..6 + len].to_vec();
    buf.drain(..6 + len);
    Ok(Some(body))
}

/// Reads an i64-prefixed string at `*at`, advancing it.
pub fn get_str(body: &[u8], at: &mut usize) -> Option<String> {
    let len_bytes: [u8; 8] = body.get(*at..*at + 8)?.try_into().ok()?;
    let len = usize::try_from(i64::from_be_bytes(len_bytes)).ok()?;
    let start = *at + 8;
    let bytes = body.get(start..start.checked_add(len)?)?;
    *at = start + len;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// An incoming chat message (`S_SEND_MSG`).
#[derive(Debug, PartialEq, Eq)]
pub struct Push {
    pub from: String,
    pub text: String,
}

pub fn parse_push(body: &[u8]) -> Option<Push> {
    if body.first() != Some(&S_SEND_MSG) {
        return None;
    }
    let mut at = 1;
    let from = get_str(body, &mut at)?;
    let text = get_str(body, &mut at)?;
    Some(Push { from, text })
}

/// A logged-in IMPS connection.
pub struct Conn {
    writer: OwnedWriteHalf,
    replies: mpsc::UnboundedReceiver<Vec<u8>>,
    reader: JoinHandle<()>,
    pub name: String,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Connects from `source`, logs in and routes chat pushes to `on_push`.
    pub async fn login(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        name: &str,
        password: &str,
        on_push: Arc<dyn Fn(Push) + Send + Sync>,
    ) -> anyhow::Result<Conn> {
        let stream = connect_from(addr, source).await?;
        stream.set_nodelay(true)?;
        let (mut read, writer) = stream.into_split();
        let (tx, replies) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                let n = match read.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    match take_frame(&mut buf) {
                        Ok(Some(body)) => {
                            if let Some(push) = parse_push(&body) {
                                on_push(push);
                            } else if tx.send(body).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
        });
        let mut conn = Conn {
            writer,
            replies,
            reader,
            name: name.to_owned(),
        };
        let mut fields = Vec::new();
        put_str(&mut fields, password);
        conn.write(&frame(C_LOGIN_REQ, name, &fields)).await?;
        let reply = tokio::time::timeout(REPLY_TIMEOUT, conn.replies.recv())
            .await
            .context("no IMPS login reply within 30 s")?
            .context("IMPS connection closed")?;
        match reply.first() {
            Some(&S_LOGIN_RSP) => Ok(conn),
            Some(&S_ERROR) => bail!("login of {name} refused (S_ERROR {:?})", reply.get(1..5)),
            other => bail!("unexpected IMPS reply {other:?} to login"),
        }
    }

    /// The codes of the `S_ERROR` frames received since login (e.g. 5: recipient offline).
    pub fn errors_received(&mut self) -> Vec<i32> {
        let mut codes = Vec::new();
        while let Ok(body) = self.replies.try_recv() {
            if let (Some(&S_ERROR), Some(code)) = (body.first(), body.get(1..5)) {
                codes.push(i32::from_be_bytes([code[0], code[1], code[2], code[3]]));
            }
        }
        codes
    }

    /// The server has not closed the connection.
    pub fn is_open(&self) -> bool {
        !self.reader.is_finished()
    }

    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.writer
            .write_all(bytes)
            .await
            .context("IMPS write failed")
    }

    /// One heartbeat as the real client sends it: count 1, local time, no location.
    pub async fn heartbeat(&mut self) -> anyhow::Result<()> {
        let mut fields = Vec::new();
        fields.extend_from_slice(&1i64.to_be_bytes());
        put_str(&mut fields, "2026-01-01 00:00:00");
        fields.extend_from_slice(&0f64.to_be_bytes());
        fields.extend_from_slice(&0f64.to_be_bytes());
        let frame = frame(C_HEARTBEAT_REQ, &self.name, &fields);
        self.write(&frame).await
    }

    /// Sends a chat message; the protocol has no acknowledgement.
    pub async fn send(&mut self, to: &str, text: &str) -> anyhow::Result<()> {
        let mut fields = Vec::new();
        put_str(&mut fields, to);
        put_str(&mut fields, text);
        let frame = frame(C_SEND_MSG, &self.name, &fields);
        self.write(&frame).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_frame_matches_the_notes() {
        let mut fields = Vec::new();
        put_str(&mut fields, "123");
        let bytes = frame(C_LOGIN_REQ, "alice", &fields);
        let expected: &[u8] = &[
            0x4f, 0x4b, 0, 0, 0, 0x19, 0x01, 0, 0, 0, 0, 0, 0, 0, 5, b'a', b'l', b'i', b'c', b'e',
            0, 0, 0, 0, 0, 0, 0, 3, b'1', b'2', b'3',
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn reassembles_frames_and_reads_pushes() {
        let mut body = vec![S_SEND_MSG];
        put_str(&mut body, "bob");
        put_str(&mut body, "hi");
        put_str(&mut body, "2026-11-22 10:00:00");
        let mut wire = b"OK".to_vec();
        wire.extend_from_slice(&(body.len() as i32).to_be_bytes());
        wire.extend_from_slice(&body);
        let mut buf = wire[..7].to_vec();
        assert_eq!(take_frame(&mut buf).unwrap(), None);
        buf.extend_from_slice(&wire[7..]);
        let got = take_frame(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(
            parse_push(&got),
            Some(Push {
                from: "bob".into(),
                text: "hi".into()
            })
        );
        let mut bad = b"XX\0\0\0\x01\x01".to_vec();
        assert!(take_frame(&mut bad).is_err());
        let truncated = [S_SEND_MSG, 0, 0, 0, 0, 0, 0, 0, 9, b'x'];
        assert_eq!(parse_push(&truncated), None);
    }
}
