//! The canonical services as a bridge sees them: four clients over one lazily connected
//! channel, each call carrying the caller's bearer token and the current span's W3C trace
//! context, so a legacy frame and the calls it causes form one trace.

use opentelemetry::propagation::Injector;
use rosetta_proto::{
    account::v1::account_service_client::AccountServiceClient,
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

type Traced = InterceptedService<Channel, TraceContext>;

/// Clients of the four services. Cheap to clone: clones share the channel.
#[derive(Clone)]
pub struct Backend {
    channel: Channel,
}

impl Backend {
    /// A backend reaching the services at `endpoint` (`http://host:port`). The channel
    /// connects on first use and reconnects by itself, so a bridge can start before the
    /// services it talks to.
    pub fn connect_lazy(endpoint: &str) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect_lazy();
        Ok(Self { channel })
    }

    pub fn account(&self) -> AccountServiceClient<Traced> {
        AccountServiceClient::with_interceptor(self.channel.clone(), TraceContext)
    }

    pub fn social(&self) -> SocialServiceClient<Traced> {
        SocialServiceClient::with_interceptor(self.channel.clone(), TraceContext)
    }

    pub fn messaging(&self) -> MessagingServiceClient<Traced> {
        MessagingServiceClient::with_interceptor(self.channel.clone(), TraceContext)
    }

    pub fn files(&self) -> FilesServiceClient<Traced> {
        FilesServiceClient::with_interceptor(self.channel.clone(), TraceContext)
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

/// Writes the current span's trace context into each outgoing call's metadata.
#[derive(Clone, Copy, Default)]
pub struct TraceContext;

impl Interceptor for TraceContext {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
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
