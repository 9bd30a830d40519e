//! The chat server (9998): one long-lived socket per client window, no login frame. Every
//! socket receives the lobby's lines; a line a socket sends carries name and password, is
//! checked (through the remembered logins) and sent to the lobby group.

use std::{collections::VecDeque, net::SocketAddr, sync::Arc};

use rosetta_bridge_kit::{Connections, UserSession};
use rosetta_proto::messaging::v1::{MessageKind, SendMessageRequest, send_message_request};
use tokio::{net::TcpStream, sync::broadcast::error::RecvError};
use tonic::{Code, Status};
use tracing::Instrument as _;

use crate::{
    Shared,
    codec::{ChatLine, Credentials, FrameError},
    logins::AuthError,
    wire::{self, FrameReader},
};

/// Idempotency keys of this socket's latest lines, so it does not receive them back.
const OWN_LINES: usize = 64;

pub async fn serve(stream: TcpStream, peer: SocketAddr, conns: Connections, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read);
    let mut lines = shared.lobby.subscribe();
    let mut own: VecDeque<(i64, String)> = VecDeque::new();
    loop {
        tokio::select! {
            () = conns.closing.cancelled() => break,
            line = lines.recv() => match line {
                Ok(line) => {
                    if own
                        .iter()
                        .any(|(u, k)| *u == line.sender_id && *k == line.client_message_id)
                    {
                        continue;
                    }
                    if wire::send(&mut write, &line.frame).await.is_err() {
                        break;
                    }
                    conns.counters.frame_out("push");
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "chat socket fell behind; lines skipped");
                    conns.counters.error("push");
                }
                Err(RecvError::Closed) => break,
            },
            frame = reader.next() => match frame {
                Ok(Some(map)) => {
                    conns.counters.frame_in("line");
                    let span = tracing::info_span!("frame", command = "line");
                    let keep = match ChatLine::parse(&map) {
                        Ok(line) => {
                            send_line(line, peer, &conns, &shared, &mut own)
                                .instrument(span)
                                .await;
                            true
                        }
                        // The original ignores other ops.
                        Err(FrameError::UnknownOp(_)) => true,
                        Err(err) => {
                            tracing::debug!(parent: &span, ?err, "bad chat frame");
                            false
                        }
                    };
                    if !keep {
                        conns.counters.error("line");
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(%err, "chat connection refused");
                    conns.counters.error("line");
                    break;
                }
            },
        }
    }
}

/// Sends one line to the lobby. Bad credentials drop the line without a reply: the original's
/// unframed error bytes would break the client's receive thread.
async fn send_line(
    line: ChatLine,
    peer: SocketAddr,
    conns: &Connections,
    shared: &Shared,
    own: &mut VecDeque<(i64, String)>,
) {
    let ChatLine { credentials, news } = line;
    let Some(session) = authenticate(shared, conns, &credentials, peer).await else {
        return;
    };
    // The client's input box always ends the text with a newline; it is put back on delivery.
    let text = news.strip_suffix('\n').unwrap_or(&news);
    let Some(group) = shared.lobby.group_id() else {
        return;
    };
    if text.is_empty() {
        return;
    }
    let key = uuid::Uuid::new_v4().to_string();
    own.push_back((session.user_id(), key.clone()));
    if own.len() > OWN_LINES {
        own.pop_front();
    }
    let mut sent = send_to(shared, &session, group, text, &key).await;
    let session = match &sent {
        Err(status) if status.code() == Code::Unauthenticated => {
            // The remembered session was ended elsewhere (a password change or recovery ends
            // every other session): check this line's password afresh, so an old one is
            // refused now.
            shared.logins.forget(&credentials.name, &session);
            let Some(fresh) = authenticate(shared, conns, &credentials, peer).await else {
                return;
            };
            sent = send_to(shared, &fresh, group, text, &key).await;
            fresh
        }
        _ => session,
    };
    // The lobby is gone or the user is no longer in it: join it as it is now, send again.
    if let Err(status) = &sent
        && (status.code() == tonic::Code::NotFound
            || crate::reason(status).as_deref() == Some("NOT_MEMBER"))
    {
        tracing::warn!(%status, "lobby line refused; rejoining the lobby");
        sent = match shared.lobby.rejoin(&session).await {
            Ok(group) => send_to(shared, &session, group, text, &key).await,
            Err(status) => Err(status),
        };
    }
    drop(credentials);
    if let Err(status) = sent {
        tracing::warn!(%status, "lobby line not sent");
        conns.counters.error("line");
    }
}

/// The session of the line's sender, or `None` (logged, counted) when the line is refused.
async fn authenticate(
    shared: &Shared,
    conns: &Connections,
    credentials: &Credentials,
    peer: SocketAddr,
) -> Option<Arc<UserSession>> {
    match shared
        .logins
        .authenticate(
            &credentials.name,
            &credentials.password,
            peer,
            &shared.backend.for_client(peer.ip()),
        )
        .await
    {
        Ok(session) => Some(session),
        Err(err) => {
            match err {
                AuthError::BadCredentials => tracing::info!("chat line with bad credentials"),
                AuthError::Backend(status) => tracing::warn!(%status, "chat login failed"),
            }
            conns.counters.error("line");
            None
        }
    }
}

async fn send_to(
    shared: &Shared,
    session: &UserSession,
    group: i64,
    text: &str,
    key: &str,
) -> Result<(), Status> {
    let request = session
        .request(SendMessageRequest {
            to: Some(send_message_request::To::ToGroupId(group)),
            kind: MessageKind::Text.into(),
            text: text.to_owned(),
            client_message_id: key.to_owned(),
            ..Default::default()
        })
        .await?;
    shared.backend.messaging().send_message(request).await?;
    Ok(())
}
