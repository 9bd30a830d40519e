//! The tower wrapper that puts a verified [`Caller`] into every request of a service, except
//! for the methods it names public (register, login, …).

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use rosetta_kit::{ApiError, Reason};
use tonic::{Status, body::Body, server::NamedService};
use tower_service::Service;

use crate::{Caller, SessionGuard, TokenVerifier};

/// Verifies bearer tokens; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<TokenVerifier>,
    sessions: Arc<SessionGuard>,
}

impl Authenticator {
    pub fn new(verifier: Arc<TokenVerifier>, sessions: Arc<SessionGuard>) -> Self {
        Self { verifier, sessions }
    }

    pub fn sessions(&self) -> &Arc<SessionGuard> {
        &self.sessions
    }

    /// Wraps a generated tonic server so that every method except those in `public` requires
    /// a valid bearer token of a live session.
    pub fn protect<S>(&self, inner: S, public: &'static [&'static str]) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.clone(),
            public,
        }
    }

    /// The caller named by the `authorization: Bearer …` header.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::unauthenticated(Reason::TokenMissing, "missing bearer token")
            })?;
        self.verify(token.trim()).await
    }

    /// The caller an access token names, if its signature, expiry and session hold: the
    /// bearer check, for a token that comes in a request's body (a bridge's feed).
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let caller = self.verifier.verify(token)?;
        if !self.sessions.is_live(&caller.session_id).await? {
            return Err(ApiError::unauthenticated(
                Reason::SessionRevoked,
                "session has ended",
            ));
        }
        Ok(caller)
    }
}

/// A service guarded by an [`Authenticator`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Authenticator,
    public: &'static [&'static str],
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Authenticated<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Take the service that was polled ready and leave a clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        if self.public.contains(&method) {
            return Box::pin(inner.call(request));
        }
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.authenticate(request.headers()).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(err) => Ok(Status::from(err).into_http()),
            }
        })
    }
}
