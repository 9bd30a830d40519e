//! gRPC handlers: unwrap the request, take identity from the auth layer, call the domain.

use std::sync::Arc;

use rosetta_auth::{Authenticator, BridgeKey, Caller, SessionGuard};
use rosetta_kit::{ApiError, Reason, tasks::Tasks};
use rosetta_proto::messaging::v1::{messaging_service_server::MessagingService, *};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Messaging, Receipt,
    bridge_events::{self, BridgeFeeds},
    conversations::Target,
    stream::SessionCheck,
};

pub struct MessagingGrpc {
    messaging: Arc<Messaging>,
    sessions: Option<Arc<SessionGuard>>,
    /// The `Subscribe` streams' pump tasks; stopping them ends every open stream with
    /// `UNAVAILABLE` (a graceful shutdown waits for open calls, and a stream never ends by
    /// itself).
    streams: Tasks,
    /// The bridge credential and the token check of `BridgeEvents`; without them every
    /// `BridgeEvents` call is refused.
    bridges: Option<(BridgeKey, Authenticator)>,
}

impl MessagingGrpc {
    pub fn new(messaging: Arc<Messaging>, streams: Tasks) -> Self {
        Self {
            messaging,
            sessions: None,
            streams,
            bridges: None,
        }
    }

    /// Ends each `Subscribe` stream once its session is revoked (seen by the process's session
    /// watch, confirmed through the same cache the auth layer uses).
    pub fn with_sessions(self, sessions: Arc<SessionGuard>) -> Self {
        Self {
            sessions: Some(sessions),
            ..self
        }
    }
}

impl MessagingGrpc {
    /// Serves `BridgeEvents` to callers presenting `key`, verifying each feed's access token
    /// with `auth`.
    pub fn with_bridges(self, key: BridgeKey, auth: Authenticator) -> Self {
        Self {
            bridges: Some((key, auth)),
            ..self
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Events buffered per stream between the log/bus and a slow client.
const STREAM_QUEUE: usize = 256;

#[tonic::async_trait]
impl MessagingService for MessagingGrpc {
    async fn send_message(&self, req: Request<SendMessageRequest>) -> Reply<SendMessageResponse> {
        let me = Caller::of(&req)?.user_id;
        Ok(Response::new(
            self.messaging.send(me, req.into_inner()).await?,
        ))
    }

    async fn list_messages(
        &self,
        req: Request<ListMessagesRequest>,
    ) -> Reply<ListMessagesResponse> {
        let me = Caller::of(&req)?.user_id;
        Ok(Response::new(
            self.messaging.list_messages(me, req.into_inner()).await?,
        ))
    }

    async fn list_conversations(
        &self,
        req: Request<ListConversationsRequest>,
    ) -> Reply<ListConversationsResponse> {
        let me = Caller::of(&req)?.user_id;
        let req = req.into_inner();
        Ok(Response::new(
            self.messaging
                .list_conversations(me, req.page.as_ref())
                .await?,
        ))
    }

    async fn get_unread_counts(
        &self,
        req: Request<GetUnreadCountsRequest>,
    ) -> Reply<GetUnreadCountsResponse> {
        let me = Caller::of(&req)?.user_id;
        Ok(Response::new(self.messaging.unread_counts(me).await?))
    }

    async fn mark_read(&self, req: Request<MarkReadRequest>) -> Reply<MarkReadResponse> {
        let me = Caller::of(&req)?.user_id;
        let req = req.into_inner();
        let target = Target::from_ref(req.conversation.as_ref())?;
        let receipt = if req.no_receipt {
            Receipt::Withheld
        } else {
            Receipt::Sent
        };
        let last_read_seq = self
            .messaging
            .mark_read(me, target, req.up_to_seq, receipt)
            .await?;
        Ok(Response::new(MarkReadResponse { last_read_seq }))
    }

    async fn clear_history(
        &self,
        req: Request<ClearHistoryRequest>,
    ) -> Reply<ClearHistoryResponse> {
        let me = Caller::of(&req)?.user_id;
        let target = Target::from_ref(req.get_ref().conversation.as_ref())?;
        let cleared_up_to_seq = self.messaging.clear_history(me, target).await?;
        Ok(Response::new(ClearHistoryResponse { cleared_up_to_seq }))
    }

    async fn recall_message(
        &self,
        req: Request<RecallMessageRequest>,
    ) -> Reply<RecallMessageResponse> {
        let me = Caller::of(&req)?.user_id;
        self.messaging.recall(me, req.get_ref().message_id).await?;
        Ok(Response::new(RecallMessageResponse {}))
    }

    type SubscribeStream = crate::stream::Inbox;

    async fn subscribe(&self, req: Request<SubscribeRequest>) -> Reply<Self::SubscribeStream> {
        let caller = Caller::of(&req)?;
        let session = self
            .sessions
            .clone()
            .map(|guard| SessionCheck::new(guard, &caller.session_id));
        let resume = crate::stream::Resume::from_request(req.get_ref())?;
        let (tx, rx) = crate::stream::outbox(STREAM_QUEUE);
        self.streams.spawn(self.messaging.clone().subscribe(
            caller.user_id,
            resume,
            tx,
            session,
            self.streams.stopping().clone(),
        ));
        Ok(Response::new(rx))
    }

    type BridgeEventsStream = ReceiverStream<Result<BridgeEventsResponse, Status>>;

    async fn bridge_events(
        &self,
        req: Request<Streaming<BridgeEventsRequest>>,
    ) -> Reply<Self::BridgeEventsStream> {
        let Some((_, auth)) = self
            .bridges
            .as_ref()
            .filter(|(key, _)| key.verifies(req.metadata()))
        else {
            return Err(ApiError::denied(
                Reason::BridgeKeyRequired,
                "BridgeEvents is for bridges: present the bridge key",
            )
            .into());
        };
        let feeds = BridgeFeeds {
            messaging: self.messaging.clone(),
            auth: auth.clone(),
            sessions: auth.sessions().clone(),
            tasks: self.streams.clone(),
        };
        let (tx, rx) = mpsc::channel(bridge_events::STREAM_QUEUE);
        self.streams.spawn(feeds.serve(req.into_inner(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn set_presence(&self, req: Request<SetPresenceRequest>) -> Reply<SetPresenceResponse> {
        let me = Caller::of(&req)?.user_id;
        self.messaging
            .set_presence(me, req.get_ref().status)
            .await?;
        Ok(Response::new(SetPresenceResponse {}))
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Reply<HeartbeatResponse> {
        let me = Caller::of(&req)?.user_id;
        self.messaging
            .heartbeat(me, req.into_inner().location)
            .await?;
        Ok(Response::new(HeartbeatResponse {}))
    }

    async fn get_presence(&self, req: Request<GetPresenceRequest>) -> Reply<GetPresenceResponse> {
        let me = Caller::of(&req)?.user_id;
        let presences = self
            .messaging
            .get_presence(me, &req.get_ref().user_ids)
            .await?;
        Ok(Response::new(GetPresenceResponse { presences }))
    }

    async fn send_signal(&self, req: Request<SendSignalRequest>) -> Reply<SendSignalResponse> {
        let me = Caller::of(&req)?.user_id;
        self.messaging.send_signal(me, req.into_inner()).await?;
        Ok(Response::new(SendSignalResponse {}))
    }

    async fn send_typing(&self, req: Request<SendTypingRequest>) -> Reply<SendTypingResponse> {
        let me = Caller::of(&req)?.user_id;
        let target = Target::from_ref(req.get_ref().conversation.as_ref())?;
        self.messaging.send_typing(me, target).await?;
        Ok(Response::new(SendTypingResponse {}))
    }
}

/// Methods callable without a bearer token: `BridgeEvents`, which is the bridge's own call
/// (checked against the bridge key by its handler) and carries a token per user instead.
pub const PUBLIC_METHODS: &[&str] = &["BridgeEvents"];
