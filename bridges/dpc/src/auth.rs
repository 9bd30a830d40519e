//! The auth server (9999): login check, SMS code, register; replies `{"op": n, "test": t}`.

use std::{net::SocketAddr, sync::Arc};

use rosetta_bridge_kit::{Backend, Connections};
use rosetta_proto::account::v1::{
    PasswordScheme, RegisterRequest, SendVerificationCodeRequest, VerificationChannel,
    VerificationPurpose,
};
use serde_json::Value;
use tokio::net::TcpStream;
use tracing::Instrument as _;

use crate::{
    Shared,
    codec::{AuthRequest, auth_reply},
    logins::{AuthError, Recheck},
    refusal::{Refusal, refusal},
    wire::{self, FrameReader},
};

/// The login's answer while the server is in maintenance: a `test` the client shows nothing
/// for (dpc.md §3: "any other value: nothing happens"), so the user stays on the login
/// screen, rather than `test 1`'s "wrong user name or password".
pub const MAINTENANCE: i64 = 2;

pub async fn serve(stream: TcpStream, peer: SocketAddr, conns: Connections, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read);
    // The services acting for this client: its address, and its failed logins counted.
    let client = shared.backend.for_client(peer.ip());
    loop {
        let frame = tokio::select! {
            () = conns.closing.cancelled() => break,
            frame = reader.next() => frame,
        };
        // Bad frames close the connection without a reply, as on the original server.
        let request = match frame.map(|f| f.map(|map| AuthRequest::parse(&map))) {
            Ok(Some(Ok(request))) => request,
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                tracing::debug!(?err, "auth request refused");
                conns.counters.error("auth");
                break;
            }
            Err(err) => {
                tracing::debug!(%err, "auth connection refused");
                conns.counters.error("auth");
                break;
            }
        };
        let command = match request {
            AuthRequest::Login { .. } => "login",
            AuthRequest::SmsCode { .. } => "sms_code",
            AuthRequest::Register { .. } => "register",
        };
        conns.counters.frame_in(command);
        let span = tracing::info_span!("frame", command);
        let Some(reply) = handle(request, peer, &client, &shared)
            .instrument(span)
            .await
        else {
            conns.counters.error(command);
            break;
        };
        if wire::send_frame(&mut write, &reply).await.is_err() {
            break;
        }
        conns.counters.frame_out(command);
    }
}

/// The reply, or `None` to close without one (the services could not answer).
async fn handle(
    request: AuthRequest,
    peer: SocketAddr,
    client: &Backend,
    shared: &Shared,
) -> Option<Value> {
    match request {
        AuthRequest::Login {
            user_name,
            password,
        } => match shared
            .logins
            .authenticate(&user_name, &password, peer, client, Recheck::Now)
            .await
        {
            Ok(_) => Some(auth_reply(0, 0)),
            Err(AuthError::BadCredentials) => Some(auth_reply(0, 1)),
            Err(AuthError::Maintenance) => Some(auth_reply(0, MAINTENANCE)),
            Err(AuthError::Backend(status)) => {
                tracing::warn!(%status, "login failed");
                None
            }
        },
        AuthRequest::SmsCode { phone } => {
            let sent = client
                .account()
                .send_verification_code(SendVerificationCodeRequest {
                    channel: VerificationChannel::Phone.into(),
                    target: phone,
                    purpose: VerificationPurpose::Register.into(),
                })
                .await;
            // The client has a dialog for each answer; it always gets one.
            let test = match sent {
                Ok(_) => 0,
                Err(status) => match refusal(&status) {
                    Refusal::PhoneTaken => 3,
                    Refusal::BadInput | Refusal::NameTaken => 2,
                    _ => {
                        tracing::info!(%status, "verification code not sent");
                        1
                    }
                },
            };
            Some(auth_reply(1, test))
        }
        AuthRequest::Register {
            user_name,
            password,
            phone,
            code,
            email,
        } => {
            let registered = client
                .register_legacy(RegisterRequest {
                    username: user_name,
                    email,
                    phone,
                    password,
                    password_scheme: PasswordScheme::Plain.into(),
                    verification_code: code,
                    ..Default::default()
                })
                .await;
            let test = match registered {
                Ok(()) => 0,
                Err(status) => match refusal(&status) {
                    // "User name exists" is the client's only dialog for a refused account.
                    Refusal::NameTaken | Refusal::BadInput => 1,
                    Refusal::CodeNotRequested | Refusal::PhoneTaken => 2,
                    Refusal::CodeWrong => 3,
                    _ => {
                        tracing::warn!(%status, "register failed");
                        return None;
                    }
                },
            };
            Some(auth_reply(2, test))
        }
    }
}
