//! The canonical services as a bridge sees them: four clients over one lazily connected
//! channel, each call carrying the caller's bearer token and the current span's W3C trace
//! context, so a legacy frame and the calls it causes form one trace, and a deadline
//! ([`CALL_DEADLINE`] unless the caller set its own), so no legacy command waits forever on
//! a service that does not answer.

use std::{sync::Arc, time::Duration};

use opentelemetry::propagation::Injector;
use rosetta_proto::{
    Reason,
    account::v1::{RegisterRequest, account_service_client::AccountServiceClient},
    admin::v1::node_service_client::NodeServiceClient,
    files::v1::files_service_client::FilesServiceClient,
    messaging::v1::messaging_service_client::MessagingServiceClient,
    social::v1::social_service_client::SocialServiceClient,
};
use tonic::{
    Request, Status,
    metadata::{MetadataKey, MetadataMap, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::calls::CallCounts;

type Traced = InterceptedService<Channel, TraceContext>;
type Sourced = InterceptedService<Channel, crate::client::Outgoing>;

/// How long a call may wait for its answer (for a streaming answer: for the stream to open),
/// unless the request carries its own timeout (`Request::set_timeout`), as a file upload fed
/// by a slow legacy client does. The service sees it as `grpc-timeout` and gives up too.
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// The largest HTTP/2 flow-control window (2³¹ − 1 bytes).
const CONNECTION_WINDOW: u32 = (1 << 31) - 1;

/// Clients of the four services. Cheap to clone: clones share the channels.
#[derive(Clone)]
pub struct Backend {
    channels: Arc<Channels>,
    /// The bridge credential, sent with account calls made for a client.
    pub(crate) bridge_key: Option<MetadataValue<tonic::metadata::Ascii>>,
    /// The legacy client this backend acts for (`for_client`), if any.
    pub(crate) client: Option<Arc<crate::client::Client>>,
    /// Where the calls are counted, if anywhere (`counting`).
    pub(crate) calls: Option<CallCounts>,
    /// The counts of the bridges on this backend, for their status reports.
    pub(crate) board: crate::Board,
    /// The process's multiplexed event stream, made with the bridge key (`with_bridge_key`);
    /// without it each login subscribes on its own.
    pub(crate) mux: Option<Arc<crate::mux::Mux>>,
}

/// The four services' channels, shared by every clone of a backend. Shared, not cloned: a
/// channel's clone allocates (its own handle on the channel's queue), and every logged-in
/// legacy connection holds a backend.
struct Channels {
    account: Channel,
    social: Channel,
    messaging: Channel,
    files: Channel,
}

/// Where each service is; one address may serve several (or all, as `rosetta all` does).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub account: String,
    pub social: String,
    pub messaging: String,
    pub files: String,
}

impl Endpoints {
    /// All four services behind one address.
    pub fn single(endpoint: &str) -> Self {
        Self {
            account: endpoint.into(),
            social: endpoint.into(),
            messaging: endpoint.into(),
            files: endpoint.into(),
        }
    }
}

impl Backend {
    /// A backend reaching all four services at `endpoint` (`http://host:port`).
    pub fn connect_lazy(endpoint: &str) -> Result<Self, tonic::transport::Error> {
        Self::connect_each(&Endpoints::single(endpoint))
    }

    /// A backend reaching each service at its own address. Channels connect on first use
    /// and reconnect by themselves, so a bridge can start before the services it talks to;
    /// services sharing an address share a channel.
    pub fn connect_each(endpoints: &Endpoints) -> Result<Self, tonic::transport::Error> {
        let mut channels: Vec<(String, Channel)> = Vec::new();
        let mut channel = |endpoint: &str| -> Result<Channel, tonic::transport::Error> {
            if let Some((_, channel)) = channels.iter().find(|(e, _)| *e == endpoint) {
                return Ok(channel.clone());
            }
            let channel = Endpoint::from_shared(endpoint.to_owned())?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                // One connection carries every session's event stream. HTTP/2's default
                // 64 KiB connection window would let a few sessions that are slow to read
                // their streams stall all the others; each stream keeps its own 64 KiB window.
                .initial_connection_window_size(CONNECTION_WINDOW)
                .connect_lazy();
            channels.push((endpoint.to_owned(), channel.clone()));
            Ok(channel)
        };
        let channels = Channels {
            account: channel(&endpoints.account)?,
            social: channel(&endpoints.social)?,
            messaging: channel(&endpoints.messaging)?,
            files: channel(&endpoints.files)?,
        };
        Ok(Self {
            channels: Arc::new(channels),
            bridge_key: None,
            client: None,
            calls: None,
            board: crate::Board::default(),
            mux: None,
        })
    }

    /// This backend (and every backend made from it, e.g. `for_client`) counting its calls
    /// into `counts`.
    pub fn counting(mut self, counts: CallCounts) -> Self {
        self.calls = Some(counts);
        self
    }

    /// The counts of the bridges running on this backend (and its clones), reported by
    /// [`crate::status::report`].
    pub fn board(&self) -> &crate::Board {
        &self.board
    }

    /// The process-level calls: the server status a legacy client may ask before it logs in.
    pub fn node(&self) -> NodeServiceClient<Traced> {
        NodeServiceClient::with_interceptor(self.channels.account.clone(), self.traced())
    }

    /// The process's multiplexed event stream, if this backend has one (it has the bridge
    /// key).
    pub fn event_mux(&self) -> Option<&Arc<crate::mux::Mux>> {
        self.mux.as_ref()
    }

    /// Account calls; made for a client (`for_client`), they carry its address.
    pub fn account(&self) -> AccountServiceClient<Sourced> {
        AccountServiceClient::with_interceptor(self.channels.account.clone(), self.outgoing())
    }

    pub fn social(&self) -> SocialServiceClient<Traced> {
        SocialServiceClient::with_interceptor(self.channels.social.clone(), self.traced())
    }

    pub fn messaging(&self) -> MessagingServiceClient<Traced> {
        MessagingServiceClient::with_interceptor(self.channels.messaging.clone(), self.traced())
    }

    pub fn files(&self) -> FilesServiceClient<Traced> {
        FilesServiceClient::with_interceptor(self.channels.files.clone(), self.traced())
    }

    /// The messaging service's channel, for the process's event stream.
    pub(crate) fn messaging_channel(&self) -> Channel {
        self.channels.messaging.clone()
    }

    /// The interceptor of this backend's calls other than account ones.
    pub(crate) fn traced(&self) -> TraceContext {
        TraceContext {
            calls: self.calls.clone(),
        }
    }

    /// Registers an account for a legacy client; when only its optional e-mail is refused
    /// (taken, or not an address), again without it. The legacy servers stored any e-mail
    /// text and refused a taken user name only; a bad name or phone is refused again. A
    /// verification code is checked after the e-mail, so the first try has not spent it.
    pub async fn register_legacy(&self, request: RegisterRequest) -> Result<(), Status> {
        let first = self.account().register(request.clone()).await;
        match first {
            Err(status)
                if !request.email.trim().is_empty()
                    && matches!(
                        Reason::of(&status),
                        Some(Reason::EmailTaken | Reason::InvalidArgument)
                    ) =>
            {
                tracing::info!(%status, "registering without the refused e-mail");
                let request = RegisterRequest {
                    email: String::new(),
                    ..request
                };
                self.account().register(request).await.map(drop)
            }
            other => other.map(drop),
        }
    }
}

/// A request carrying `access_token` as its bearer token.
pub fn authed<T>(message: T, access_token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {access_token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The header a call's deadline travels in.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Writes the current span's trace context and the call's deadline into each outgoing call's
/// metadata (and counts the call, when the backend counts).
#[derive(Clone, Default)]
pub struct TraceContext {
    calls: Option<CallCounts>,
}

impl Interceptor for TraceContext {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(calls) = &self.calls {
            calls.count(&request);
        }
        if !request.metadata().contains_key(GRPC_TIMEOUT) {
            request.set_timeout(CALL_DEADLINE);
        }
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()))
        });
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}
