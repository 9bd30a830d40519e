//! The audit log: one row per admin action, written in the transaction of the action's
//! effect where it has one, and listed newest first.

use rosetta_db::{entity::audit_log, now_ms};
use rosetta_kit::{ApiResult, page::Page};
use rosetta_proto::admin::v1::{AuditEntry, ListAuditLogRequest, ListAuditLogResponse};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// Longest `details` text kept; a note longer than this is cut (the request limits notes).
const MAX_DETAILS: usize = 2000;

/// The outcome of an action that did what it was asked.
pub const OK: &str = "OK";

/// Who acted: an admin (by id and their user name at the time) or the server's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
}

impl Actor {
    /// The command line on the server (`rosetta admin grant`): database access, no account.
    pub fn cli() -> Self {
        Self {
            user_id: None,
            name: "cli".into(),
        }
    }
}

/// One action to record.
pub struct Entry<'a> {
    pub actor: &'a Actor,
    pub action: &'static str,
    pub target: Option<i64>,
    pub details: String,
    pub outcome: &'a str,
}

/// Writes `entry` on `db` (the action's transaction, when it has one).
pub async fn record<C: ConnectionTrait>(db: &C, entry: Entry<'_>) -> ApiResult<()> {
    audit_log::Entity::insert(audit_log::ActiveModel {
        at_ms: Set(now_ms()),
        actor_user_id: Set(entry.actor.user_id),
        actor: Set(entry.actor.name.clone()),
        action: Set(entry.action.to_owned()),
        target_user_id: Set(entry.target),
        details: Set(entry.details.chars().take(MAX_DETAILS).collect()),
        outcome: Set(entry.outcome.to_owned()),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    tracing::info!(
        actor = %entry.actor.name,
        action = entry.action,
        target = ?entry.target,
        outcome = entry.outcome,
        "admin action"
    );
    Ok(())
}

/// A page of the log, newest first; the page token is the id of the last entry returned.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    req: &ListAuditLogRequest,
) -> ApiResult<ListAuditLogResponse> {
    let page = Page::from_request(req.page.as_ref())?;
    let mut query = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Id)
        .limit(page.fetch());
    if let Some(before) = page.after {
        query = query.filter(audit_log::Column::Id.lt(before));
    }
    if req.target_user_id != 0 {
        query = query.filter(audit_log::Column::TargetUserId.eq(req.target_user_id));
    }
    let (rows, page) = page.finish(query.all(db).await?, |row| row.id);
    Ok(ListAuditLogResponse {
        entries: rows.into_iter().map(entry).collect(),
        page: Some(page),
    })
}

fn entry(row: audit_log::Model) -> AuditEntry {
    AuditEntry {
        id: row.id,
        at_ms: row.at_ms,
        actor_user_id: row.actor_user_id.unwrap_or(0),
        actor: row.actor,
        action: row.action,
        target_user_id: row.target_user_id.unwrap_or(0),
        details: row.details,
        outcome: row.outcome,
    }
}
