//! Call set-up: the clients exchange their RTP addresses through the server, then talk
//! directly (imps.md §4.9–§4.12).
//!
//! | client / event | canonical | reply / push |
//! |---|---|---|
//! | C_PTP_AUDIO_REQ / C_PTP_VIDEO_REQ | `LookupUser` (unless remembered), `SendSignal(CallInvite)` | none / the refusal's code |
//! | C_PTP_AUDIO_RSP / C_PTP_VIDEO_RSP | `LookupUser` (unless remembered), `SendSignal(CallAnswer)` | none / the refusal's code |
//! | `signal` (call invite) | | S_PTP_AUDIO_REQ / S_PTP_VIDEO_REQ |
//! | `signal` (call answer) | | S_PTP_AUDIO_RSP / S_PTP_VIDEO_RSP |

use rosetta_proto::messaging::v1::{
    CallAnswer, CallInvite, CallMedia, SendSignalRequest, Signal, send_signal_request, signal,
};
use tonic::Status;

use super::{Close, Ctx, replies::refused};
use crate::codec::ServerMessage;

impl Ctx<'_> {
    pub(super) async fn call_invite(
        &mut self,
        friend: &str,
        video: bool,
        ip: String,
        port_: i32,
    ) -> Result<(), Close> {
        self.call_signal(friend, |public_host| {
            send_signal_request::Kind::CallInvite(CallInvite {
                media: media(video).into(),
                private_host: ip,
                private_port: port(port_),
                public_host,
                // Media flows over UDP on the client's RTP port, not its TCP port.
                public_port: port(port_),
            })
        })
        .await
    }

    pub(super) async fn call_answer(
        &mut self,
        friend: &str,
        video: bool,
        accept: bool,
        ip: String,
        port_: i32,
    ) -> Result<(), Close> {
        self.call_signal(friend, |public_host| {
            send_signal_request::Kind::CallAnswer(CallAnswer {
                media: media(video).into(),
                accept,
                private_host: ip,
                private_port: port(port_),
                public_host,
                public_port: port(port_),
            })
        })
        .await
    }

    /// Sends `friend` the signal `kind` builds from the client's public address; a refusal
    /// is answered with its code.
    async fn call_signal(
        &mut self,
        friend: &str,
        kind: impl FnOnce(String) -> send_signal_request::Kind,
    ) -> Result<(), Close> {
        let public_host = self.io.peer.ip().to_canonical().to_string();
        let result = async {
            let to = self.recipient(friend).await?;
            let kind = kind(public_host);
            let sent = self.signal(to.id, kind.clone()).await;
            match self.retry(friend, to, &sent).await? {
                Some(fresh) => self.signal(fresh.id, kind).await,
                None => sent,
            }
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(status) => {
                let code = refused(self.user_id(), "call signal", &status);
                self.io.error(code).await
            }
        }
    }

    async fn signal(&self, to: i64, kind: send_signal_request::Kind) -> Result<(), Status> {
        let request = SendSignalRequest {
            to_user_id: to,
            kind: Some(kind),
        };
        self.session()
            .call(request, |backend, r| async move {
                backend.messaging().send_signal(r).await
            })
            .await?;
        Ok(())
    }

    pub(super) async fn push_signal(&mut self, signal: Signal) -> Result<(), Close> {
        let from = self.name_of(signal.from_user_id).await;
        let message = match signal.kind {
            Some(signal::Kind::CallInvite(invite)) if invite.media == CallMedia::Video as i32 => {
                ServerMessage::VideoInvite {
                    from,
                    private_ip: either(&invite.private_host, &invite.public_host),
                    private_port: wire_port(invite.private_port),
                    public_ip: either(&invite.public_host, &invite.private_host),
                    public_port: wire_port(invite.public_port.max(invite.private_port)),
                }
            }
            Some(signal::Kind::CallInvite(invite)) => ServerMessage::CallInvite {
                from,
                ip: either(&invite.private_host, &invite.public_host),
                port: wire_port(invite.private_port.max(invite.public_port)),
            },
            Some(signal::Kind::CallAnswer(answer)) if answer.media == CallMedia::Video as i32 => {
                ServerMessage::VideoAnswer {
                    from,
                    accept: answer.accept,
                    private_ip: either(&answer.private_host, &answer.public_host),
                    private_port: wire_port(answer.private_port),
                    public_ip: either(&answer.public_host, &answer.private_host),
                    public_port: wire_port(answer.public_port.max(answer.private_port)),
                }
            }
            Some(signal::Kind::CallAnswer(answer)) => ServerMessage::CallAnswer {
                from,
                accept: answer.accept,
                ip: either(&answer.private_host, &answer.public_host),
                port: wire_port(answer.private_port.max(answer.public_port)),
            },
            // File offers have no IMPS form.
            _ => return Ok(()),
        };
        self.io.send(message).await
    }
}

fn media(video: bool) -> CallMedia {
    if video {
        CallMedia::Video
    } else {
        CallMedia::Audio
    }
}

fn port(port: i32) -> u32 {
    u32::try_from(port)
        .ok()
        .filter(|p| *p <= 65_535)
        .unwrap_or(0)
}

fn wire_port(port: u32) -> i32 {
    i32::try_from(port).unwrap_or(0)
}

/// The first of two addresses that is set.
fn either(first: &str, second: &str) -> String {
    if first.is_empty() { second } else { first }.to_owned()
}
