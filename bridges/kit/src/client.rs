//! Account calls a bridge makes for one legacy client: they carry the client's address and
//! the bridge credential, so the account service counts the client's logins, registrations
//! and code requests against the client's address rather than the bridge's (the per-source
//! limit lives there, once). The service takes the address only with a valid credential.
//!
//! On top of that a connection is bounded here: after [`MAX_FAILED_LOGINS`] refused logins
//! or token exchanges it gets no further tries, so one connection cannot spend its address's
//! whole budget guessing.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use rosetta_proto::{
    Reason,
    account::v1::{ExchangeLegacyTokenRequest, LoginRequest, LoginResponse},
    metadata,
};
use tonic::{
    Code, Request, Response, Status,
    metadata::{AsciiMetadataValue, errors::InvalidMetadataValue},
    service::Interceptor,
};

use crate::{Backend, backend::TraceContext};

/// Refused logins (and token exchanges) after which a connection gets no more.
pub const MAX_FAILED_LOGINS: u32 = 10;

/// The legacy client a backend acts for.
pub(crate) struct Client {
    addr: AsciiMetadataValue,
    failed_logins: AtomicU32,
}

/// A connection's side of [`Backend::for_client`] without the backend itself: a connection
/// that keeps this (one pointer) instead of a whole backend per connection makes its backend
/// when it calls, with [`Backend::with_client`]. Clones share the count of failed logins.
#[derive(Clone)]
pub struct ClientHandle(Arc<Client>);

impl ClientHandle {
    /// The client at `addr`, with no failed logins yet.
    pub fn new(addr: IpAddr) -> Self {
        Self(Arc::new(Client {
            addr: addr.to_string().parse().expect("an IP address is ASCII"),
            failed_logins: AtomicU32::new(0),
        }))
    }
}

impl Backend {
    /// This backend with the bridge credential (the key file's hex text): sent on account
    /// calls made for a client, and what opens the process's one multiplexed event stream
    /// (`BridgeEvents`), which every login of this backend and its clones shares.
    pub fn with_bridge_key(mut self, key_hex: &str) -> Result<Self, InvalidMetadataValue> {
        let key: AsciiMetadataValue = key_hex.trim().parse()?;
        self.mux = Some(Arc::new(crate::mux::Mux::new(
            self.messaging_channel(),
            key.clone(),
            TraceContext::default(),
        )));
        self.bridge_key = Some(key);
        Ok(self)
    }

    /// The backend one connection uses: its account calls name `addr` as the client's
    /// address, and its logins count towards the connection's bound. Clones share the count.
    pub fn for_client(&self, addr: IpAddr) -> Backend {
        self.with_client(&ClientHandle::new(addr))
    }

    /// This backend acting for `client`, as [`Self::for_client`] made it.
    pub fn with_client(&self, client: &ClientHandle) -> Backend {
        let mut backend = self.clone();
        backend.client = Some(client.0.clone());
        backend
    }

    /// `Login`, unless this connection has used up its tries.
    pub async fn login(&self, request: LoginRequest) -> Result<Response<LoginResponse>, Status> {
        self.bounded(async { self.account().login(request).await })
            .await
    }

    /// `ExchangeLegacyToken` (a token is a password too), unless this connection has used up
    /// its tries.
    pub async fn exchange_legacy_token(
        &self,
        request: ExchangeLegacyTokenRequest,
    ) -> Result<Response<LoginResponse>, Status> {
        self.bounded(async { self.account().exchange_legacy_token(request).await })
            .await
    }

    async fn bounded<T>(&self, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        let Some(client) = &self.client else {
            return call.await;
        };
        // Reserve the try before the call, so concurrent logins of one connection cannot
        // exceed the bound either; a success gives it back.
        let tries = client.failed_logins.fetch_add(1, Ordering::AcqRel);
        if tries >= MAX_FAILED_LOGINS {
            client.failed_logins.fetch_sub(1, Ordering::AcqRel);
            tracing::info!("login refused: too many failed logins on this connection");
            return Err(exhausted());
        }
        let result = call.await;
        if !matches!(&result, Err(status) if counts(status)) {
            client.failed_logins.fetch_sub(1, Ordering::AcqRel);
        }
        result
    }

    /// The interceptor of this backend's account calls.
    pub(crate) fn outgoing(&self) -> Outgoing {
        Outgoing {
            trace: self.traced(),
            client: self
                .client
                .as_ref()
                .map(|client| (client.addr.clone(), self.bridge_key.clone())),
        }
    }
}

/// Whether a failed call counts against the connection: a refusal of what the client sent,
/// not the service failing.
fn counts(status: &Status) -> bool {
    !matches!(
        status.code(),
        Code::Unavailable
            | Code::Internal
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::Cancelled
    )
}

/// The refusal of a connection out of tries, in the services' terms (`THROTTLED`), so each
/// bridge answers it as it answers the account service's own throttling.
fn exhausted() -> Status {
    Reason::Throttled.status(
        Code::ResourceExhausted,
        "too many failed logins on this connection",
    )
}

/// Adds the client's address and the bridge credential to account calls made for a client,
/// besides the trace context.
#[derive(Clone)]
pub struct Outgoing {
    trace: TraceContext,
    client: Option<(AsciiMetadataValue, Option<AsciiMetadataValue>)>,
}

impl Interceptor for Outgoing {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let mut request = self.trace.call(request)?;
        if let Some((addr, key)) = &self.client {
            request
                .metadata_mut()
                .insert(metadata::CLIENT_ADDR, addr.clone());
            if let Some(key) = key {
                request
                    .metadata_mut()
                    .insert(metadata::BRIDGE_KEY, key.clone());
            }
        }
        Ok(request)
    }
}
