//! Failure counters with exponential lock-out, kept in the database so every instance sees
//! the same count. Each guarded action has its own key (`login:<id>`, `recover:<id>`), so a
//! flood of wrong logins never blocks password recovery, and locks are capped in length so
//! nobody can lock an account forever.

use std::time::Duration;

use rosetta_db::{entity::throttle, now_ms};
use rosetta_kit::ApiError;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, IntoActiveModel,
};

pub struct Throttle {
    pub threshold: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Throttle {
    /// Refuses while `key` is locked.
    pub async fn check(&self, db: &DatabaseConnection, key: &str) -> Result<(), ApiError> {
        let now = now_ms();
        match throttle::Entity::find_by_id(key.to_owned()).one(db).await? {
            Some(row) if row.locked_until_ms > now => Err(ApiError::throttled(
                Duration::from_millis(u64::try_from(row.locked_until_ms - now).unwrap_or(0)),
            )),
            _ => Ok(()),
        }
    }

    /// Counts a failure; from the threshold on, each failure locks for twice as long.
    pub async fn fail(&self, db: &DatabaseConnection, key: &str) -> Result<(), ApiError> {
        let now = now_ms();
        let row = throttle::Entity::find_by_id(key.to_owned()).one(db).await?;
        let failures = row.as_ref().map_or(0, |r| r.failures).saturating_add(1);
        let locked_until_ms = match u32::try_from(failures)
            .unwrap_or(u32::MAX)
            .checked_sub(self.threshold)
        {
            Some(over) => now + self.lock_for(over).as_millis() as i64,
            None => 0,
        };
        match row {
            Some(row) => {
                let mut active = row.into_active_model();
                active.failures = Set(failures);
                active.locked_until_ms = Set(locked_until_ms);
                active.updated_at_ms = Set(now);
                active.update(db).await?;
            }
            None => {
                throttle::ActiveModel {
                    key: Set(key.to_owned()),
                    failures: Set(failures),
                    locked_until_ms: Set(locked_until_ms),
                    updated_at_ms: Set(now),
                }
                .insert(db)
                .await?;
            }
        }
        Ok(())
    }

    pub async fn reset(&self, db: &DatabaseConnection, key: &str) -> Result<(), ApiError> {
        throttle::Entity::delete_by_id(key.to_owned())
            .exec(db)
            .await?;
        Ok(())
    }

    fn lock_for(&self, over_threshold: u32) -> Duration {
        self.base
            .saturating_mul(1 << over_threshold.min(16))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_doubles_and_is_capped() {
        let t = Throttle {
            threshold: 5,
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        };
        assert_eq!(t.lock_for(0), Duration::from_secs(30));
        assert_eq!(t.lock_for(1), Duration::from_secs(60));
        assert_eq!(t.lock_for(10), Duration::from_secs(900));
        assert_eq!(t.lock_for(u32::MAX), Duration::from_secs(900));
    }
}
