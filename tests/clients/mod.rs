//! Minimal legacy clients for the cross-crate tests, each speaking its protocol's raw bytes as
//! the real client does: pipe (text, one command per write), IMPS (`'O''K'` + length-framed
//! binary) and the JSON-over-WebSocket protocols (OurChat, CloudChat).

#![allow(dead_code)] // Each test crate uses its own part of this module.

pub mod bridges;
pub mod process;

use std::{net::SocketAddr, time::Duration};

use futures::{SinkExt as _, StreamExt as _};
use rosetta_bridge_imps::codec::{ClientMessage, Frame, FrameCodec, decode_gb2312};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_tungstenite::{WebSocketStream, client_async, tungstenite::Message};
use tokio_util::codec::Framed;

/// Generous: the machines running the tests are slow and busy.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A pipe client: one command per write; each read is one reply or push (the bridge paces
/// its writes, as the protocol has no framing).
pub struct Pipe(TcpStream);

impl Pipe {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("pipe bridge accepts");
        stream.set_nodelay(true).expect("nodelay");
        Self(stream)
    }

    pub async fn send(&mut self, line: &str) {
        self.0.write_all(line.as_bytes()).await.expect("pipe write");
    }

    pub async fn recv(&mut self) -> String {
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.0.read(&mut buf))
            .await
            .expect("a pipe message in time")
            .expect("pipe read");
        assert!(n > 0, "pipe bridge closed the connection");
        String::from_utf8(buf[..n].to_vec()).expect("UTF-8")
    }

    pub async fn call(&mut self, line: &str) -> String {
        self.send(line).await;
        self.recv().await
    }

    /// A new user, registered and logged in through the pipe bridge: the connection, the
    /// user's uid and their pipe token.
    pub async fn user(addr: SocketAddr, name: &str) -> (Self, String, String) {
        let mut pipe = Self::connect(addr).await;
        let reply = pipe
            .call(&format!("register|{name}|pw-{name}|{name}|1|sig|1|answer"))
            .await;
        assert!(reply.starts_with("register_succ|"), "register: {reply}");
        let reply = pipe.call(&format!("login|{name}|pw-{name}")).await;
        let fields: Vec<&str> = reply.split('|').collect();
        assert!(
            fields.first() == Some(&"login_succ") && fields.len() >= 4,
            "login: {reply}"
        );
        let (uid, token) = (fields[2].to_owned(), fields[3].to_owned());
        (pipe, uid, token)
    }

    /// Waits for the bridge to close the connection, reading (and dropping) anything it
    /// still sends first.
    pub async fn closed(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(PATIENCE, self.0.read(&mut buf))
                .await
                .expect("the pipe bridge closes the connection in time")
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// An IMPS client.
pub struct Imps(Framed<TcpStream, FrameCodec>);

impl Imps {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("IMPS bridge accepts");
        Self(Framed::new(stream, FrameCodec))
    }

    pub async fn send(&mut self, message: ClientMessage) {
        self.0.send(message.encode()).await.expect("IMPS write");
    }

    /// The next frame, whatever its command.
    pub async fn recv_any(&mut self) -> Frame {
        tokio::time::timeout(PATIENCE, self.0.next())
            .await
            .expect("an IMPS frame in time")
            .expect("IMPS bridge closed the connection")
            .expect("a well-formed frame")
    }

    /// The next frame with command `want`, skipping others (presence pushes and the like).
    pub async fn recv(&mut self, want: u8) -> Frame {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("an IMPS frame in time")
                .expect("IMPS bridge closed the connection")
                .expect("a well-formed frame");
            if frame.cmd == want {
                return frame;
            }
        }
    }
}

impl Imps {
    /// Waits for the bridge to close the connection, returning the frames it sent before.
    pub async fn closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("the IMPS bridge closes the connection in time")
            {
                Some(Ok(frame)) => frames.push(frame),
                None | Some(Err(_)) => return frames,
            }
        }
    }
}

/// Reads an IMPS server frame's fields: GB2312 strings with an i64 length, big-endian
/// integers.
pub struct Fields<'a>(pub &'a [u8]);

impl Fields<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    pub fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }

    pub fn string(&mut self) -> String {
        let len = i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"));
        decode_gb2312(self.take(usize::try_from(len).expect("length"))).expect("GB2312")
    }
}

/// A WebSocket client sending JSON text frames (OurChat and CloudChat alike).
pub struct Ws(WebSocketStream<TcpStream>);

impl Ws {
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (ws, _) = tokio::time::timeout(PATIENCE, client_async(format!("ws://{addr}/"), tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        Self(ws)
    }

    pub async fn send(&mut self, text: &str) {
        self.0
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next JSON frame for which `pick` holds, skipping others (pushes of other kinds).
    pub async fn recv_where(&mut self, pick: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("a frame in time");
            let value: Value = match frame {
                Some(Ok(Message::Text(text))) => serde_json::from_str(&text).expect("JSON"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            };
            if pick(&value) {
                return value;
            }
        }
    }

    pub async fn call(&mut self, text: &str) -> Value {
        self.send(text).await;
        self.recv_where(|_| true).await
    }

    /// Waits for the server to close the WebSocket, skipping other frames; the close frame's
    /// code, if it sent one.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("the server closes the WebSocket in time")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return None,
            }
        }
    }
}

/// A DPC client socket (auth or chat): each frame a 15-byte space-padded length header and a
/// JSON body, header and body written separately, as the tkinter client does.
pub struct Dpc(TcpStream);

impl Dpc {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self(TcpStream::connect(addr).await.expect("DPC bridge accepts"))
    }

    pub async fn send(&mut self, json: &str) {
        let header = format!("{:<15}", json.len());
        self.0.write_all(header.as_bytes()).await.expect("header");
        self.0.write_all(json.as_bytes()).await.expect("body");
    }

    /// The next frame's body.
    pub async fn recv(&mut self) -> String {
        let mut header = [0u8; 15];
        tokio::time::timeout(PATIENCE, self.0.read_exact(&mut header))
            .await
            .expect("a DPC frame in time")
            .expect("DPC header");
        let len: usize = std::str::from_utf8(&header)
            .expect("ASCII header")
            .trim_end()
            .parse()
            .expect("numeric header");
        let mut body = vec![0u8; len];
        tokio::time::timeout(PATIENCE, self.0.read_exact(&mut body))
            .await
            .expect("a DPC body in time")
            .expect("DPC body");
        String::from_utf8(body).expect("UTF-8 body")
    }

    /// The next frame whose body contains `text`, skipping others.
    pub async fn recv_containing(&mut self, text: &str) -> String {
        loop {
            let body = self.recv().await;
            if body.contains(text) {
                return body;
            }
        }
    }
}
