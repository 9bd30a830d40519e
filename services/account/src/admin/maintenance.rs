//! Maintenance mode: while it is on, new logins of accounts without the admin role are
//! refused (UNAVAILABLE / MAINTENANCE), so that operators can work on a live deployment and
//! still log in to turn it off. The switch lives in the database, so every replica of the
//! account service sees it; each reads it at most once a second for the logins it checks.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use rosetta_db::{
    begin_write,
    entity::{admin, legacy_token, maintenance, session},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::admin::v1::{Maintenance, SetMaintenanceRequest, SetMaintenanceResponse};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, OnConflict, Query, SelectStatement},
};
use tonic::Code;

use super::audit::{self, Actor, Entry};
use crate::Accounts;

/// How long a replica answers logins from the switch it last read: another replica's change
/// reaches it within this.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// What a refused client is told to wait before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Longest operator message.
const MAX_MESSAGE_CHARS: usize = 500;

/// The switch as last read, and when.
#[derive(Default)]
pub(crate) struct Cache(Mutex<Option<(Instant, Maintenance)>>);

impl Cache {
    fn get(&self) -> Option<Maintenance> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(read, _)| read.elapsed() < FRESH_FOR)
            .map(|(_, state)| state.clone())
    }

    fn put(&self, state: &Maintenance) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), state.clone()));
    }
}

fn state(row: Option<maintenance::Model>) -> Maintenance {
    row.map(|row| Maintenance {
        enabled: row.enabled,
        message: row.message,
        changed_at_ms: row.changed_at_ms,
        changed_by: row.changed_by,
    })
    .unwrap_or_default()
}

/// The refusal of a login during maintenance: the operator's message when there is one.
fn refusal(state: &Maintenance) -> ApiError {
    let message = if state.message.is_empty() {
        "the server is in maintenance; try again later".to_owned()
    } else {
        format!("the server is in maintenance: {}", state.message)
    };
    ApiError {
        retry_after: Some(RETRY_AFTER),
        ..ApiError::new(Code::Unavailable, Reason::Maintenance, message)
    }
}

/// The admins, as a sub-query.
fn admins() -> SelectStatement {
    Query::select()
        .column(admin::Column::UserId)
        .from(admin::Entity)
        .to_owned()
}

/// Ends every live session of every account without the admin role, and their legacy
/// tokens; the ids of the sessions ended.
async fn end_non_admin_sessions<C: ConnectionTrait>(db: &C) -> ApiResult<Vec<String>> {
    let live = || {
        sea_orm::Condition::all()
            .add(session::Column::RevokedAtMs.is_null())
            .add(session::Column::UserId.not_in_subquery(admins()))
    };
    let ended: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(live())
        .into_tuple()
        .all(db)
        .await?;
    // One conditional UPDATE: a session opened since the read above is ended too.
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAtMs, Expr::value(now_ms()))
        .filter(live())
        .exec(db)
        .await?;
    legacy_token::Entity::delete_many()
        .filter(legacy_token::Column::UserId.not_in_subquery(admins()))
        .exec(db)
        .await?;
    Ok(ended)
}

impl Accounts {
    /// The maintenance switch: from the last second's read unless `fresh`.
    pub(crate) async fn maintenance(&self, fresh: bool) -> ApiResult<Maintenance> {
        if !fresh && let Some(state) = self.maintenance.get() {
            return Ok(state);
        }
        let row = maintenance::Entity::find_by_id(maintenance::ROW)
            .one(&self.db)
            .await?;
        let state = state(row);
        self.maintenance.put(&state);
        Ok(state)
    }

    /// Refuses a login the account may not make now: a disabled account, or any but an
    /// admin's during maintenance. Every protocol's login opens its session through this;
    /// `fresh` reads the switch past the cache (the check after the session is stored, which
    /// a drain racing with the login must see; see `admin_set_maintenance`).
    pub(crate) async fn refuse_login(&self, user_id: i64, fresh: bool) -> ApiResult<()> {
        self.refuse_disabled(user_id).await?;
        let state = self.maintenance(fresh).await?;
        if !state.enabled {
            return Ok(());
        }
        let is_admin = admin::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .is_some();
        if is_admin {
            return Ok(());
        }
        Err(refusal(&state))
    }

    pub(crate) async fn admin_set_maintenance(
        &self,
        actor: &Actor,
        req: &SetMaintenanceRequest,
    ) -> ApiResult<SetMaintenanceResponse> {
        let message = req.message.trim();
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(ApiError::invalid(
                Reason::InvalidArgument,
                format!("message longer than {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        let drain = req.enabled && req.drain;
        let row = maintenance::Model {
            id: maintenance::ROW,
            enabled: req.enabled,
            message: message.to_owned(),
            changed_at_ms: now_ms(),
            changed_by: actor.name.clone(),
        };
        let txn = begin_write(&self.db).await?;
        maintenance::Entity::insert(maintenance::ActiveModel {
            id: Set(row.id),
            enabled: Set(row.enabled),
            message: Set(row.message.clone()),
            changed_at_ms: Set(row.changed_at_ms),
            changed_by: Set(row.changed_by.clone()),
        })
        .on_conflict(
            OnConflict::column(maintenance::Column::Id)
                .update_columns([
                    maintenance::Column::Enabled,
                    maintenance::Column::Message,
                    maintenance::Column::ChangedAtMs,
                    maintenance::Column::ChangedBy,
                ])
                .to_owned(),
        )
        .exec_without_returning(&*txn)
        .await?;
        let mut ended = if drain {
            end_non_admin_sessions(&*txn).await?
        } else {
            Vec::new()
        };
        let entry = Entry {
            actor,
            action: "SetMaintenance",
            target: None,
            details: format!(
                "enabled={} drain={drain} message={message:?} sessions_ended={}",
                req.enabled,
                ended.len()
            ),
            outcome: audit::OK,
        };
        audit::record(&*txn, entry).await?;
        txn.commit().await?;
        let state = state(Some(row));
        self.maintenance.put(&state);
        if drain {
            // A login that read the switch as off may have stored its session after the
            // statement above: it reads the switch again after storing (and sees it on now),
            // or its session is ended here.
            ended.extend(end_non_admin_sessions(&self.db).await?);
            self.forget_sessions(&ended);
        }
        Ok(SetMaintenanceResponse {
            maintenance: Some(state),
            sessions_ended: i32::try_from(ended.len()).unwrap_or(i32::MAX),
        })
    }
}
