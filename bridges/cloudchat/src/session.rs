//! One client: requests become canonical calls made as the logged-in user; while a WebSocket
//! is bound to a user, that user's `Subscribe` stream becomes the protocol's pushes.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::extract::ws::{Message as WsMessage, WebSocket};
use rosetta_bridge_kit::{Backend, Live, OnClose, UserSession, end_login};
use rosetta_proto::{
    account::v1::{
        ExchangeLegacyTokenRequest, GetMyProfileRequest, IssueLegacyTokenRequest,
        LegacyTokenFormat, LoginRequest, LoginResponse, LookupUserRequest, PasswordScheme,
        RegisterRequest, SearchUsersRequest, UpdateProfileRequest, User, login_request::Identifier,
        search_users_request::Query,
    },
    common::v1::{ConversationRef, PageRequest, UserRef, conversation_ref, user_ref},
    files::v1::{UploadMetadata, UploadRequest, Visibility, upload_request::Part},
    messaging::v1::{
        ClearHistoryRequest, GetPresenceRequest, ListMessagesRequest, MarkReadRequest, Message,
        MessageKind, SendMessageRequest, SetPresenceRequest, SubscribeRequest, event, message,
        subscribe_response,
    },
    social::v1::{
        Direction, FriendRequest, ListContactsRequest, ListFriendRequestsRequest, PresenceStatus,
        RemoveFriendRequest, RequestState, RespondFriendRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request,
    },
};
use serde_json::{Value, json};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic_types::StatusExt as _;
use tracing::Instrument as _;

use crate::{
    Shared,
    codec::{
        self, ContentKind, DecodeError, FriendRequestView, MessageView, Request, RequestStatus,
    },
};

/// Pushes waiting for a slow client; the event stream waits when it is full.
const PUSH_QUEUE: usize = 256;
/// Page size for the listings that the protocol returns whole.
const PAGE: u32 = 500;
/// At most this many pages of one listing (contacts, requests, history) per reply.
const MAX_PAGES: usize = 20;
const DEFAULT_AVATAR: &str = "default.png";
const TOKEN_PROTOCOL: &str = "cloudchat";
/// Wait before subscribing again after the event stream broke.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// How long a login waits for its event stream to be live before answering anyway: well under
/// the Angular client's 5 s login timeout. A later stream loses nothing that happens after it
/// registered with the service, and its resubscriptions resume after the last event seen.
const LIVE_PATIENCE: Duration = Duration::from_secs(3);
/// How long a closing socket waits to show its user offline (a shutdown waits for it).
const SIGN_OUT_PATIENCE: Duration = Duration::from_secs(5);

const NOT_LOGGED_IN: &str = "请先登录";
const NOT_YOU: &str = "用户身份不符";
/// The failure text of a login over HTTP while HTTP sessions are off.
const HTTP_OFF: &str = "服务器未开启 HTTP 登录";
/// The failure text of a change of user name or e-mail proven by the address alone.
const NOT_BY_ADDRESS: &str = "此连接不能修改用户名或邮箱";

/// A frame to send, with its type name for the counters.
pub(crate) type Out = (&'static str, String);

pub(crate) enum Outcome {
    /// Not a message of this protocol: no reply on the WebSocket, 400 on HTTP.
    Illegal,
    Replies(Vec<Out>),
}

/// Where the pushes of each user's bound WebSockets on this instance go: a reply meant for
/// the user's WebSocket to a request that came over HTTP (CONTACT_ADDED after an HTTP accept).
pub(crate) type Sockets = Mutex<HashMap<i64, Vec<mpsc::Sender<Out>>>>;

/// A WebSocket bound to a user: the session and the task turning its events into pushes.
struct Bound {
    session: Arc<UserSession>,
    events: Option<JoinHandle<()>>,
    proof: Proof,
    /// This WebSocket counted among the user's bound ones on this instance (the kit's count,
    /// which also holds a new socket back while the last one's sign-out is under way).
    live: Option<Live>,
}

/// What shows that a connection's requests come from its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// A password or token given on this WebSocket.
    Credentials,
    /// Only the client's address: an HTTP request, or a WebSocket bound with HDL_INFO to an
    /// HTTP login of its address. Anybody behind that address could send the request, so it
    /// may act in the user's conversations but never change who the user is.
    Address,
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Some(events) = &self.events {
            events.abort();
        }
    }
}

/// A client connection (a WebSocket, or one HTTP request).
pub(crate) struct Conn {
    shared: Arc<Shared>,
    /// The services, acting for this client's address.
    backend: Backend,
    peer: IpAddr,
    /// Where pushes go; `None` for HTTP.
    pushes: Option<mpsc::Sender<Out>>,
    bound: Option<Bound>,
}

/// Serves one WebSocket until it closes or the bridge shuts down.
pub(crate) async fn websocket(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    peer: IpAddr,
    closing: CancellationToken,
) {
    let counters = shared.counters;
    counters.connection_opened();
    let (push_tx, mut push_rx) = mpsc::channel::<Out>(PUSH_QUEUE);
    let mut conn = Conn {
        backend: shared.backend.for_client(peer),
        shared,
        peer,
        pushes: Some(push_tx),
        bound: None,
    };
    'serve: loop {
        tokio::select! {
            () = closing.cancelled() => break,
            Some((kind, text)) = push_rx.recv() => {
                counters.frame_out(kind);
                if socket.send(WsMessage::Text(text.into())).await.is_err() {
                    break;
                }
            }
            received = socket.recv() => match received {
                Some(Ok(WsMessage::Text(text))) => {
                    // Boxed so that the handlers' state is allocated only while they run,
                    // not kept in every idle connection's task.
                    if let Outcome::Replies(replies) = Box::pin(conn.on_message(text.as_str())).await {
                        for (kind, reply) in replies {
                            counters.frame_out(kind);
                            if socket.send(WsMessage::Text(reply.into())).await.is_err() {
                                break 'serve;
                            }
                        }
                    }
                }
                // The clients send text only; a binary frame is not a message of the protocol.
                Some(Ok(WsMessage::Binary(_))) => counters.error("BINARY"),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    Box::pin(conn.unbind(true)).await;
    counters.connection_closed();
}

impl Conn {
    /// The context of one HTTP request from `peer`.
    pub(crate) fn http(shared: Arc<Shared>, peer: IpAddr) -> Self {
        Self {
            backend: shared.backend.for_client(peer),
            shared,
            peer,
            pushes: None,
            bound: None,
        }
    }

    /// Handles one message (a text frame or an HTTP body).
    pub(crate) async fn on_message(&mut self, text: &str) -> Outcome {
        let counters = self.shared.counters;
        let request = match codec::decode(text) {
            Ok(request) => request,
            Err(DecodeError::BadField { kind, field }) => {
                counters.frame_in(kind);
                counters.error(kind);
                tracing::debug!(command = kind, field, "bad field");
                // A failed send still echoes its tempId, which the client matches it by.
                let temp_id = match kind {
                    "SEND_MESSAGE" | "SEND_FILE" | "SEND_IMAGE" => codec::temp_id_of(text),
                    _ => String::new(),
                };
                return match codec::failure_kind(kind) {
                    Some(failure) => Outcome::Replies(vec![(
                        failure,
                        failure_reply(failure, &temp_id, "消息格式错误"),
                    )]),
                    None => Outcome::Replies(Vec::new()),
                };
            }
            Err(err) => {
                counters.error("ILLEGAL_MSG");
                tracing::debug!(?err, "illegal message");
                return Outcome::Illegal;
            }
        };
        let kind = request.kind();
        counters.frame_in(kind);
        let span = tracing::info_span!("frame", command = kind);
        let replies = self.handle(request).instrument(span).await;
        Outcome::Replies(replies)
    }

    /// The session acting for this request: the WebSocket's bound user, or for HTTP the
    /// session this address opened for the payload's user.
    fn session_for(&self, actor: Option<i64>) -> Option<Arc<UserSession>> {
        if let Some(bound) = &self.bound {
            return Some(bound.session.clone());
        }
        if self.pushes.is_none() {
            return self.shared.http.recall(self.peer, actor);
        }
        None
    }

    /// What shows that this request comes from the user of `session_for`.
    fn proof(&self) -> Proof {
        self.bound.as_ref().map_or(Proof::Address, |b| b.proof)
    }

    async fn handle(&mut self, request: Request) -> Vec<Out> {
        let kind = request.kind();
        // The type's failure reply; a refused send still names its tempId, which the client
        // matches it by.
        let fail = |request: &Request, error: &str| -> Vec<Out> {
            self.shared.counters.error(kind);
            let temp_id = match request {
                Request::SendMessage { temp_id, .. } | Request::SendFile { temp_id, .. } => {
                    temp_id.as_str()
                }
                _ => "",
            };
            match codec::failure_kind(kind) {
                Some(failure) => vec![(failure, failure_reply(failure, temp_id, error))],
                None => Vec::new(),
            }
        };
        match request {
            // Without HTTP sessions an HTTP login could not be used by anything after it.
            Request::Login { .. } | Request::LoginByToken { .. } | Request::Register { .. }
                if self.pushes.is_none() && !self.shared.http.enabled() =>
            {
                fail(&request, HTTP_OFF)
            }
            Request::Login { username, password } => self.login(username, password).await,
            Request::LoginByToken { username, token } => self.login_by_token(username, token).await,
            Request::Register {
                username,
                password,
                email,
            } => self.register(username, password, email).await,
            Request::HdlInfo { user_id } => self.hdl_info(user_id).await,
            Request::AcceptFriendRequest { id } if self.pushes.is_none() => {
                self.answer_over_http(id, true).await
            }
            Request::RefuseFriendRequest { id } if self.pushes.is_none() => {
                self.answer_over_http(id, false).await
            }
            Request::SearchById { user_id } => {
                self.search(Query::UserId(user_id), self.session_for(None))
                    .await
            }
            Request::SearchByName { username } => {
                let name = username.trim().to_owned();
                self.search(Query::Name(name), self.session_for(None)).await
            }
            other => {
                let actor = other.actor();
                let Some(session) = self.session_for(actor) else {
                    return fail(&other, NOT_LOGGED_IN);
                };
                if actor.is_some_and(|id| id != session.user_id()) {
                    return fail(&other, NOT_YOU);
                }
                let result = self.act(&session, self.proof(), other).await;
                result.unwrap_or_else(|(error, temp_id)| {
                    self.shared.counters.error(kind);
                    match codec::failure_kind(kind) {
                        Some(failure) => vec![(failure, failure_reply(failure, &temp_id, &error))],
                        None => Vec::new(),
                    }
                })
            }
        }
    }

    /// Commands of a logged-in user (whose ids in the payload were checked).
    async fn act(
        &mut self,
        session: &Arc<UserSession>,
        proof: Proof,
        request: Request,
    ) -> Result<Vec<Out>, (String, String)> {
        let me = session.user_id();
        let backend = session.backend().clone();
        // Failure text for the protocol's failure reply, with no tempId.
        let e = |text: &str| (text.to_owned(), String::new());
        match request {
            Request::UpdateProfile {
                username,
                email,
                avatar,
                ..
            } => {
                // Compared with the stored profile, not the one at login: a change back to the
                // login value is a change too. Unchanged fields are left out (a user name "taken"
                // by its own owner would be refused).
                let current = async {
                    let request = session.request(GetMyProfileRequest {}).await?;
                    backend.account().get_my_profile(request).await
                }
                .await
                .map_err(|_| e(PROFILE_FAILED))?
                .into_inner();
                let changed =
                    |new: Option<String>, old: &str| new.filter(|v| !v.is_empty() && v != old);
                let update = UpdateProfileRequest {
                    username: changed(username, &current.username),
                    email: changed(email, &current.email),
                    avatar: changed(avatar, &current.avatar),
                    ..Default::default()
                };
                if proof == Proof::Address && (update.username.is_some() || update.email.is_some())
                {
                    return Err(e(NOT_BY_ADDRESS));
                }
                let call = |update: UpdateProfileRequest| async {
                    let request = session.request(update).await?;
                    backend.account().update_profile(request).await
                };
                let user = match call(update.clone()).await {
                    // A new e-mail needs a code sent to it, which this protocol cannot carry:
                    // the other fields still change, and the reply says the e-mail did not.
                    Err(status) if reason_of(&status).as_deref() == Some("CODE_REQUIRED") => {
                        let rest = UpdateProfileRequest {
                            email: None,
                            ..update
                        };
                        call(rest).await.map_err(|_| e(PROFILE_FAILED))?;
                        return Err(e(EMAIL_NEEDS_CODE));
                    }
                    other => other.map_err(|_| e(PROFILE_FAILED))?.into_inner(),
                };
                // The real server echoed the stored password here; the bridge never does.
                let payload = json!({
                    "userId": user.id,
                    "username": user.username,
                    "password": "",
                    "email": user.email,
                    "avatar": avatar_of(&user),
                });
                Ok(vec![reply("PROFILE_UPDATED_SUCCESS", payload)])
            }
            Request::Logout { .. } => {
                // Offline now, not when presence times out; the session can still say so.
                sign_out(session).await;
                if let Err(status) = session.logout().await {
                    tracing::debug!(%status, "logout");
                }
                self.shared.http.forget(self.peer, me);
                self.unbind(false).await;
                Ok(Vec::new())
            }
            Request::LoadContacts { .. } => {
                let mut contacts = Vec::new();
                let mut token = String::new();
                for _ in 0..MAX_PAGES {
                    let page = backend
                        .social()
                        .list_contacts(
                            session
                                .request(ListContactsRequest {
                                    page: Some(page(&token)),
                                })
                                .await
                                .map_err(|_| e(FAILED))?,
                        )
                        .await
                        .map_err(|_| e(FAILED))?
                        .into_inner();
                    for c in page.contacts {
                        let user = c.user.unwrap_or_default();
                        let online = c
                            .presence
                            .is_some_and(|p| p.status == PresenceStatus::Online as i32);
                        contacts.push(codec::contact(
                            user.id,
                            &user.username,
                            avatar_of(&user),
                            online,
                        ));
                    }
                    token = page.page.map(|p| p.next_page_token).unwrap_or_default();
                    if token.is_empty() {
                        break;
                    }
                }
                Ok(vec![reply(
                    "CONTACTS_LOADED",
                    json!({"contacts": contacts}),
                )])
            }
            Request::LoadFriendRequests { .. } => {
                let mut requests = Vec::new();
                let mut token = String::new();
                for _ in 0..MAX_PAGES {
                    let list = ListFriendRequestsRequest {
                        direction: Direction::Both as i32,
                        include_answered: true,
                        page: Some(page(&token)),
                    };
                    let page = backend
                        .social()
                        .list_friend_requests(session.request(list).await.map_err(|_| e(FAILED))?)
                        .await
                        .map_err(|_| e(FAILED))?
                        .into_inner();
                    requests.extend(page.requests.iter().map(friend_request_value));
                    token = page.page.map(|p| p.next_page_token).unwrap_or_default();
                    if token.is_empty() {
                        break;
                    }
                }
                Ok(vec![reply(
                    "FRIEND_REQUEST_LOADED",
                    json!({"requests": requests}),
                )])
            }
            Request::AddFriendRequest(codec::NewFriendRequest { target_id, .. })
            | Request::AddContact { target_id, .. } => {
                let send = SendFriendRequestRequest {
                    to: Some(UserRef {
                        r#ref: Some(user_ref::Ref::Id(target_id)),
                    }),
                    note: String::new(),
                };
                let result = match session.request(send).await {
                    Ok(request) => backend.social().send_friend_request(request).await,
                    Err(status) => Err(status),
                };
                match result {
                    Ok(fr) => Ok(vec![reply(
                        "FRIEND_REQUEST_ADDED",
                        friend_request_value(fr.get_ref()),
                    )]),
                    Err(status) => Err(e(match reason_of(&status).as_deref() {
                        Some("ALREADY_FRIENDS") => "你和 TA 已经是好友了",
                        Some("REQUEST_PENDING") => "已向 TA 发送过好友请求",
                        Some("REVERSE_REQUEST_PENDING") => "已收到过 TA 发来的好友请求",
                        _ => "数据库操作失败",
                    })),
                }
            }
            Request::AcceptFriendRequest { id } | Request::RefuseFriendRequest { id } => {
                let accept = matches!(request, Request::AcceptFriendRequest { .. });
                let fr = respond(session, id, accept)
                    .await
                    .map_err(|status| e(respond_failure(&status, accept)))?;
                Ok(answered(session, id, accept, fr).await)
            }
            Request::DeleteContact { target_id, .. } => {
                let remove = RemoveFriendRequest { user_id: target_id };
                let removed = backend
                    .social()
                    .remove_friend(
                        session
                            .request(remove)
                            .await
                            .map_err(|_| e(FRIENDS_FAILED))?,
                    )
                    .await
                    .map_err(|_| e(FRIENDS_FAILED))?
                    .into_inner()
                    .removed;
                if !removed {
                    return Err(e("你和 TA 不是好友"));
                }
                Ok(vec![reply(
                    "CONTACT_DELETED",
                    json!({"targetId": target_id}),
                )])
            }
            Request::LoadMessages { target_id, .. } => {
                let messages = history(session, target_id).await.map_err(|status| {
                    tracing::debug!(%status, "history");
                    e(FAILED)
                })?;
                Ok(vec![reply(
                    "MESSAGES_LOADED",
                    json!({"targetId": target_id, "messages": messages}),
                )])
            }
            Request::SendMessage {
                temp_id,
                receiver_id,
                content,
                ..
            } => {
                let send = SendMessageRequest {
                    to: Some(
                        rosetta_proto::messaging::v1::send_message_request::To::ToUserId(
                            receiver_id,
                        ),
                    ),
                    kind: MessageKind::Text as i32,
                    text: content,
                    client_message_id: client_message_id(),
                    ..Default::default()
                };
                send_message(session, send, temp_id).await
            }
            Request::SendFile {
                temp_id,
                receiver_id,
                name,
                content,
                image,
                ..
            } => {
                let conversation = ConversationRef {
                    r#ref: Some(conversation_ref::Ref::UserId(receiver_id)),
                };
                let file_id = upload(session, &name, content.into_bytes(), Some(conversation))
                    .await
                    .map_err(|status| {
                        tracing::debug!(%status, "upload");
                        (SEND_FAILED.to_owned(), temp_id.clone())
                    })?;
                let send = SendMessageRequest {
                    to: Some(
                        rosetta_proto::messaging::v1::send_message_request::To::ToUserId(
                            receiver_id,
                        ),
                    ),
                    kind: if image {
                        MessageKind::Image
                    } else {
                        MessageKind::File
                    } as i32,
                    text: name,
                    file_id,
                    client_message_id: client_message_id(),
                    ..Default::default()
                };
                send_message(session, send, temp_id).await
            }
            Request::UploadFile { path, data } => {
                let name = path
                    .rsplit(['/', '\\'])
                    .next()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("upload");
                match upload(session, name, data.into_bytes(), None).await {
                    Ok(_) => Ok(vec![reply("FILE_UPLOADED", json!({"filePath": path}))]),
                    Err(status) => {
                        tracing::debug!(%status, "upload");
                        self.shared.counters.error("UPLOAD_FILE");
                        Ok(vec![reply(
                            "FILE_UPLOADED_FAILED",
                            json!({"filePath": path, "error": "文件上传失败"}),
                        )])
                    }
                }
            }
            Request::MarkRead { target_id, .. } => {
                let mark = MarkReadRequest {
                    conversation: Some(private(target_id)),
                    up_to_seq: 0,
                };
                let result = match session.request(mark).await {
                    Ok(request) => backend.messaging().mark_read(request).await.map(drop),
                    Err(status) => Err(status),
                };
                result.map_err(|status| {
                    tracing::debug!(%status, "mark read");
                    e(FAILED)
                })?;
                Ok(Vec::new())
            }
            Request::ClearMessages { user_id, target_id } => {
                let clear = ClearHistoryRequest {
                    conversation: Some(private(target_id)),
                };
                let result = match session.request(clear).await {
                    Ok(request) => backend.messaging().clear_history(request).await.map(drop),
                    Err(status) => Err(status),
                };
                result.map_err(|status| {
                    tracing::debug!(%status, "clear history");
                    e(FAILED)
                })?;
                Ok(vec![reply(
                    "MESSAGES_CLEARD",
                    json!({"userId": user_id, "targetId": target_id}),
                )])
            }
            // Handled before a session is needed.
            Request::Login { .. }
            | Request::LoginByToken { .. }
            | Request::Register { .. }
            | Request::SearchById { .. }
            | Request::SearchByName { .. }
            | Request::HdlInfo { .. } => Ok(Vec::new()),
        }
    }

    async fn login(&mut self, username: String, password: String) -> Vec<Out> {
        let backend = self.backend.clone();
        let login = LoginRequest {
            identifier: Some(Identifier::Username(username.clone())),
            password,
            password_scheme: PasswordScheme::Plain as i32,
            client: self.client(),
        };
        match backend.login(login).await {
            Ok(response) => {
                self.opened(response.into_inner(), "LOGIN_SUCCESS", None)
                    .await
            }
            Err(status) => {
                self.shared.counters.error("LOGIN");
                let error = match reason_of(&status).as_deref() {
                    Some("BAD_CREDENTIALS") if !self.user_exists(username).await => "用户不存在",
                    Some("BAD_CREDENTIALS") => "密码错误",
                    Some("THROTTLED") => "尝试次数过多，请稍后再试",
                    _ => "登录失败，请重试",
                };
                vec![login_failure(error)]
            }
        }
    }

    async fn login_by_token(&mut self, username: String, token: String) -> Vec<Out> {
        let exchange = ExchangeLegacyTokenRequest {
            protocol: TOKEN_PROTOCOL.into(),
            user: Some(UserRef {
                r#ref: Some(user_ref::Ref::Username(username)),
            }),
            token,
            rotate: true,
            format: LegacyTokenFormat::Printable as i32,
            client: self.client(),
        };
        match self.backend.exchange_legacy_token(exchange).await {
            Ok(response) => {
                let response = response.into_inner();
                let token = response.legacy_token.clone();
                self.opened(response, "LOGIN_SUCCESS", Some(token)).await
            }
            Err(status) => {
                tracing::debug!(%status, "token login");
                self.shared.counters.error("LOGIN_BY_TOKEN");
                vec![login_failure("令牌已失效，请重新登录")]
            }
        }
    }

    async fn register(&mut self, username: String, password: String, email: String) -> Vec<Out> {
        let backend = self.backend.clone();
        let failure = |counters: rosetta_bridge_kit::Counters, error: &str| {
            counters.error("REGISTER");
            vec![(
                "REGISTER_FAILURE",
                failure_reply("REGISTER_FAILURE", "", error),
            )]
        };
        let register = RegisterRequest {
            username: username.clone(),
            email,
            password: password.clone(),
            password_scheme: PasswordScheme::Plain as i32,
            avatar: DEFAULT_AVATAR.into(),
            ..Default::default()
        };
        if let Err(status) = backend.account().register(register).await {
            let error = match reason_of(&status).as_deref() {
                Some("USERNAME_TAKEN") => "用户名已存在",
                Some("EMAIL_TAKEN") => "邮箱已存在",
                _ => "注册失败，请检查用户名和邮箱",
            };
            return failure(self.shared.counters, error);
        }
        let login = LoginRequest {
            identifier: Some(Identifier::Username(username)),
            password,
            password_scheme: PasswordScheme::Plain as i32,
            client: self.client(),
        };
        match backend.login(login).await {
            Ok(response) => {
                self.opened(response.into_inner(), "REGISTER_SUCCESS", None)
                    .await
            }
            Err(_) => failure(self.shared.counters, "注册失败，请重试"),
        }
    }

    /// A session was opened: give it a CloudChat token (unless the token login already
    /// rotated one), bind the WebSocket or remember it for this HTTP client, and reply.
    async fn opened(
        &mut self,
        response: LoginResponse,
        success: &'static str,
        token: Option<String>,
    ) -> Vec<Out> {
        let failure = if success == "REGISTER_SUCCESS" {
            "REGISTER_FAILURE"
        } else {
            "LOGIN_FAILURE"
        };
        let session = Arc::new(UserSession::new(self.shared.backend.clone(), response));
        let token = match token.filter(|t| !t.is_empty()) {
            Some(token) => token,
            None => match issue_token(&session).await {
                Ok(token) => token,
                Err(status) => {
                    tracing::warn!(%status, "legacy token");
                    self.shared.counters.error(success);
                    return vec![(failure, failure_reply(failure, "", "登录失败，请重试"))];
                }
            },
        };
        let user = session.user().clone();
        if self.pushes.is_some() {
            self.bind(session, Proof::Credentials).await;
        } else {
            self.shared.http.remember(self.peer, session);
        }
        let payload = codec::session_user(
            user.id,
            &user.username,
            &user.email,
            avatar_of(&user),
            &token,
        );
        vec![reply(success, payload)]
    }

    /// HDL_INFO: the HarmonyOS client binds its WebSocket to the session it opened over HTTP
    /// from the same address.
    async fn hdl_info(&mut self, user_id: i64) -> Vec<Out> {
        if self.pushes.is_none() {
            // The real server had no HTTP handler for it: 200 with an empty body.
            return Vec::new();
        }
        let bound_to = self.bound.as_ref().map(|b| b.session.user_id());
        if bound_to != Some(user_id) {
            // Only a live HTTP login of this address (none unless HTTP sessions are on).
            let Some(session) = self.shared.http.recall(self.peer, Some(user_id)) else {
                self.shared.counters.error("HDL_INFO");
                return Vec::new();
            };
            self.bind(session, Proof::Address).await;
        }
        vec![reply("HDL_GOT", json!({"userId": user_id}))]
    }

    /// ACCEPT / REFUSE over HTTP name only the request, so they act as the session this
    /// address opened for the request's recipient (the service finds a request for its
    /// recipient only, so at most one session matches); never simply the newest one.
    async fn answer_over_http(&self, id: i64, accept: bool) -> Vec<Out> {
        let kind = if accept {
            "ACCEPT_FRIEND_REQUEST"
        } else {
            "REFUSE_FRIEND_REQUEST"
        };
        let sessions = self.shared.http.sessions_at(self.peer);
        let mut error = NOT_LOGGED_IN;
        for session in sessions {
            match respond(&session, id, accept).await {
                Ok(fr) => {
                    let replies = answered(&session, id, accept, fr).await;
                    // HTTP answers only the first; the rest go to the accepter's WebSockets.
                    for out in replies.iter().skip(1) {
                        post_to_sockets(&self.shared, session.user_id(), out);
                    }
                    return replies;
                }
                Err(status) => {
                    error = respond_failure(&status, accept);
                    if error != NO_SUCH_REQUEST {
                        break;
                    }
                }
            }
        }
        self.shared.counters.error(kind);
        codec::failure_kind(kind)
            .map(|failure| vec![(failure, failure_reply(failure, "", error))])
            .unwrap_or_default()
    }

    async fn search(&self, query: Query, session: Option<Arc<UserSession>>) -> Vec<Out> {
        let Some(session) = session else {
            return vec![reply("SEARCH_FOR_USER_RESULT", json!({"users": []}))];
        };
        let search = SearchUsersRequest {
            query: Some(query),
            page: Some(PageRequest {
                page_size: PAGE,
                page_token: String::new(),
            }),
        };
        let found = match session.request(search).await {
            Ok(request) => session.backend().account().search_users(request).await,
            Err(status) => Err(status),
        };
        let users = match found {
            Ok(found) => found.into_inner().users,
            Err(status) => {
                tracing::debug!(%status, "search");
                self.shared.counters.error("SEARCH");
                Vec::new()
            }
        };
        let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
        let online = online_among(&session, &ids).await;
        let users: Vec<Value> = users
            .iter()
            .map(|u| codec::contact(u.id, &u.username, avatar_of(u), online.contains(&u.id)))
            .collect();
        vec![reply("SEARCH_FOR_USER_RESULT", json!({"users": users}))]
    }

    /// Binds this WebSocket to `session` and starts turning its events into pushes. Returns
    /// once the event stream is live, so that a message sent to the user right after the
    /// reply to their login is pushed too, or after `LIVE_PATIENCE` (the stream keeps coming
    /// up in the background), so that the login is answered before the client gives up.
    async fn bind(&mut self, session: Arc<UserSession>, proof: Proof) {
        // Counted before the old binding is released: a re-login of the same user on this
        // socket must not sign them out.
        let live = self.shared.online.enter(session.user_id()).await;
        self.unbind(true).await;
        let (live_tx, live_rx) = oneshot::channel();
        let events = self.pushes.clone().map(|pushes| {
            tokio::spawn(
                push_events(session.clone(), pushes, live_tx)
                    .instrument(tracing::info_span!("events", user = session.user_id())),
            )
        });
        if events.is_some() && tokio::time::timeout(LIVE_PATIENCE, live_rx).await.is_err() {
            tracing::warn!("event stream not live yet");
        }
        if let Some(pushes) = &self.pushes {
            socket_bound(&self.shared, session.user_id(), pushes.clone());
        }
        self.bound = Some(Bound {
            session,
            events,
            proof,
            live: Some(live),
        });
    }

    /// Stops this WebSocket's pushes; the user's last bound socket on this instance going
    /// away shows them offline (`sign_out_last`) rather than when their presence times out.
    async fn unbind(&mut self, sign_out_last: bool) {
        if let Some(mut bound) = self.bound.take() {
            let session = bound.session.clone();
            let live = bound.live.take();
            drop(bound);
            if let Some(pushes) = &self.pushes {
                socket_unbound(&self.shared, session.user_id(), pushes);
            }
            // The session stays: HTTP requests of the same login may still use it.
            if let Some(live) = live.filter(|_| sign_out_last) {
                end_login(live, &session, OnClose::KeepSession).await;
            }
        }
    }

    /// Whether a login name belongs to anybody, to tell "no such user" from "wrong password".
    /// Looking users up takes a session, so without one on this connection the answer is yes.
    async fn user_exists(&self, username: String) -> bool {
        let Some(session) = self.session_for(None) else {
            return true;
        };
        let lookup = LookupUserRequest {
            user: Some(UserRef {
                r#ref: Some(user_ref::Ref::Username(username)),
            }),
        };
        let found = match session.request(lookup).await {
            Ok(request) => session.backend().account().lookup_user(request).await,
            Err(status) => Err(status),
        };
        !matches!(found, Err(status) if status.code() == tonic::Code::NotFound)
    }

    fn client(&self) -> String {
        format!("bridge-cloudchat {}", self.peer)
    }
}

const FAILED: &str = "数据库操作失败";
const PROFILE_FAILED: &str = "更新 users 数据表失败";
/// An e-mail change over this protocol: it cannot carry the code sent to the new address.
const EMAIL_NEEDS_CODE: &str = "修改邮箱需要验证码，邮箱未修改";
const FRIENDS_FAILED: &str = "数据表 friends 操作失败";
const SEND_FAILED: &str = "messages 数据表更新失败";
const NO_SUCH_REQUEST: &str = "该条好友请求不存在";

/// The machine-readable reason of a canonical error.
fn reason_of(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

fn reply(kind: &'static str, payload: Value) -> Out {
    (kind, codec::message(kind, payload))
}

fn login_failure(error: &str) -> Out {
    ("LOGIN_FAILURE", codec::failure("LOGIN_FAILURE", error))
}

/// A failure reply; MESSAGE_SEND_FAILED and FILE_UPLOADED_FAILED carry their key first.
fn failure_reply(failure: &'static str, temp_id: &str, error: &str) -> String {
    match failure {
        "MESSAGE_SEND_FAILED" => {
            codec::message(failure, json!({"tempId": temp_id, "error": error}))
        }
        "FILE_UPLOADED_FAILED" => {
            codec::message(failure, json!({"filePath": temp_id, "error": error}))
        }
        _ => codec::failure(failure, error),
    }
}

fn avatar_of(user: &User) -> &str {
    if user.avatar.is_empty() {
        DEFAULT_AVATAR
    } else {
        &user.avatar
    }
}

fn page(token: &str) -> PageRequest {
    PageRequest {
        page_size: PAGE,
        page_token: token.to_owned(),
    }
}

fn private(user_id: i64) -> ConversationRef {
    ConversationRef {
        r#ref: Some(conversation_ref::Ref::UserId(user_id)),
    }
}

/// The idempotency key of a send: always a fresh one. The original server stored every send,
/// and a client may repeat a tempId (a counter restarting with the app); the tempId is only
/// echoed.
fn client_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Lists a WebSocket's push queue under the user it is bound to.
fn socket_bound(shared: &Shared, user: i64, pushes: mpsc::Sender<Out>) {
    if let Ok(mut sockets) = shared.sockets.lock() {
        sockets.entry(user).or_default().push(pushes);
    }
}

/// Takes a WebSocket's push queue off its user's list.
fn socket_unbound(shared: &Shared, user: i64, pushes: &mpsc::Sender<Out>) {
    if let Ok(mut sockets) = shared.sockets.lock()
        && let Some(list) = sockets.get_mut(&user)
    {
        list.retain(|p| !p.same_channel(pushes));
        if list.is_empty() {
            sockets.remove(&user);
        }
    }
}

/// Queues `out` on every WebSocket bound to `user` on this instance; a socket whose queue is
/// full (a client not reading) misses it rather than holding up the HTTP reply.
fn post_to_sockets(shared: &Shared, user: i64, out: &Out) {
    let Ok(sockets) = shared.sockets.lock() else {
        return;
    };
    for pushes in sockets.get(&user).into_iter().flatten() {
        if pushes.try_send(out.clone()).is_err() {
            tracing::debug!(user, kind = out.0, "push queue full or closed");
        }
    }
}

/// Shows the user offline to their contacts now (SetPresence OFFLINE); a later Subscribe of
/// theirs shows them online again.
async fn sign_out(session: &UserSession) {
    let offline = async {
        let request = session
            .request(SetPresenceRequest {
                status: PresenceStatus::Offline.into(),
            })
            .await?;
        session.backend().messaging().set_presence(request).await
    };
    match tokio::time::timeout(SIGN_OUT_PATIENCE, offline).await {
        Ok(Ok(_)) => {}
        Ok(Err(status)) => tracing::debug!(%status, "sign out"),
        Err(_) => tracing::debug!("sign out timed out"),
    }
}

async fn issue_token(session: &UserSession) -> Result<String, Status> {
    let issue = IssueLegacyTokenRequest {
        protocol: TOKEN_PROTOCOL.into(),
        format: LegacyTokenFormat::Printable as i32,
    };
    let response = session
        .backend()
        .account()
        .issue_legacy_token(session.request(issue).await?)
        .await?;
    Ok(response.into_inner().token)
}

/// The users among `ids` that the session's user sees online.
async fn online_among(session: &UserSession, ids: &[i64]) -> HashSet<i64> {
    if ids.is_empty() {
        return HashSet::new();
    }
    let get = GetPresenceRequest {
        user_ids: ids.iter().copied().take(500).collect(),
    };
    let result = match session.request(get).await {
        Ok(request) => session.backend().messaging().get_presence(request).await,
        Err(status) => Err(status),
    };
    match result {
        Ok(response) => response
            .into_inner()
            .presences
            .into_iter()
            .filter(|p| p.status == PresenceStatus::Online as i32)
            .map(|p| p.user_id)
            .collect(),
        Err(status) => {
            tracing::debug!(%status, "presence");
            HashSet::new()
        }
    }
}

async fn send_message(
    session: &UserSession,
    send: SendMessageRequest,
    temp_id: String,
) -> Result<Vec<Out>, (String, String)> {
    let result = match session.request(send).await {
        Ok(request) => session.backend().messaging().send_message(request).await,
        Err(status) => Err(status),
    };
    match result {
        Ok(response) => {
            let message = response.into_inner().message.unwrap_or_default();
            Ok(vec![reply(
                "MESSAGE_RECEIVED_SELF",
                json!({
                    "tempId": temp_id,
                    "id": message.id,
                    "timestamp": codec::ctime(message.sent_at_ms.div_euclid(1000)),
                }),
            )])
        }
        Err(status) => {
            tracing::debug!(%status, "send");
            Err((SEND_FAILED.to_owned(), temp_id))
        }
    }
}

/// Stores `data` in the files service and returns its id.
async fn upload(
    session: &UserSession,
    name: &str,
    data: Vec<u8>,
    conversation: Option<ConversationRef>,
) -> Result<String, Status> {
    let metadata = UploadMetadata {
        name: name.to_owned(),
        size: data.len() as u64,
        visibility: if conversation.is_some() {
            Visibility::Conversation
        } else {
            Visibility::Private
        } as i32,
        conversation,
        ..Default::default()
    };
    let parts = vec![
        UploadRequest {
            part: Some(Part::Metadata(metadata)),
        },
        UploadRequest {
            part: Some(Part::Chunk(data)),
        },
    ];
    let request = session.request(tokio_stream::iter(parts)).await?;
    let info = session.backend().files().upload(request).await?;
    Ok(info.into_inner().id)
}

/// RespondFriendRequest as `session`'s user.
async fn respond(session: &UserSession, id: i64, accept: bool) -> Result<FriendRequest, Status> {
    let respond = RespondFriendRequestRequest {
        request: Some(respond_friend_request_request::Request::RequestId(id)),
        accept,
    };
    let answered = session
        .backend()
        .social()
        .respond_friend_request(session.request(respond).await?)
        .await?;
    Ok(answered.into_inner())
}

/// The failure text of a refused RespondFriendRequest.
fn respond_failure(status: &Status, accept: bool) -> &'static str {
    match reason_of(status).as_deref() {
        Some("NOT_FOUND") => NO_SUCH_REQUEST,
        _ if accept => "联系人列表更新失败",
        _ => "好友请求列表更新失败",
    }
}

/// The replies to the request `id` answered as `fr`: FRIEND_REQUEST_ACCEPTED + CONTACT_ADDED
/// (the requester), or FRIEND_REQUEST_REFUSED.
async fn answered(session: &UserSession, id: i64, accept: bool, fr: FriendRequest) -> Vec<Out> {
    if !accept {
        return vec![reply("FRIEND_REQUEST_REFUSED", json!({"id": id}))];
    }
    let requester = fr.from.unwrap_or_default();
    let online = online_among(session, &[requester.id]).await;
    vec![
        reply("FRIEND_REQUEST_ACCEPTED", json!({"id": id})),
        reply(
            "CONTACT_ADDED",
            codec::contact_added(
                requester.id,
                &requester.username,
                avatar_of(&requester),
                online.contains(&requester.id),
            ),
        ),
    ]
}

/// The whole private conversation with `peer`, oldest first, as `M` objects; a message is
/// `read` up to its reader's read mark.
async fn history(session: &UserSession, peer: i64) -> Result<Vec<Value>, Status> {
    let me = session.user_id();
    let mut messages: Vec<Message> = Vec::new();
    let mut before_seq = 0;
    // (mine, the peer's), from the newest page.
    let mut marks = None;
    for _ in 0..MAX_PAGES {
        let list = ListMessagesRequest {
            conversation: Some(private(peer)),
            before_seq,
            after_seq: 0,
            limit: PAGE,
        };
        let page = session
            .backend()
            .messaging()
            .list_messages(session.request(list).await?)
            .await?
            .into_inner();
        marks.get_or_insert((page.last_read_seq, page.peer_last_read_seq));
        let Some(first) = page.messages.first() else {
            break;
        };
        before_seq = first.seq;
        let mut older = page.messages;
        older.append(&mut messages);
        messages = older;
        if !page.has_more {
            break;
        }
    }
    let (my_mark, peer_mark) = marks.unwrap_or_default();
    Ok(messages
        .iter()
        .map(|m| {
            let mark = if m.sender_id == me {
                peer_mark
            } else {
                my_mark
            };
            message_value(m, mark >= m.seq)
        })
        .collect())
}

fn message_value(m: &Message, read: bool) -> Value {
    let receiver_id = match m.to {
        Some(message::To::ToUserId(id)) => id,
        Some(message::To::ToGroupId(id)) => id,
        None => 0,
    };
    let (kind, content) = match MessageKind::try_from(m.kind) {
        Ok(MessageKind::Image) => (ContentKind::Image, &m.text),
        Ok(MessageKind::File | MessageKind::Audio) => (ContentKind::File, &m.text),
        _ => (ContentKind::Text, &m.text),
    };
    codec::message_object(&MessageView {
        id: m.id,
        sender_id: m.sender_id,
        receiver_id,
        content,
        sent_at_secs: m.sent_at_ms.div_euclid(1000),
        read,
        kind,
    })
}

fn friend_request_value(fr: &FriendRequest) -> Value {
    let from = fr.from.clone().unwrap_or_default();
    let to = fr.to.clone().unwrap_or_default();
    let status = match RequestState::try_from(fr.state) {
        Ok(RequestState::Accepted) => RequestStatus::Accepted,
        Ok(RequestState::Rejected | RequestState::Cancelled) => RequestStatus::Refused,
        _ => RequestStatus::Pending,
    };
    codec::friend_request(&FriendRequestView {
        id: fr.id,
        requester_id: from.id,
        target_id: to.id,
        requester_username: &from.username,
        target_username: &to.username,
        requester_avatar: avatar_of(&from),
        target_avatar: avatar_of(&to),
        status,
    })
}

/// The user's live events as pushes, resubscribing after the last seen event if the stream
/// breaks, until the connection unbinds (the task is aborted).
async fn push_events(
    session: Arc<UserSession>,
    pushes: mpsc::Sender<Out>,
    live: oneshot::Sender<()>,
) {
    let mut live = Some(live);
    let me = session.user_id();
    let mut after_seq: Option<u64> = None;
    loop {
        // Boxed, as the event conversion below: the task waits on its stream nearly all the
        // time and should only hold what that wait needs.
        let stream = Box::pin(async {
            let request = session.request(SubscribeRequest { after_seq }).await?;
            session.backend().messaging().subscribe(request).await
        })
        .await;
        match stream {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    let item = match stream.message().await {
                        Ok(Some(item)) => item,
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(%status, "event stream");
                            break;
                        }
                    };
                    match item.item {
                        Some(subscribe_response::Item::CaughtUp(caught_up)) => {
                            after_seq = Some(after_seq.unwrap_or(0).max(caught_up.head_seq));
                            if let Some(live) = live.take() {
                                let _ = live.send(());
                            }
                        }
                        Some(subscribe_response::Item::Event(event)) => {
                            if event.seq > 0 {
                                after_seq = Some(after_seq.unwrap_or(0).max(event.seq));
                            }
                            for push in Box::pin(pushes_of(&session, me, event.kind)).await {
                                if pushes.send(push).await.is_err() {
                                    return;
                                }
                            }
                        }
                        None => {}
                    }
                }
            }
            Err(status) => tracing::debug!(%status, "subscribe"),
        }
        if pushes.is_closed() {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

/// What an event shows a CloudChat client.
async fn pushes_of(session: &UserSession, me: i64, kind: Option<event::Kind>) -> Vec<Out> {
    match kind {
        Some(event::Kind::Message(m))
            if m.sender_id != me && matches!(m.to, Some(message::To::ToUserId(_))) =>
        {
            vec![reply("MESSAGE_RECEIVED_OTHER", message_value(&m, false))]
        }
        Some(event::Kind::FriendRequestReceived(fr)) => {
            vec![reply("ADD_FRIEND_REQUEST", friend_request_value(&fr))]
        }
        Some(event::Kind::FriendRequestAnswered(fr)) => match RequestState::try_from(fr.state) {
            Ok(RequestState::Accepted) => {
                let target = fr.to.unwrap_or_default();
                let online = online_among(session, &[target.id]).await;
                vec![
                    reply("ACCEPT_FRIEND_REQUEST", json!({"id": fr.id})),
                    reply(
                        "CONTACT_ADDED",
                        codec::contact_added(
                            target.id,
                            &target.username,
                            avatar_of(&target),
                            online.contains(&target.id),
                        ),
                    ),
                ]
            }
            Ok(RequestState::Rejected | RequestState::Cancelled) => {
                vec![reply("REFUSE_FRIEND_REQUEST", json!({"id": fr.id}))]
            }
            _ => Vec::new(),
        },
        Some(event::Kind::FriendRemoved(removed)) if removed.removed_by != me => {
            vec![reply(
                "DELETED_BY_CONTACT",
                json!({"contactId": removed.removed_by}),
            )]
        }
        _ => Vec::new(),
    }
}
