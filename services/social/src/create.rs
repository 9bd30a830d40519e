//! Group creation: an ordinary group (consent for its first members, the hourly limit, a
//! client-chosen id) and the system-owned public groups named by slug (the DPC lobby).
//!
//! Group ids: the server allocates from the table's sequence; a pipe client may instead ask
//! for its own number. On PostgreSQL an explicit id does not advance the sequence, so the
//! sequence is first moved past the requested id (never backwards), and an allocated id that
//! still collides with a concurrent explicit insert is retried under a savepoint.

use rosetta_auth::Caller;
use rosetta_db::{entity::social::group, now_ms};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::social::v1::{CreateGroupRequest, Group, JoinPublicGroupRequest};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, Statement, TransactionTrait,
};

use crate::{
    Social,
    consent::{self, lock_users},
    groups::{MEMBER, OWNER, add_rows, joined, membership, room_for_one, told_of_membership},
    limits::{self, MAX_GROUP_MEMBERS, invalid, limit_reached, within},
    users::require_live,
};

/// Tries of an allocated id that lost a race to an explicit one.
const ALLOCATION_TRIES: usize = 3;
const HOUR_MS: i64 = 3_600_000;

impl Social {
    /// A group owned by the caller. The named users who are the caller's friends become
    /// members; the others are invited (or, with `friends_only`, refuse the call).
    pub async fn create_group(&self, caller: &Caller, req: CreateGroupRequest) -> ApiResult<Group> {
        let me = caller.user_id;
        let name = limits::group_name(&req.name)?;
        if req.requested_id.is_some_and(|id| id <= 0) {
            return Err(invalid("requested_id must be positive"));
        }
        let mut named: Vec<i64> = req.member_ids.into_iter().filter(|id| *id != me).collect();
        named.sort_unstable();
        named.dedup();
        within(
            1,
            named.len() as u64,
            MAX_GROUP_MEMBERS,
            "members per group",
        )?;
        require_live(&self.db, &named).await?;

        let now = now_ms();
        let txn = self.write().await?;
        // The creator's row is locked first: concurrent creations by one user queue here, so
        // the hourly count below cannot be raced past.
        lock_users(&txn, me, &named).await?;
        self.within_hourly_limit(&txn, me, now).await?;
        let split = consent::split(&txn, me, &named, req.friends_only).await?;
        let row = group::ActiveModel {
            name: Set(name),
            owner_id: Set(me),
            public: Set(req.public),
            slug: Set(None),
            created_at_ms: Set(now),
            dissolved_at_ms: Set(None),
            system: Set(false),
            created_by: Set(Some(me)),
            ..Default::default()
        };
        let created = match req.requested_id {
            Some(id) => insert_with_id(&txn, row, id).await?,
            None => insert_allocated(&txn, row).await?,
        };
        add_rows(&txn, created.id, &[me], OWNER, now).await?;
        add_rows(&txn, created.id, &split.friends, MEMBER, now).await?;
        let invitations = consent::invite(&txn, created.id, me, &split.strangers, now).await?;
        txn.commit().await?;

        if !split.friends.is_empty() {
            let mut everyone = split.friends.clone();
            everyone.push(me);
            self.publish(
                &everyone,
                consent::members_added(created.id, &split.friends, me),
            )
            .await;
        }
        let invited = invitations.iter().map(|i| i.invitee_id).collect();
        self.announce_invitations(invitations).await;
        let mut view = self.group_view(me, created).await?;
        view.invited_user_ids = invited;
        Ok(view)
    }

    /// Refuses a creation past the groups `me` may create per hour.
    async fn within_hourly_limit(
        &self,
        txn: &DatabaseTransaction,
        me: i64,
        now: i64,
    ) -> ApiResult<()> {
        let recent = group::Entity::find()
            .filter(group::Column::CreatedBy.eq(me))
            .filter(group::Column::CreatedAtMs.gt(now - HOUR_MS))
            .count(txn)
            .await?;
        if recent >= self.config.groups_per_hour {
            return Err(limit_reached(format!(
                "at most {} new groups per hour",
                self.config.groups_per_hour
            )));
        }
        Ok(())
    }

    /// The system-owned public group named `slug` (created on first use when the slug is
    /// configured); the caller becomes a plain member.
    pub async fn join_public_group(
        &self,
        caller: &Caller,
        req: JoinPublicGroupRequest,
    ) -> ApiResult<Group> {
        let me = caller.user_id;
        let slug = limits::slug(&req.slug)?;
        let lobby = match self.by_slug(&slug).await? {
            Some(lobby) => lobby,
            None => self.create_public(me, &slug, &req.name).await?,
        };
        let now = now_ms();
        let txn = self.write().await?;
        if membership(&txn, lobby.id, me).await?.is_none() {
            room_for_one(&txn, &lobby).await?;
            add_rows(&txn, lobby.id, &[me], MEMBER, now).await?;
            txn.commit().await?;
            let told = told_of_membership(&self.db, &lobby, &[me]).await?;
            self.publish(&told, joined(lobby.id, me, me)).await;
        } else {
            txn.commit().await?;
        }
        self.group_view(me, lobby).await
    }

    /// Creates the public group of a configured slug, owned by nobody. The `owner_id` column
    /// must name a user, so it holds the first caller; it grants nothing (`system`).
    async fn create_public(&self, me: i64, slug: &str, name: &str) -> ApiResult<group::Model> {
        if !self.config.public_slugs.iter().any(|s| s == slug) {
            return Err(ApiError::not_found("no such public group"));
        }
        let name = if name.trim().is_empty() {
            slug.to_owned()
        } else {
            limits::group_name(name)?
        };
        let row = group::ActiveModel {
            name: Set(name),
            owner_id: Set(me),
            public: Set(true),
            slug: Set(Some(slug.to_owned())),
            created_at_ms: Set(now_ms()),
            dissolved_at_ms: Set(None),
            system: Set(true),
            created_by: Set(None),
            ..Default::default()
        };
        let txn = self.write().await?;
        match insert_allocated(&txn, row).await {
            Ok(created) => {
                txn.commit().await?;
                Ok(created)
            }
            // A concurrent first caller created it.
            Err(err) if err.reason == Reason::GroupIdTaken => {
                txn.rollback().await?;
                self.by_slug(slug)
                    .await?
                    .ok_or_else(|| ApiError::internal("public group vanished"))
            }
            Err(err) => Err(err),
        }
    }

    async fn by_slug(&self, slug: &str) -> ApiResult<Option<group::Model>> {
        Ok(group::Entity::find()
            .filter(group::Column::Slug.eq(slug))
            .filter(group::Column::DissolvedAtMs.is_null())
            .one(&self.db)
            .await?)
    }
}

fn id_taken() -> ApiError {
    ApiError::exists(Reason::GroupIdTaken, "this group id is taken")
}

async fn insert_with_id(
    txn: &DatabaseTransaction,
    mut row: group::ActiveModel,
    id: i64,
) -> ApiResult<group::Model> {
    // Dissolved groups keep their id: messages still reference it.
    if group::Entity::find_by_id(id).one(txn).await?.is_some() {
        return Err(id_taken());
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT setval(pg_get_serial_sequence('groups', 'id'), \
             GREATEST($1, COALESCE(pg_sequence_last_value(\
             pg_get_serial_sequence('groups', 'id')::regclass), 0)))",
            [id.into()],
        ))
        .await?;
    }
    row.id = Set(id);
    group::Entity::insert(row)
        .exec_with_returning(txn)
        .await
        .map_err(|err| unique(err, id_taken()))
}

/// Inserts with a sequence-allocated id, retrying (under a savepoint) an id a concurrent
/// explicit insert took. A slug clash is GROUP_ID_TAKEN too: the caller re-reads by slug.
async fn insert_allocated(
    txn: &DatabaseTransaction,
    row: group::ActiveModel,
) -> ApiResult<group::Model> {
    let has_slug = matches!(&row.slug, sea_orm::ActiveValue::Set(Some(_)));
    for _ in 1..ALLOCATION_TRIES {
        let savepoint = txn.begin().await?;
        match group::Entity::insert(row.clone())
            .exec_with_returning(&savepoint)
            .await
        {
            Ok(created) => {
                savepoint.commit().await?;
                return Ok(created);
            }
            Err(err) if is_unique(&err) && !has_slug => {
                savepoint.rollback().await?;
            }
            Err(err) => return Err(unique(err, id_taken())),
        }
    }
    group::Entity::insert(row)
        .exec_with_returning(txn)
        .await
        .map_err(|err| unique(err, id_taken()))
}

fn is_unique(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn unique(err: sea_orm::DbErr, instead: ApiError) -> ApiError {
    if is_unique(&err) {
        instead
    } else {
        ApiError::from(err)
    }
}
