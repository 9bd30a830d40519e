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
use http_body::{Frame, SizeHint};
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
                        let method = Method::new(&full, method.name(), method.server_streaming());
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

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeMap,
        sync::{Mutex, atomic::AtomicU64, atomic::Ordering},
    };

    use http_body::Body as _;
    use metrics::{Key, KeyName, Metadata, Recorder, SharedString, Unit};

    use super::*;

    const LOGIN: &str = "/rosetta.account.v1.AccountService/Login";
    const SUBSCRIBE: &str = "/rosetta.messaging.v1.MessagingService/Subscribe";

    /// Counters and gauges by `name{label=value,…}`, histograms by the same with their samples.
    #[derive(Default)]
    struct Seen {
        values: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
        samples: Mutex<BTreeMap<String, Arc<Samples>>>,
    }

    #[derive(Default)]
    struct Samples(Mutex<Vec<f64>>);

    impl metrics::HistogramFn for Samples {
        fn record(&self, value: f64) {
            self.0.lock().expect("samples").push(value);
        }
    }

    fn id(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Seen {
        fn value(&self, id: &str) -> Arc<AtomicU64> {
            let mut values = self.values.lock().expect("values");
            values.entry(id.to_owned()).or_default().clone()
        }

        fn count(&self, id: &str) -> u64 {
            self.value(id).load(Ordering::Relaxed)
        }

        fn gauge(&self, id: &str) -> f64 {
            f64::from_bits(self.value(id).load(Ordering::Relaxed))
        }

        fn samples(&self, id: &str) -> usize {
            let samples = self.samples.lock().expect("samples");
            samples
                .get(id)
                .map_or(0, |s| s.0.lock().expect("samples").len())
        }
    }

    impl Recorder for Seen {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.value(&id(key)))
        }

        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.value(&id(key)))
        }

        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            let mut samples = self.samples.lock().expect("samples");
            Histogram::from_arc(samples.entry(id(key)).or_default().clone())
        }
    }

    /// A body of one data frame, then `trailers` (if any).
    struct Answer {
        data: Option<bytes::Bytes>,
        trailers: Option<HeaderMap>,
    }

    impl http_body::Body for Answer {
        type Data = bytes::Bytes;
        type Error = tonic::Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<bytes::Bytes>, tonic::Status>>> {
            if let Some(data) = self.data.take() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
        }
    }

    fn grpc_status(code: Code) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", (code as i32).into());
        headers
    }

    /// A handler answering every call with its function's response.
    #[derive(Clone)]
    struct Handler(fn() -> Response<Body>);

    impl Service<Request<()>> for Handler {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<()>) -> Self::Future {
            std::future::ready(Ok((self.0)()))
        }
    }

    fn metered(answer: fn() -> Response<Body>) -> Metered<Handler> {
        MetricsLayer::new(&[rosetta_proto::FILE_DESCRIPTOR_SET]).layer(Handler(answer))
    }

    async fn call<S>(service: &mut S, path: &str) -> Response<Body>
    where
        S: Service<Request<()>, Response = Response<Body>, Error = Infallible>,
    {
        let request = Request::builder().uri(path).body(()).expect("request");
        let Ok(response) = service.call(request).await;
        response
    }

    async fn drain(response: Response<Body>) {
        let mut body = std::pin::pin!(response.into_body());
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            frame.expect("frame");
        }
    }

    fn unary_ok() -> Response<Body> {
        Response::new(Body::new(Answer {
            data: Some(bytes::Bytes::from_static(b"\0\0\0\0\0")),
            trailers: Some(grpc_status(Code::Ok)),
        }))
    }

    fn refused() -> Response<Body> {
        tonic::Status::unauthenticated("no").into_http()
    }

    const LOGIN_LABELS: &str = "service=rosetta.account.v1.AccountService,method=Login";

    #[tokio::test]
    async fn unary_calls_count_by_the_status_of_their_trailers() {
        let seen = Seen::default();
        let _local = metrics::set_default_local_recorder(&seen);
        let mut service = metered(unary_ok);
        let answer = call(&mut service, LOGIN).await;
        let ok = format!("{REQUESTS}{{{LOGIN_LABELS},code=OK}}");
        assert_eq!(seen.count(&ok), 0, "counted only once the status passes");
        drain(answer).await;
        assert_eq!(seen.count(&ok), 1);
        assert_eq!(seen.samples(&format!("{DURATION}{{{LOGIN_LABELS}}}")), 1);

        // An answer dropped before its end: the client went away.
        drop(call(&mut service, LOGIN).await);
        assert_eq!(
            seen.count(&format!("{REQUESTS}{{{LOGIN_LABELS},code=CANCELLED}}")),
            1
        );
    }

    #[tokio::test]
    async fn refusals_count_at_once_and_unknown_paths_share_one_series() {
        let seen = Seen::default();
        let _local = metrics::set_default_local_recorder(&seen);
        let mut service = metered(refused);
        drop(call(&mut service, LOGIN).await);
        assert_eq!(
            seen.count(&format!(
                "{REQUESTS}{{{LOGIN_LABELS},code=UNAUTHENTICATED}}"
            )),
            1
        );
        for path in ["/made.Up/One", "/made.Up/Two"] {
            drop(call(&mut service, path).await);
        }
        assert_eq!(
            seen.count(&format!(
                "{REQUESTS}{{service=unknown,method=unknown,code=UNAUTHENTICATED}}"
            )),
            2
        );
    }

    #[tokio::test]
    async fn server_streams_count_when_they_open_and_show_while_open() {
        let seen = Seen::default();
        let _local = metrics::set_default_local_recorder(&seen);
        let mut service = metered(unary_ok);
        let labels = "service=rosetta.messaging.v1.MessagingService,method=Subscribe";
        let stream = call(&mut service, SUBSCRIBE).await;
        assert_eq!(seen.count(&format!("{REQUESTS}{{{labels},code=OK}}")), 1);
        assert_eq!(seen.samples(&format!("{DURATION}{{{labels}}}")), 1);
        let open = format!("{STREAMS_OPEN}{{{labels}}}");
        assert_eq!(seen.gauge(&open), 1.0);
        drop(stream);
        assert_eq!(seen.gauge(&open), 0.0);
        assert_eq!(
            seen.count(&format!("{REQUESTS}{{{labels},code=OK}}")),
            1,
            "a stream's end is not a second count"
        );
    }
}
