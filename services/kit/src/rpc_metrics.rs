//! Per-RPC metrics, as one tower layer over every route: how many calls each method answered
//! with which gRPC status, how long they took, and how many server streams are open.
//!
//! - `rosetta_grpc_requests_total{service, method, code}`: calls by their final status.
//! - `rosetta_grpc_request_duration_seconds{service, method}`: from the request to the
//!   status (the end of a unary answer). A server stream (Subscribe, Download) is counted when
//!   it opens, with the status its response headers carry, and timed to those headers: its
//!   life is not a latency.
//! - `rosetta_grpc_streams_open{service, method}`: server streams open now.
//!
//! The label values are the names in the compiled-in descriptor sets, so a client sending
//! made-up paths cannot grow the series: any other path counts under `unknown`. Each method's
//! handles are made once, on first use, so a call costs a map lookup and a few atomic
//! operations, and no allocation for its labels.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{HeaderMap, Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use metrics::{Counter, Gauge, Histogram};
use prost::Message as _;
use tonic::{Code, body::Body};
use tower_layer::Layer;
use tower_service::Service;

pub const REQUESTS: &str = "rosetta_grpc_requests_total";
pub const DURATION: &str = "rosetta_grpc_request_duration_seconds";
pub const STREAMS_OPEN: &str = "rosetta_grpc_streams_open";

/// Label value of calls to a path no descriptor names.
const UNKNOWN: &str = "unknown";

/// The gRPC status codes, 0..=16, by name as the gRPC spec spells them.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Describes the metrics to the installed recorder (their `# HELP` lines).
pub fn describe() {
    metrics::describe_counter!(REQUESTS, "gRPC calls answered, by final status code");
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "gRPC call latency: to the status, or to the response headers of a server stream"
    );
    metrics::describe_gauge!(STREAMS_OPEN, "Server-streaming gRPC calls open now");
}

/// The layer; clones share the methods' handles.
#[derive(Clone)]
pub struct MetricsLayer {
    methods: Arc<Methods>,
}

struct Methods {
    by_path: HashMap<String, Arc<Method>>,
    unknown: Arc<Method>,
}

/// One method's labels and (lazily made) metric handles.
struct Method {
    service: String,
    name: String,
    server_streaming: bool,
    counts: [OnceLock<Counter>; 17],
    duration: OnceLock<Histogram>,
    open: OnceLock<Gauge>,
}

impl MetricsLayer {
    /// Knows the methods of the services in `descriptor_sets` (encoded `FileDescriptorSet`s)
    /// by name.
    pub fn new(descriptor_sets: &[&[u8]]) -> Self {
        let mut by_path = HashMap::new();
        for set in descriptor_sets {
            let set = match prost_types::FileDescriptorSet::decode(*set) {
                Ok(set) => set,
                Err(err) => {
                    // Compiled in: unreadable only by a build defect; its calls count as unknown.
                    tracing::error!(%err, "unreadable file descriptor set");
                    continue;
                }
            };
            for file in &set.file {
                for service in &file.service {
                    let full = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        let path = format!("/{full}/{}", method.name());
                        let method =
                            Method::new(&full, method.name(), method.server_streaming());
                        by_path.insert(path, Arc::new(method));
                    }
                }
            }
        }
        Self {
            methods: Arc::new(Methods {
                by_path,
                unknown: Arc::new(Method::new(UNKNOWN, UNKNOWN, false)),
            }),
        }
    }
}

impl Methods {
    fn find(&self, path: &str) -> &Arc<Method> {
        self.by_path.get(path).unwrap_or(&self.unknown)
    }
}

impl Method {
    fn new(service: &str, name: &str, server_streaming: bool) -> Self {
        Self {
            service: service.to_owned(),
            name: name.to_owned(),
            server_streaming,
            counts: Default::default(),
            duration: OnceLock::new(),
            open: OnceLock::new(),
        }
    }

    /// Counts one call that ended with `code` after `took` seconds.
    fn record(&self, code: i32, started: Instant) {
        let index = usize::try_from(code)
            .ok()
            .filter(|i| *i < CODES.len())
            .unwrap_or(Code::Unknown as usize);
        self.counts[index]
            .get_or_init(|| {
                metrics::counter!(REQUESTS, "service" => self.service.clone(),
                    "method" => self.name.clone(), "code" => CODES[index])
            })
            .increment(1);
        self.duration
            .get_or_init(|| {
                metrics::histogram!(DURATION, "service" => self.service.clone(),
                    "method" => self.name.clone())
            })
            .record(started.elapsed().as_secs_f64());
    }

    fn open_streams(&self) -> &Gauge {
        self.open.get_or_init(|| {
            metrics::gauge!(STREAMS_OPEN, "service" => self.service.clone(),
                "method" => self.name.clone())
        })
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            methods: self.methods.clone(),
        }
    }
}

/// See [`MetricsLayer`].
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    methods: Arc<Methods>,
}

impl<S, B> Service<Request<B>> for Metered<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = self.methods.find(request.uri().path()).clone();
        MeteredFuture {
            call: self.inner.call(request),
            method: Some(method),
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A call being handled; once its response headers are there, the response's body carries
    /// the rest of the measurement.
    pub struct MeteredFuture<F> {
        #[pin]
        call: F,
        method: Option<Arc<Method>>,
        started: Instant,
    }
}

impl<F> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.call.poll(cx));
        let (Some(method), started) = (this.method.take(), *this.started) else {
            return Poll::Ready(Ok(response));
        };
        // A status in the headers is a trailers-only answer (an error, or a refusal before
        // the handler): the call ends here.
        if let Some(code) = status_code(response.headers()) {
            method.record(code, started);
            return Poll::Ready(Ok(response));
        }
        if method.server_streaming {
            method.record(Code::Ok as i32, started);
            method.open_streams().increment(1.0);
            return Poll::Ready(Ok(response.map(|body| {
                Body::new(MeteredBody {
                    inner: body,
                    ending: Ending::Stream(method),
                })
            })));
        }
        Poll::Ready(Ok(response.map(|body| {
            Body::new(MeteredBody {
                inner: body,
                ending: Ending::Unary { method, started },
            })
        })))
    }
}

/// What a response body does when it ends.
enum Ending {
    /// Counts the call with the status of its trailers.
    Unary {
        method: Arc<Method>,
        started: Instant,
    },
    /// Leaves the open streams.
    Stream(Arc<Method>),
    Done,
}

impl Ending {
    /// Settles the call with `code` (a stream only closes, whatever the code).
    fn settle(&mut self, code: i32) {
        match std::mem::replace(self, Ending::Done) {
            Ending::Unary { method, started } => method.record(code, started),
            Ending::Stream(method) => method.open_streams().decrement(1.0),
            Ending::Done => {}
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that settles its call when its trailers pass, when it ends without
    /// them (`UNKNOWN`), or when it is dropped unfinished (the client went away: `CANCELLED`).
    struct MeteredBody {
        #[pin]
        inner: Body,
        ending: Ending,
    }

    impl PinnedDrop for MeteredBody {
        fn drop(this: Pin<&mut Self>) {
            this.project().ending.settle(Code::Cancelled as i32);
        }
    }
}

impl http_body::Body for MeteredBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.ending
                        .settle(status_code(trailers).unwrap_or(Code::Unknown as i32));
                }
            }
            Some(Err(_)) => this.ending.settle(Code::Internal as i32),
            None => this.ending.settle(Code::Unknown as i32),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `grpc-status` in `headers`, read without allocating.
fn status_code(headers: &HeaderMap) -> Option<i32> {
    let value = headers.get("grpc-status")?;
    std::str::from_utf8(value.as_bytes()).ok()?.parse().ok()
}
