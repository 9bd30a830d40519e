//! Messages, file offers and the unread listings.
//!
//! | legacy command | canonical call | legacy reply |
//! |---|---|---|
//! | `send_message` (even type private, odd group) | `SendMessage` | `send_message_succ` / `_error` |
//! | `send_file` (HEAD relay form) | `SendSignal` (file offer) | `send_file\|…` |
//! | `get_unread_message` | unread listing + read marks | `unread_message\|…`…, `no_unread_message\|0` |
//! | `get_unread_*_request` | see `social` | |

use rosetta_bridge_kit::UserSession;
use rosetta_proto::messaging::v1::{
    FileOffer, MessageKind, SendMessageRequest, SendSignalRequest, send_message_request::To,
    send_signal_request,
};
use tonic::Status;

use super::{
    Connection,
    login::{Actor, release},
    reasons::{Call, refused},
    social,
};
use crate::{
    codec::{Auth, Command, Id, Reply},
    events::{self, Backlog},
};

/// `send_message|type|uid|to|time|data|token`.
pub(super) async fn send_message(
    session: &UserSession,
    kind: u32,
    to: Id,
    time: String,
    data: String,
) -> Result<Reply, Status> {
    if kind > 3 {
        return Ok(Reply::SendMessageError("消息类型错误！"));
    }
    if data.is_empty() {
        return Ok(Reply::SendMessageError("消息不能为空！"));
    }
    let private = kind.is_multiple_of(2);
    let (to, call) = if private {
        (To::ToUserId(to.value), Call::SendPrivate)
    } else {
        (To::ToGroupId(to.value), Call::SendToGroup)
    };
    let request = SendMessageRequest {
        to: Some(to),
        kind: MessageKind::Text.into(),
        text: data,
        client_message_id: events::client_message_id(kind),
        client_time: time,
        ..Default::default()
    };
    let sent = session
        .call(request, |b, r| async move {
            b.messaging().send_message(r).await
        })
        .await;
    match sent {
        Ok(sent) => Ok(Reply::SendMessageSucc {
            online: !private || sent.recipient_online,
        }),
        Err(status) => refused(call, status),
    }
}

/// `send_file|uid|token|receiver|<rest>`: relayed as a live file offer.
pub(super) async fn send_file(
    session: &UserSession,
    receiver: Id,
    rest: String,
) -> Result<Reply, Status> {
    let mut parts = rest.split('|');
    let host = parts.next().unwrap_or_default().to_owned();
    let port = parts
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    let file_name = parts.next().unwrap_or_default().to_owned();
    let file_size = parts
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let request = SendSignalRequest {
        to_user_id: receiver.value,
        kind: Some(send_signal_request::Kind::FileOffer(FileOffer {
            host,
            port,
            file_name,
            file_size,
            raw: rest,
        })),
    };
    let sent = session
        .call(
            request,
            |b, r| async move { b.messaging().send_signal(r).await },
        )
        .await;
    match sent {
        Ok(_) => Ok(Reply::SendFile { online: true }),
        Err(status) => refused(Call::SendFileOffer, status),
    }
}

impl Connection {
    /// `get_unread_friend_request`, `get_unread_group_request`, `get_unread_message`, with
    /// `uid|token` or bare (this connection's login).
    pub(super) async fn unread(&mut self, command: Command, auth: Option<Auth>) -> bool {
        let actor = match &auth {
            Some(auth) => self.authorize(command, auth).await,
            None => self.own(None).ok_or(command.token_error()),
        };
        let actor = match actor {
            Ok(actor) => actor,
            Err(reply) => return self.fail(command, reply).await,
        };
        let open = match command {
            Command::GetUnreadFriendRequest => {
                let reply = social::unread_friend_requests(actor.session()).await;
                self.answer(command, reply).await
            }
            Command::GetUnreadGroupRequest => {
                let reply = social::unread_group_requests(actor.session()).await;
                self.answer(command, reply).await
            }
            _ => {
                let own = match &actor {
                    Actor::Own(_) => self.current_login(),
                    Actor::Borrowed(_) => None,
                };
                // The marks of messages already pushed are written first, so that none of
                // them is listed again.
                if let Some(login) = own {
                    login.marks.flush().await;
                }
                let backlog = own.map(|login| &login.backlog);
                self.unread_messages(actor.session(), backlog).await
            }
        };
        release(actor).await;
        open
    }

    /// Each stored unread message in its own write, then `no_unread_message|0`; the messages
    /// sent count as read. With this connection's login, the messages it already pushed live
    /// are left out (and marked read too).
    async fn unread_messages(&self, session: &UserSession, backlog: Option<&Backlog>) -> bool {
        let command = Command::GetUnreadMessage;
        let unread = match events::unread(session).await {
            Ok(unread) => unread,
            Err(status) => return self.answer(command, Err(status)).await,
        };
        let pushed = backlog.map(Backlog::pushed).unwrap_or_default();
        for message in unread.iter().filter(|m| !pushed.contains(&m.id)) {
            if !self.send(events::unread_line(message)).await {
                return false;
            }
        }
        let mut read = unread;
        read.extend(backlog.map(Backlog::release).unwrap_or_default());
        events::mark_read(session, &read).await;
        self.send(Reply::NoUnreadMessage).await
    }
}
