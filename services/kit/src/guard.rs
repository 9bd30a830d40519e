//! What protects the server from more work than it can do: a time limit on each call's handling
//! and a limit on the calls handled at once, as one tower layer over every route.
//!
//! Both count the handler's work up to its response, not the life of a response stream: a
//! server-streaming handler (Subscribe, Download) answers at once with a stream fed by another
//! task, so thousands of open streams neither hold a place nor run into the time limit. A
//! client-streaming call (Upload) is handled for as long as its sender keeps sending, which
//! can be a slow legacy socket behind a bridge, so it is bounded by the caller's own deadline
//! (`grpc-timeout`, which tonic enforces on every call) and is not counted against the limit.
//!
//! tonic's own `Server::timeout` is not used: it applies to every method alike (uploads
//! included, taking the shorter of it and the caller's `grpc-timeout`, so a bridge could not
//! give a slow upload more time) and ends calls with `CANCELLED` ("Timeout expired"); here
//! the server's limit ends a call with `DEADLINE_EXCEEDED`, what the gRPC spec names it.
//!
//! The limit is global, not per connection: a bridge multiplexes thousands of users over one
//! HTTP/2 connection, so a per-connection limit would throttle a whole bridge like a single
//! client, and a deployment with several bridges would not be bounded at all. A call beyond
//! the limit is refused at once with `UNAVAILABLE` ([`crate::Reason::Unavailable`]) rather
//! than queued: a queue in front of an overloaded server only turns overload into timeouts.

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use prost::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, body::Body};
use tower_layer::Layer;
use tower_service::Service;

use crate::ApiError;

/// How much work a server takes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// The longest a handler may take to answer; beyond it the call ends with
    /// `DEADLINE_EXCEEDED`. `None`: only callers' own deadlines apply.
    pub request_timeout: Option<Duration>,
    /// Calls handled at once over all connections; more are refused with `UNAVAILABLE`.
    /// `None`: no limit.
    pub max_concurrent_requests: Option<usize>,
}

/// Calls that never take a place nor get a server time limit: health checks (an overloaded
/// server must still say it is alive) and methods whose requests are streams.
#[derive(Debug, Clone, Default)]
pub struct Exempt {
    paths: HashSet<String>,
    prefixes: Vec<String>,
}

impl Exempt {
    /// Health checks, and the client-streaming methods described in `descriptor_sets`
    /// (encoded `FileDescriptorSet`s).
    pub fn streaming_requests_of(descriptor_sets: &[&[u8]]) -> Self {
        let mut exempt = Self {
            paths: HashSet::new(),
            prefixes: vec!["/grpc.health.v1.Health/".to_owned()],
        };
        for set in descriptor_sets {
            let set = match prost_types::FileDescriptorSet::decode(*set) {
                Ok(set) => set,
                Err(err) => {
                    // The sets are compiled in; an unreadable one is a build defect, and the
                    // only cost is that its uploads get the server's time limit.
                    tracing::error!(%err, "unreadable file descriptor set");
                    continue;
                }
            };
            for file in &set.file {
                for service in &file.service {
                    for method in &service.method {
                        if method.client_streaming() {
                            exempt.paths.insert(format!(
                                "/{}.{}/{}",
                                file.package(),
                                service.name(),
                                method.name()
                            ));
                        }
                    }
                }
            }
        }
        exempt
    }

    fn covers(&self, path: &str) -> bool {
        self.paths.contains(path) || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// The layer applying [`Limits`] to every call but the [`Exempt`] ones.
#[derive(Debug, Clone)]
pub struct GuardLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    timeout: Option<Duration>,
    places: Option<Arc<Semaphore>>,
    exempt: Exempt,
}

impl GuardLayer {
    pub fn new(limits: Limits, exempt: Exempt) -> Self {
        let places = limits
            .max_concurrent_requests
            .map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
        Self {
            shared: Arc::new(Shared {
                timeout: limits.request_timeout,
                places,
                exempt,
            }),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See [`GuardLayer`]; every clone shares the same places.
#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B> Service<Request<B>> for Guard<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        if self.shared.exempt.covers(&path) {
            return Box::pin(self.inner.call(request));
        }
        let place = match self.shared.admit(&path) {
            Ok(place) => place,
            Err(AllTaken) => return Box::pin(std::future::ready(Ok(overloaded()))),
        };
        // The service that was polled ready handles this call; its clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let timeout = self.shared.timeout;
        Box::pin(async move {
            let _place = place;
            let call = inner.call(request);
            let Some(limit) = timeout else {
                return call.await;
            };
            match tokio::time::timeout(limit, call).await {
                Ok(answer) => answer,
                Err(_elapsed) => {
                    metrics::counter!("rosetta_grpc_requests_timed_out_total").increment(1);
                    tracing::warn!(%path, ?limit, "call cut at the server's time limit");
                    Ok(Status::deadline_exceeded(format!(
                        "not answered within the server's limit of {} ms",
                        limit.as_millis()
                    ))
                    .into_http())
                }
            }
        })
    }
}

/// Every place is taken.
struct AllTaken;

impl Shared {
    /// A place for one call, `None` without a limit.
    fn admit(&self, path: &str) -> Result<Option<OwnedSemaphorePermit>, AllTaken> {
        let Some(places) = &self.places else {
            return Ok(None);
        };
        match places.clone().try_acquire_owned() {
            Ok(place) => Ok(Some(place)),
            Err(_) => {
                metrics::counter!("rosetta_grpc_requests_shed_total").increment(1);
                tracing::debug!(%path, "all places taken; call refused");
                Err(AllTaken)
            }
        }
    }
}

/// The answer to a call refused for want of a place.
fn overloaded() -> Response<Body> {
    Status::from(ApiError::unavailable(
        "the server is at its limit of calls at once; try again shortly",
    ))
    .into_http()
}

#[cfg(test)]
mod tests {
    use tokio::sync::{Notify, mpsc};
    use tonic::Code;

    use super::*;
    use crate::Reason;

    const SLOW: &str = "/rosetta.test.v1.Test/Slow";
    const UPLOAD: &str = "/rosetta.files.v1.FilesService/Upload";
    const HEALTH: &str = "/grpc.health.v1.Health/Check";

    /// A handler that reports each call it starts and answers only when `release` is notified.
    #[derive(Clone)]
    struct Held {
        started: mpsc::UnboundedSender<String>,
        release: Arc<Notify>,
    }

    impl Service<Request<()>> for Held {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<()>) -> Self::Future {
            let (started, release) = (self.started.clone(), self.release.clone());
            Box::pin(async move {
                let released = release.notified();
                let _ = started.send(request.uri().path().to_owned());
                released.await;
                Ok(Response::new(Body::empty()))
            })
        }
    }

    fn guarded(limits: Limits) -> (Guard<Held>, mpsc::UnboundedReceiver<String>, Arc<Notify>) {
        let (started, rx) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let held = Held {
            started,
            release: release.clone(),
        };
        let exempt = Exempt::streaming_requests_of(&[rosetta_proto::FILE_DESCRIPTOR_SET]);
        (GuardLayer::new(limits, exempt).layer(held), rx, release)
    }

    fn call(guard: &Guard<Held>, path: &str) -> tokio::task::JoinHandle<Response<Body>> {
        let mut guard = guard.clone();
        let request = Request::builder().uri(path).body(()).expect("request");
        tokio::spawn(async move {
            let Ok(response) = guard.call(request).await;
            response
        })
    }

    /// The gRPC status a response carries in its headers; `None` for a handler's own answer.
    fn status(response: &Response<Body>) -> Option<Status> {
        Status::from_header_map(response.headers())
    }

    #[test]
    fn client_streaming_methods_and_health_are_exempt() {
        let exempt = Exempt::streaming_requests_of(&[rosetta_proto::FILE_DESCRIPTOR_SET]);
        assert!(exempt.covers(UPLOAD));
        assert!(exempt.covers(HEALTH));
        assert!(!exempt.covers("/rosetta.files.v1.FilesService/Download"));
        assert!(!exempt.covers("/rosetta.messaging.v1.MessagingService/Subscribe"));
        assert!(!exempt.covers("/rosetta.account.v1.AccountService/Login"));
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_are_refused_at_once_and_places_come_back() {
        let (guard, mut started, release) = guarded(Limits {
            request_timeout: None,
            max_concurrent_requests: Some(1),
        });
        let first = call(&guard, SLOW);
        assert_eq!(started.recv().await.as_deref(), Some(SLOW));

        let refused = call(&guard, SLOW).await.expect("refusal");
        let refusal = status(&refused).expect("a gRPC status");
        assert_eq!(refusal.code(), Code::Unavailable, "{refusal:?}");
        assert_eq!(Reason::of(&refusal), Some(Reason::Unavailable));

        // Health checks and uploads pass while the only place is taken.
        let health = call(&guard, HEALTH);
        let upload = call(&guard, UPLOAD);
        let mut exempt = [started.recv().await, started.recv().await];
        exempt.sort();
        assert_eq!(exempt, [Some(HEALTH.to_owned()), Some(UPLOAD.to_owned())]);

        release.notify_waiters();
        for answer in [first, health, upload] {
            assert!(status(&answer.await.expect("answer")).is_none());
        }
        let again = call(&guard, SLOW);
        assert_eq!(started.recv().await.as_deref(), Some(SLOW));
        release.notify_waiters();
        assert!(status(&again.await.expect("answer")).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_past_the_time_limit_ends_with_deadline_exceeded_but_uploads_do_not() {
        let limit = Duration::from_secs(2);
        let (guard, mut started, release) = guarded(Limits {
            request_timeout: Some(limit),
            max_concurrent_requests: Some(1),
        });
        let begun = tokio::time::Instant::now();
        let cut = call(&guard, SLOW);
        let upload = call(&guard, UPLOAD);
        let cut = cut.await.expect("answer");
        let cut = status(&cut).expect("a gRPC status");
        assert_eq!(cut.code(), Code::DeadlineExceeded, "{cut:?}");
        assert_eq!(Reason::of(&cut), None, "a deadline has no reason");
        assert!(begun.elapsed() >= limit);

        // The cut call gave its place back; the upload is still being handled long after.
        let mut paths = Vec::new();
        while let Ok(path) = started.try_recv() {
            paths.push(path);
        }
        paths.sort();
        assert_eq!(paths, [UPLOAD, SLOW]);
        let after = call(&guard, SLOW);
        assert_eq!(started.recv().await.as_deref(), Some(SLOW));
        tokio::time::sleep(limit * 10).await;
        assert!(!upload.is_finished(), "the upload was cut");
        release.notify_waiters();
        assert!(status(&upload.await.expect("answer")).is_none());
        let after = after.await.expect("answer");
        assert_eq!(
            status(&after).map(|s| s.code()),
            Some(Code::DeadlineExceeded),
            "the later call had its own limit"
        );
    }
}
