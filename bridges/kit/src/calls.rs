//! Counts of the calls a [`crate::Backend`] makes, per gRPC method: for tests and benchmarks
//! that check what a legacy command costs (e.g. that a cached name saves a `LookupUser`).
//! Off unless a backend is made with [`crate::Backend::counting`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tonic::{GrpcMethod, Request};

/// Calls made per method name (`LookupUser`, `SendMessage`, …). Cheap to clone: clones share
/// the counts.
#[derive(Clone, Default, Debug)]
pub struct CallCounts(Arc<Mutex<HashMap<String, u64>>>);

impl CallCounts {
    /// Calls of `method` so far.
    pub fn get(&self, method: &str) -> u64 {
        self.lock().get(method).copied().unwrap_or(0)
    }

    pub(crate) fn count<T>(&self, request: &Request<T>) {
        if let Some(method) = request.extensions().get::<GrpcMethod<'static>>() {
            *self.lock().entry(method.method().to_owned()).or_default() += 1;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
