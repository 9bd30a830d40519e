//! The five bridges in front of one test node, each on an ephemeral port, as the cross-crate
//! tests start them; they stop when the returned [`Bridges`] is dropped.

use std::net::SocketAddr;

use rosetta_bridge_kit::settings::{
    CloudChatSettings, DpcSettings, ImpsSettings, OurChatSettings, PipeSettings,
};
use rosetta_testkit::TestServer;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Where each bridge listens.
pub struct Bridges {
    pub pipe: SocketAddr,
    pub imps: SocketAddr,
    pub ourchat: SocketAddr,
    pub cloudchat: SocketAddr,
    pub dpc_auth: SocketAddr,
    pub dpc_chat: SocketAddr,
    _closing: DropGuard,
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// Starts every bridge with its default settings against `server`.
pub async fn start(server: &TestServer) -> Bridges {
    let closing = CancellationToken::new();
    let stop = || closing.clone().cancelled_owned();
    let backend = server.backend();
    let ((pipe, pipe_addr), (imps, imps_addr)) = (bind().await, bind().await);
    let ((ourchat, ourchat_addr), (cloudchat, cloudchat_addr)) = (bind().await, bind().await);
    let ((auth, dpc_auth), (chat, dpc_chat), (file, file_addr)) =
        (bind().await, bind().await, bind().await);
    tokio::spawn(rosetta_bridge_pipe::serve(
        pipe,
        backend.clone(),
        PipeSettings::default(),
        stop(),
    ));
    tokio::spawn(rosetta_bridge_imps::serve(
        imps,
        backend.clone(),
        ImpsSettings::default(),
        stop(),
    ));
    tokio::spawn(rosetta_bridge_ourchat::serve(
        ourchat,
        backend.clone(),
        OurChatSettings::default(),
        stop(),
    ));
    tokio::spawn(rosetta_bridge_cloudchat::serve(
        cloudchat,
        backend.clone(),
        CloudChatSettings::default(),
        stop(),
    ));
    let dpc = DpcSettings {
        enabled: true,
        auth_listen: dpc_auth,
        chat_listen: dpc_chat,
        file_listen: file_addr,
        ..DpcSettings::default()
    };
    let listeners = rosetta_bridge_dpc::Listeners { auth, chat, file };
    tokio::spawn(rosetta_bridge_dpc::serve(listeners, backend, dpc, stop()));
    Bridges {
        pipe: pipe_addr,
        imps: imps_addr,
        ourchat: ourchat_addr,
        cloudchat: cloudchat_addr,
        dpc_auth,
        dpc_chat,
        _closing: closing.drop_guard(),
    }
}

/// Lower-case hex SHA-256, as DPC and OurChat clients send passwords.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
