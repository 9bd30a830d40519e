//! The queue between a stream's task and its client (the gRPC response, or a bridge feed).
//!
//! Its items are boxed in the queue. tokio's bounded channel allocates its slots 32 at a
//! time, the first block when the channel is made, and an unboxed item (a
//! `SubscribeResponse` or a `Status`) is about 450 bytes: every open stream, idle or not,
//! held a block of about 15 KiB. Boxed, a slot is one pointer (the block is under 400 bytes)
//! and only the items actually waiting cost their size.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use rosetta_proto::messaging::v1::SubscribeResponse;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio_stream::Stream;
use tonic::Status;

/// One item of a stream: a response, or the status the stream ends with.
pub type Outgoing = Result<SubscribeResponse, Status>;

/// The stream's client has gone (its [`Inbox`] was dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// A queue of at most `capacity` items: the stream's end and the client's end.
pub fn outbox(capacity: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(capacity);
    (Outbox(tx), Inbox(rx))
}

/// Where a stream's task puts its items.
#[derive(Debug, Clone)]
pub struct Outbox(mpsc::Sender<Box<Outgoing>>);

impl Outbox {
    /// Queues `item`, waiting while the queue is full; [`Gone`] once the client has gone.
    pub async fn send(&self, item: Outgoing) -> Result<(), Gone> {
        self.0.send(Box::new(item)).await.map_err(|_| Gone)
    }

    /// Completes when the client has gone.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

/// Where the client takes a stream's items from; also a [`Stream`] of them (a gRPC response).
#[derive(Debug)]
pub struct Inbox(mpsc::Receiver<Box<Outgoing>>);

impl Inbox {
    /// The next item; `None` once the stream's task has ended and the queue is empty.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        self.0.recv().await.map(|item| *item)
    }

    /// The next item if one is waiting.
    pub fn try_recv(&mut self) -> Result<Outgoing, TryRecvError> {
        self.0.try_recv().map(|item| *item)
    }
}

impl Stream for Inbox {
    type Item = Outgoing;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        self.0.poll_recv(cx).map(|item| item.map(|item| *item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_pass_in_order_and_a_dropped_inbox_is_gone() {
        let (tx, mut rx) = outbox(2);
        tx.send(Ok(SubscribeResponse::default()))
            .await
            .expect("open");
        tx.send(Err(Status::unavailable("bye")))
            .await
            .expect("open");
        assert!(rx.recv().await.expect("item").is_ok());
        assert!(rx.try_recv().expect("item").is_err());
        drop(rx);
        assert_eq!(tx.send(Ok(SubscribeResponse::default())).await, Err(Gone));
    }
}
