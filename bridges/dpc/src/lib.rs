//! The DPC protocol bridge (tkinter clients; auth 9999, chat 9998, file 9988).
//!
//! [`codec`] holds the framing, the Python-exact JSON writer and the typed requests and
//! replies of all three servers; it does no I/O. Each server has its session module; they
//! share the remembered logins ([`logins`]) and the lobby stream ([`lobby`]).

mod auth;
mod chat;
pub mod codec;
mod file;
mod lobby;
mod logins;
mod refusal;
mod uploads;
mod wire;

use std::sync::Arc;

use rosetta_bridge_kit::{
    Backend, Listening, LiveLogins, Refusal, serve_tcp, settings::DpcSettings,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use file::split_path;

/// Slug of the public group that is the DPC chat room.
pub const LOBBY_SLUG: &str = "dpc-lobby";

/// The three servers' listeners.
pub struct Listeners {
    pub auth: TcpListener,
    pub chat: TcpListener,
    pub file: TcpListener,
}

/// What the connections of all three servers share.
struct Shared {
    backend: Backend,
    lobby: Arc<lobby::Lobby>,
    logins: logins::Logins,
    uploads: Arc<uploads::Uploads>,
    /// Users whose chat sockets are open on this process, counted per socket.
    live: LiveLogins,
}

/// Serves DPC clients on the three listeners until `shutdown` completes.
pub async fn serve(
    listeners: Listeners,
    backend: Backend,
    settings: DpcSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    tracing::info!(
        auth = %settings.auth_listen,
        chat = %settings.chat_listen,
        file = %settings.file_listen,
        "DPC bridge starting"
    );
    let lobby = lobby::Lobby::new();
    let board = backend.board().clone();
    let shared = Arc::new(Shared {
        logins: logins::Logins::new(backend.clone(), lobby.clone()),
        backend,
        lobby: lobby.clone(),
        uploads: Arc::default(),
        live: LiveLogins::reported("dpc", &board),
    });
    let stop = CancellationToken::new();
    let follower = tokio::spawn(lobby.run(stop.clone()));
    let (auth, chat, file) = (shared.clone(), shared.clone(), shared);
    // Over a cap each server closes the connection: the protocol has no "server full", and a
    // close without reply is how the original refused anything (the login shows nothing,
    // the chat window reconnects, a file transfer reports a network error).
    let listening = |listener| {
        Listening::new("dpc", listener, settings.limits, Refusal::Close).reported_on(&board)
    };
    tokio::join!(
        async {
            shutdown.await;
            stop.cancel();
        },
        serve_tcp(
            listening(listeners.auth),
            stop.clone().cancelled_owned(),
            move |stream, peer, conns| auth::serve(stream, peer, conns, auth.clone()),
        ),
        serve_tcp(
            // A chat window never logs in on this socket and may only listen, for hours.
            listening(listeners.chat).without_handshake(),
            stop.clone().cancelled_owned(),
            move |stream, peer, conns| chat::serve(stream, peer, conns, chat.clone()),
        ),
        serve_tcp(
            listening(listeners.file),
            stop.clone().cancelled_owned(),
            move |stream, peer, conns| {
                // Numbered here, in the accept loop: the order of arrival (see `uploads`).
                let arrival = file.uploads.arrive(&stream);
                file::serve(stream, peer, conns, file.clone(), arrival)
            },
        ),
    );
    let _ = follower.await;
}
