//! The password-hashing pool: a fixed set of worker threads, each owning one reused argon2
//! memory area, behind a bounded queue.
//!
//! Every argon2id run needs 19 MiB. Run on tokio's blocking pool, a flood of logins (unknown
//! users too: they are checked against a dummy verifier so that they take as long) started one
//! thread and one 19 MiB allocation per request: 100 concurrent logins took the process from
//! 24 MB to 2 GB and starved every other call of CPU. Here at most `workers` hashes run at
//! once, each in memory its worker allocated once; at most `queue` more wait; beyond that a
//! request is refused at once with `THROTTLED` and a `RetryInfo` (see [`busy`]), which the
//! bridges already answer as a failed login of their protocol. A request whose caller went
//! away before its turn is skipped, not hashed.

use std::{
    cell::RefCell,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use argon2::Block;
use rosetta_kit::{ApiError, ApiResult};
use tokio::sync::oneshot;

/// What a refused caller is told to wait: one worker's share of a full queue is well under
/// this at the default sizes, so a retry after it usually finds room.
const RETRY_AFTER: Duration = Duration::from_secs(1);

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// The argon2 memory of a hashing worker; allocated at its first hash and kept.
    static MEMORY: RefCell<Option<Vec<Block>>> = const { RefCell::new(None) };
    static IS_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` over `blocks` argon2 memory blocks: the worker's own reused area on a hashing
/// worker, a fresh allocation elsewhere (tests, one-off callers).
pub(crate) fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    if !IS_WORKER.get() {
        return f(&mut vec![Block::default(); blocks]);
    }
    MEMORY.with_borrow_mut(|memory| {
        let memory = memory.get_or_insert_with(Vec::new);
        if memory.len() < blocks {
            // Once per worker for the service's own parameters; a stored verifier with more
            // memory (none the service writes) grows this worker's area to its size.
            memory.resize(blocks, Block::default());
        }
        f(&mut memory[..blocks])
    })
}

/// The answer to a request that finds the pool full.
pub fn busy() -> ApiError {
    ApiError {
        message: format!(
            "too many password checks at once; retry in {} s",
            RETRY_AFTER.as_secs()
        ),
        ..ApiError::throttled(RETRY_AFTER)
    }
}

fn stopped() -> ApiError {
    ApiError::unavailable("the server is shutting down")
}

/// Hashing workers and their queue. Dropping the pool stops the workers: queued requests are
/// answered `UNAVAILABLE`, running hashes finish, and the threads are joined.
pub struct HashPool {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    admitted: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
    capacity: usize,
    worker_count: usize,
}

/// One admitted request; frees its place when dropped (done, skipped or discarded).
struct Permit {
    admitted: Arc<AtomicUsize>,
    workers: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let now = self.admitted.fetch_sub(1, Ordering::AcqRel) - 1;
        show_admitted(now, self.workers);
    }
}

/// Describes the pool's metrics to the installed recorder (their `# HELP` lines).
pub fn describe_metrics() {
    metrics::describe_gauge!(
        ADMITTED,
        "Password checks running or waiting for a hashing worker"
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Password checks waiting for a hashing worker");
    metrics::describe_counter!(
        REFUSED,
        "Password checks refused because the workers and their queue were full"
    );
}

const ADMITTED: &str = "rosetta_account_hash_requests_admitted";
const QUEUE_DEPTH: &str = "rosetta_account_hash_queue_depth";
const REFUSED: &str = "rosetta_account_hash_requests_refused_total";

/// Sets the gauges after a change to `admitted` requests (those beyond `workers` wait).
fn show_admitted(admitted: usize, workers: usize) {
    metrics::gauge!(ADMITTED).set(admitted as f64);
    metrics::gauge!(QUEUE_DEPTH).set(admitted.saturating_sub(workers) as f64);
}

impl HashPool {
    /// `workers` threads (0: one per available core) and room for `queue` waiting requests.
    pub fn new(workers: usize, queue: usize) -> Arc<Self> {
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let closed = Arc::new(AtomicBool::new(false));
        let handles = (0..workers)
            .map(|i| {
                let (rx, closed) = (rx.clone(), closed.clone());
                std::thread::Builder::new()
                    .name(format!("hash-{i}"))
                    .spawn(move || work(&rx, &closed))
                    .expect("spawning a hashing worker")
            })
            .collect();
        tracing::info!(workers, queue, "password hashing pool started");
        Arc::new(Self {
            jobs: Mutex::new(Some(tx)),
            workers: Mutex::new(handles),
            admitted: Arc::new(AtomicUsize::new(0)),
            closed,
            capacity: workers + queue,
            worker_count: workers,
        })
    }

    pub fn workers(&self) -> usize {
        self.worker_count
    }

    /// Requests running or waiting now (what the `rosetta_account_hash_requests_admitted` gauge
    /// shows), for tests that must know a call has reached the pool.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Runs `work` on a hashing worker and waits for its result; refused at once with
    /// [`busy`] when the workers and the queue are full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        self.submit(work)?.await
    }

    /// Admits `work` now (or refuses it) and returns the wait for its result. Split from
    /// [`HashPool::run`] so that admission happens at the call, not at the first poll.
    pub fn submit<T, W>(&self, work: W) -> ApiResult<impl Future<Output = ApiResult<T>> + use<T, W>>
    where
        T: Send + 'static,
        W: FnOnce() -> ApiResult<T> + Send + 'static,
    {
        let permit = self.admit()?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A caller that went away (cancelled call, closed connection) gets no hash.
            if tx.is_closed() {
                return;
            }
            let result = work();
            // The place is given back before the caller hears, so a caller that submits again
            // as soon as it has its answer finds the place free.
            drop(permit);
            let _ = tx.send(result);
        });
        let sent = match &*self.jobs.lock().expect("hash pool lock") {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(stopped());
        }
        Ok(async move { rx.await.unwrap_or_else(|_| Err(stopped())) })
    }

    /// Reserves a place among the running and queued requests, atomically.
    fn admit(&self) -> ApiResult<Permit> {
        let taken = self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        match taken {
            Ok(before) => {
                show_admitted(before + 1, self.worker_count);
                Ok(Permit {
                    admitted: self.admitted.clone(),
                    workers: self.worker_count,
                })
            }
            Err(_) => {
                metrics::counter!(REFUSED).increment(1);
                tracing::debug!(capacity = self.capacity, "hashing pool full; refused");
                Err(busy())
            }
        }
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        // Closing the channel ends each worker's loop once the queue is empty; the workers
        // drop (not run) what is still queued.
        self.closed.store(true, Ordering::Release);
        self.jobs.lock().expect("hash pool lock").take();
        for handle in self.workers.lock().expect("hash pool lock").drain(..) {
            if handle.join().is_err() {
                tracing::error!("a password hashing worker panicked");
            }
        }
    }
}

/// A worker's loop: take the next job until the pool closes; once it is closing, queued jobs
/// are dropped unrun (their callers get `UNAVAILABLE`).
fn work(jobs: &Mutex<mpsc::Receiver<Job>>, closed: &AtomicBool) {
    IS_WORKER.set(true);
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let next = jobs.lock().map(|rx| rx.recv());
        match next {
            Ok(Ok(job)) if !closed.load(Ordering::Acquire) => job(),
            Ok(Ok(discarded)) => drop(discarded),
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};

    use rosetta_kit::Reason;
    use tonic::Code;

    use super::*;
    use crate::password;

    /// A job that holds the pool's worker until the returned sender is used.
    fn hold(pool: &HashPool) -> (mpsc::Sender<()>, impl Future<Output = ApiResult<()>>) {
        let (open, gate) = mpsc::channel::<()>();
        let held = pool
            .submit(move || {
                gate.recv().ok();
                Ok(())
            })
            .expect("admitted");
        (open, held)
    }

    #[tokio::test]
    async fn beyond_workers_and_queue_requests_are_refused_at_once() {
        let pool = HashPool::new(1, 1);
        let (open, held) = hold(&pool);
        let queued = pool.submit(|| Ok(7)).expect("the queue place");
        for _ in 0..10 {
            let refused = pool.submit(|| Ok(0)).err().expect("refused");
            assert_eq!(refused.code, Code::ResourceExhausted);
            assert_eq!(refused.reason, Reason::Throttled);
            assert_eq!(refused.retry_after, Some(RETRY_AFTER));
        }
        open.send(()).unwrap();
        held.await.unwrap();
        assert_eq!(queued.await.unwrap(), 7);
        // Places are given back: the pool admits its full capacity again.
        let (open, held) = hold(&pool);
        let queued = pool.submit(|| Ok(8)).expect("admitted again");
        open.send(()).unwrap();
        held.await.unwrap();
        assert_eq!(queued.await.unwrap(), 8);
    }

    #[tokio::test]
    async fn a_request_whose_caller_left_is_not_hashed() {
        let pool = HashPool::new(1, 2);
        let ran = Arc::new(AtomicU32::new(0));
        let (open, held) = hold(&pool);
        let counted = ran.clone();
        let abandoned = pool
            .submit(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        drop(abandoned);
        open.send(()).unwrap();
        held.await.unwrap();
        // One worker, first in first out: once this is done the abandoned job was taken.
        pool.run(|| Ok(())).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn pool_verifiers_and_stock_verifiers_read_each_other() {
        let pool = HashPool::new(2, 4);
        let ours = pool.run(|| password::hash("secret")).await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let stock = Argon2::default();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(stock.verify_password(b"secret", &parsed).is_ok());
        assert!(stock.verify_password(b"Secret", &parsed).is_err());

        let argon2 = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            password::argon2_params(),
        );
        let theirs = argon2.hash_password(b"secret").unwrap().to_string();
        let checked = theirs.clone();
        assert!(
            pool.run(move || Ok(password::verify("secret", &checked)))
                .await
                .unwrap()
        );
        assert!(
            !pool
                .run(move || Ok(password::verify("Secret", &theirs)))
                .await
                .unwrap()
        );
    }
}
