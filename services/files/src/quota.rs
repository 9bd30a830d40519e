//! Per-user storage accounting. Stored bytes come from the files table; bytes of uploads still
//! streaming are reserved in memory so that parallel uploads cannot jointly overshoot the
//! quota. Reservations are per process: nodes running the files role side by side can each
//! admit one upload's worth beyond the limit.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use rosetta_db::entity::files::file;
use rosetta_kit::{ApiError, ApiResult, Reason};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use crate::Files;

#[derive(Default, Clone)]
pub(crate) struct Reservations(Arc<Mutex<HashMap<i64, u64>>>);

/// Holds `bytes` of `user`'s quota until dropped (the upload committed or failed).
pub(crate) struct Reservation {
    owner: Reservations,
    user: i64,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut map = self.owner.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = map.get_mut(&self.user) {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                map.remove(&self.user);
            }
        }
    }
}

impl Files {
    /// Bytes the user's stored files take.
    pub(crate) async fn used_bytes(&self, user: i64) -> ApiResult<u64> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back.
        let used: Option<i64> = file::Entity::find()
            .select_only()
            .column_as(
                Expr::cust("COALESCE(CAST(SUM(\"size\") AS BIGINT), 0)"),
                "used",
            )
            .filter(file::Column::OwnerId.eq(user))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(used.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Admits an upload of `size` bytes: TOO_LARGE past the per-file limit, QUOTA_EXCEEDED
    /// when stored plus in-flight plus `size` would pass the user's quota.
    pub(crate) async fn reserve(&self, user: i64, size: u64) -> ApiResult<Reservation> {
        let max = self.settings.max_file_bytes;
        if size > max {
            return Err(ApiError::invalid(
                Reason::TooLarge,
                format!("file is {size} bytes; the limit is {max}"),
            ));
        }
        let used = self.used_bytes(user).await?;
        let limit = self.settings.quota_bytes;
        let mut map = self
            .reservations
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = map.get(&user).copied().unwrap_or(0);
        if used.saturating_add(held).saturating_add(size) > limit {
            return Err(ApiError::new(
                tonic::Code::ResourceExhausted,
                Reason::QuotaExceeded,
                format!("{used} of {limit} bytes used; {size} more do not fit"),
            ));
        }
        *map.entry(user).or_insert(0) += size;
        Ok(Reservation {
            owner: self.reservations.clone(),
            user,
            bytes: size,
        })
    }
}
