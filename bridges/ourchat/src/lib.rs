//! The OurChat protocol bridge (PyQt clients, WebSocket 7777).
//!
//! [`codec`] turns one text frame into a typed request, accepting both the real client's form
//! and the seed document's, and builds the replies the client reads. [`session`] runs one
//! WebSocket connection and holds the command table: requests become calls on the canonical
//! services (`account`, `chat`), refusals become replies through one table (`refusal`), and
//! the user's event stream while logged in becomes pushes (`push`) for the clients that can
//! read them.

mod account;
mod chat;
pub mod codec;
mod ocids;
mod push;
mod refusal;
pub mod session;

use rosetta_bridge_kit::{
    Backend, HTTP_UNAVAILABLE, Listening, LiveLogins, serve_tcp, settings::OurChatSettings,
};
use tokio::net::TcpListener;

/// Serves ourchat clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: OurChatSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let live = LiveLogins::reported("ourchat", backend.board());
    // Over a cap: a 503 to the WebSocket handshake, which the client's `websockets` library
    // reports as a failed connect.
    let listening = Listening::new("ourchat", listener, settings.limits, HTTP_UNAVAILABLE)
        .reported_on(backend.board());
    serve_tcp(listening, shutdown, move |stream, peer, conns| {
        session::run(
            stream,
            peer,
            backend.for_client(peer.ip()),
            settings.clone(),
            conns,
            live.clone(),
        )
    })
    .await;
}
