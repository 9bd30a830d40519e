//! The social domain's state and the few helpers every part of it shares: publishing events
//! after a commit and checking blocks.

use std::sync::Arc;

use rosetta_db::entity::{policy_epoch, social::block};
use rosetta_events::{EventSink, PresenceView};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::messaging::v1::event::Kind;

use crate::limits::SocialConfig;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sea_query::ExprTrait,
};

pub struct Social {
    pub(crate) db: DatabaseConnection,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) presence: Arc<dyn PresenceView>,
    pub(crate) config: SocialConfig,
}

impl Social {
    pub fn new(
        db: DatabaseConnection,
        events: Arc<dyn EventSink>,
        presence: Arc<dyn PresenceView>,
    ) -> Self {
        Self {
            db,
            events,
            presence,
            config: SocialConfig::default(),
        }
    }

    /// The same service with `config` instead of the defaults.
    pub fn configured(self, config: SocialConfig) -> Self {
        Self { config, ..self }
    }

    /// A transaction that will write. On SQLite it takes the write lock at `BEGIN`
    /// (IMMEDIATE): a deferred transaction that reads and then writes cannot upgrade its lock
    /// while another writer is active and fails with SQLITE_BUSY instead of waiting.
    pub(crate) async fn write(&self) -> ApiResult<DatabaseTransaction> {
        Ok(self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?)
    }

    /// Hands an event to its recipients. Called only after the change committed: a failure
    /// here is logged, not returned, because the caller's change did happen.
    pub(crate) async fn publish(&self, recipients: &[i64], kind: Kind) {
        if recipients.is_empty() {
            return;
        }
        if let Err(err) = self.events.publish(recipients, kind).await {
            tracing::warn!(%err, ?recipients, "event not published");
        }
    }
}

/// Records that whom `users` may message has changed: moves their policy epochs (see
/// `rosetta_db::entity::policy_epoch`). Call it on the transaction of every such change
/// (friendship, block, membership, role, mute, dissolution): messaging answers from caches
/// that check these epochs inside each message's write, so the change binds the next send in
/// every process, whether or not the change's event reaches them.
pub(crate) async fn rights_changed(db: &impl ConnectionTrait, users: &[i64]) -> ApiResult<()> {
    Ok(policy_epoch::bump(db, users).await?)
}

/// Refuses with BLOCKED when either user blocks the other.
pub(crate) async fn not_blocked_either_way(
    db: &impl ConnectionTrait,
    a: i64,
    b: i64,
) -> ApiResult<()> {
    let blocks = block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    block::Column::UserId
                        .eq(a)
                        .and(block::Column::BlockedId.eq(b)),
                )
                .add(
                    block::Column::UserId
                        .eq(b)
                        .and(block::Column::BlockedId.eq(a)),
                ),
        )
        .count(db)
        .await?;
    if blocks > 0 {
        return Err(blocked());
    }
    Ok(())
}

/// Refuses with BLOCKED when any of `users` blocks `actor` or is blocked by them (adding to
/// or inviting into a group).
pub(crate) async fn none_blocks(
    db: &impl ConnectionTrait,
    users: &[i64],
    actor: i64,
) -> ApiResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let them = || users.iter().copied();
    let blocking = block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    block::Column::BlockedId
                        .eq(actor)
                        .and(block::Column::UserId.is_in(them())),
                )
                .add(
                    block::Column::UserId
                        .eq(actor)
                        .and(block::Column::BlockedId.is_in(them())),
                ),
        )
        .count(db)
        .await?;
    if blocking > 0 {
        return Err(blocked());
    }
    Ok(())
}

fn blocked() -> ApiError {
    ApiError::denied(Reason::Blocked, "blocked")
}
