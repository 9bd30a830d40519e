//! The transport the OurChat and CloudChat clients share: a plain `ws://` WebSocket carrying
//! one JSON object per text frame. A reader task hands each object to a router, which consumes
//! the pushes it knows and passes everything else on as a reply.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use futures::{SinkExt as _, StreamExt as _, stream::SplitSink};
use serde_json::Value;
use tokio::{net::TcpStream, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::{WebSocketStream, client_async, tungstenite::Message};

use crate::connect::connect_from;

/// One JSON-over-WebSocket connection.
pub struct Conn {
    sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    replies: mpsc::UnboundedReceiver<Value>,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Connects from `source` to `ws://addr/`; `route` returns the objects that are not pushes.
    pub async fn open(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        route: impl Fn(Value) -> Option<Value> + Send + 'static,
    ) -> anyhow::Result<Conn> {
        let tcp = connect_from(addr, source).await?;
        tcp.set_nodelay(true)?;
        let (ws, _) = client_async(format!("ws://{addr}/"), tcp)
            .await
            .with_context(|| format!("WebSocket handshake with {addr}"))?;
        let (sink, mut frames) = ws.split();
        let (tx, replies) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(frame) = frames.next().await {
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Close(_)) | Err(_) => return,
                    Ok(_) => continue,
                };
                // A frame that is not JSON is passed on as a string, so that it shows up.
                let value = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|_| Value::String(text.as_str().to_owned()));
                if let Some(reply) = route(value)
                    && tx.send(reply).is_err()
                {
                    return;
                }
            }
        });
        Ok(Conn {
            sink,
            replies,
            reader,
        })
    }

    /// The server has not closed the connection.
    pub fn is_open(&self) -> bool {
        !self.reader.is_finished()
    }

    pub async fn send(&mut self, value: &Value) -> anyhow::Result<()> {
        self.sink
            .send(Message::text(value.to_string()))
            .await
            .context("WebSocket write failed")
    }

    /// The next reply, or `None` when the connection closed or `wait` passed.
    pub async fn reply(&mut self, wait: Duration) -> anyhow::Result<Value> {
        tokio::time::timeout(wait, self.replies.recv())
            .await
            .with_context(|| format!("no reply within {} s", wait.as_secs()))?
            .context("connection closed")
    }

    /// Replies received and not yet read.
    pub fn pending(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(value) = self.replies.try_recv() {
            out.push(value);
        }
        out
    }
}
