//! Failure counters with exponential lock-out, kept in the database so every instance sees
//! the same count. Each guarded action has its own key (`login:<id>`, `recover:<id>`, and for
//! identifiers nobody has, `login:?<digest>`), so a flood of wrong logins never blocks
//! password recovery, and locks are capped in length so nobody can lock an account forever.
//!
//! An attempt is reserved — counted as a failure, and the lock set if it reaches the
//! threshold — in one conditional statement *before* the expensive check, so however many
//! guesses arrive at once, at most `threshold` are checked between two locks. A success gives
//! the attempt back by clearing the counter.

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use rosetta_db::{entity::throttle, now_ms};
use rosetta_kit::ApiError;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{CaseStatement, Expr, ExprTrait, OnConflict, Query},
};

use throttle::Column as C;

/// How often (at most) one instance deletes forgotten counters.
const SWEEP_EVERY_MS: i64 = 60_000;

pub struct Throttle {
    pub threshold: u32,
    pub base: Duration,
    pub max: Duration,
    /// When this instance last deleted forgotten counters.
    last_sweep_ms: AtomicI64,
}

impl Throttle {
    pub fn new(threshold: u32, base: Duration, max: Duration) -> Self {
        Self {
            threshold,
            base,
            max,
            last_sweep_ms: AtomicI64::new(0),
        }
    }

    /// Reserves one attempt at `key`, or refuses with THROTTLED while it is locked. The
    /// attempt counts as a failure until [`Throttle::reset`] gives it back.
    pub async fn reserve(&self, db: &DatabaseConnection, key: &str) -> Result<(), ApiError> {
        let now = now_ms();
        self.sweep(db, now).await;
        // A lock can end (a success clears it) between the refused reservation and the read
        // of its length; then the reservation is simply tried again.
        for _ in 0..3 {
            if db.query_one(&self.reservation(key, now)).await?.is_some() {
                return Ok(());
            }
            if let Some(row) = throttle::Entity::find_by_id(key.to_owned()).one(db).await?
                && row.locked_until_ms > now
            {
                return Err(throttled(row.locked_until_ms - now));
            }
        }
        Err(ApiError::throttled(self.base))
    }

    /// Clears `key`'s failures (a success), lifting any lock.
    pub async fn reset(&self, db: &DatabaseConnection, key: &str) -> Result<(), ApiError> {
        throttle::Entity::delete_by_id(key.to_owned())
            .exec(db)
            .await?;
        Ok(())
    }

    /// Gives back an attempt reserved at `key` that checked nothing (the hashing pool was busy
    /// or stopping): one failure fewer, and no lock below the threshold. A flood that fills
    /// the pool must not lock out the accounts whose logins it crowded out.
    pub async fn release(&self, db: &DatabaseConnection, key: &str) -> Result<(), ApiError> {
        let threshold = i32::try_from(self.threshold).unwrap_or(i32::MAX);
        let remaining = || Expr::col(C::Failures).sub(1);
        throttle::Entity::update_many()
            .col_expr(C::Failures, remaining())
            .col_expr(
                C::LockedUntilMs,
                CaseStatement::new()
                    .case(remaining().lt(threshold), 0i64)
                    .finally(Expr::col(C::LockedUntilMs))
                    .into(),
            )
            .filter(C::Key.eq(key))
            .filter(C::Failures.gt(0))
            .exec(db)
            .await?;
        Ok(())
    }

    /// `INSERT … ON CONFLICT (key) DO UPDATE SET failures = failures + 1, locked_until_ms = …
    /// WHERE locked_until_ms <= now RETURNING failures`: a row comes back only when the
    /// attempt was granted. Both SQLite (≥ 3.35) and PostgreSQL run it atomically.
    fn reservation(&self, key: &str, now: i64) -> sea_orm::sea_query::InsertStatement {
        Query::insert()
            .into_table(throttle::Entity)
            .columns([C::Key, C::Failures, C::LockedUntilMs, C::UpdatedAtMs])
            .values_panic([
                key.into(),
                1i32.into(),
                self.locked_until(1, now).into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::column(C::Key)
                    .value(
                        C::Failures,
                        Expr::col((throttle::Entity, C::Failures)).add(1),
                    )
                    .value(C::LockedUntilMs, self.lock_after_next_failure(now))
                    .value(C::UpdatedAtMs, now)
                    .action_and_where(Expr::col((throttle::Entity, C::LockedUntilMs)).lte(now))
                    .to_owned(),
            )
            .returning_col(C::Failures)
            .to_owned()
    }

    /// The lock that `failures` failures earn, as an instant: none below the threshold, then
    /// doubling from `base` up to `max`.
    fn locked_until(&self, failures: u32, now: i64) -> i64 {
        match failures.checked_sub(self.threshold) {
            Some(over) => now.saturating_add(millis(self.lock_for(over))),
            None => 0,
        }
    }

    /// [`Throttle::locked_until`] for the stored count plus one, as SQL: one `WHEN` per
    /// distinct lock length (at most 17, since the doubling is capped).
    fn lock_after_next_failure(&self, now: i64) -> Expr {
        let next = || Expr::col((throttle::Entity, C::Failures)).add(1);
        let threshold = i32::try_from(self.threshold).unwrap_or(i32::MAX);
        let mut case = CaseStatement::new().case(next().lt(threshold), 0i64);
        for over in 0..=16u32 {
            let failures = threshold.saturating_add(over as i32);
            case = case.case(next().eq(failures), self.locked_until(failures as u32, now));
            if self.lock_for(over) >= self.max {
                break;
            }
        }
        case.finally(self.locked_until(u32::MAX, now)).into()
    }

    fn lock_for(&self, over_threshold: u32) -> Duration {
        self.base
            .saturating_mul(1 << Ord::min(over_threshold, 16))
            .min(self.max)
    }

    /// A counter untouched for this long is forgotten. Longer than the longest lock, so the
    /// doubling still holds for a guesser who waits each lock out; the sweep keeps the table
    /// bounded by the failures of this window (identifiers nobody has get rows too).
    fn forget_after(&self) -> Duration {
        self.max.saturating_mul(2).max(Duration::from_secs(3600))
    }

    /// Deletes forgotten, unlocked counters, at most once a minute per instance. A failed
    /// sweep is logged and retried at the next interval; it never fails the attempt.
    async fn sweep(&self, db: &DatabaseConnection, now: i64) {
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let swept = throttle::Entity::delete_many()
            .filter(C::UpdatedAtMs.lt(now - millis(self.forget_after())))
            .filter(C::LockedUntilMs.lte(now))
            .exec(db)
            .await;
        match swept {
            Ok(done) if done.rows_affected > 0 => {
                tracing::debug!(rows = done.rows_affected, "forgot old throttle counters");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "sweeping throttle counters failed"),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn throttled(wait_ms: i64) -> ApiError {
    ApiError::throttled(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(5, Duration::from_secs(30), Duration::from_secs(900))
    }

    #[test]
    fn lock_doubles_and_is_capped() {
        let t = throttle();
        assert_eq!(t.lock_for(0), Duration::from_secs(30));
        assert_eq!(t.lock_for(1), Duration::from_secs(60));
        assert_eq!(t.lock_for(10), Duration::from_secs(900));
        assert_eq!(t.lock_for(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn the_threshold_th_failure_locks() {
        let t = throttle();
        assert_eq!(t.locked_until(4, 1000), 0);
        assert_eq!(t.locked_until(5, 1000), 31_000);
        assert_eq!(t.locked_until(6, 1000), 61_000);
        assert_eq!(t.locked_until(u32::MAX, 1000), 901_000);
    }
}
