//! Status of the deployment: every role and bridge instance reports itself (roles write their
//! row from a heartbeat, bridges through `NodeService/ReportStatus`, since they never touch
//! the database), and `GetStatus` lists the reports with the load per protocol.

use std::collections::BTreeMap;

use rosetta_db::{entity::node_status, now_ms};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::admin::v1::{GetStatusResponse, Instance, ProtocolLoad};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

/// Reports older than this are forgotten (a process gone for good, or restarted under a new
/// process id); younger ones are listed, stale or not.
pub const FORGET_AFTER_MS: i64 = 60 * 60 * 1000;

/// An instance is stale after this many of its intervals without a report.
const STALE_AFTER_INTERVALS: i64 = 3;

/// Most instances listed: a deployment has a few dozen; a bound keeps the answer small even
/// if something reports under ever new ids.
const MAX_LISTED: u64 = 1000;

/// What an instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Role,
    Bridge,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::Bridge => "bridge",
        }
    }
}

/// The process a report comes from.
#[derive(Debug, Clone)]
pub struct Process {
    pub id: String,
    pub version: String,
    pub host: String,
    pub started_at_ms: i64,
    pub interval_ms: i64,
}

/// One instance's numbers.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: Kind,
    pub name: String,
    pub connections: i64,
    pub online_users: i64,
}

/// The bridges a report may name: what `ReportStatus` accepts, so a bridge key cannot fill
/// the table with made-up names.
pub const BRIDGES: &[&str] = &["pipe", "dpc", "imps", "ourchat", "cloudchat"];

fn checked(process: &Process) -> ApiResult<()> {
    let ok = (1..=64).contains(&process.id.len())
        && process.version.len() <= 64
        && process.host.len() <= 255
        && process.interval_ms > 0;
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            Reason::InvalidArgument,
            "process id (1–64), version (≤ 64), host (≤ 255) and a positive interval needed",
        ))
    }
}

/// Writes the reports of one process (replacing its earlier ones) and forgets reports older
/// than [`FORGET_AFTER_MS`].
pub async fn record<C: ConnectionTrait>(
    db: &C,
    process: &Process,
    reports: &[Report],
) -> ApiResult<()> {
    checked(process)?;
    let now = now_ms();
    for report in reports {
        node_status::Entity::insert(node_status::ActiveModel {
            id: Set(format!(
                "{}/{}/{}",
                process.id,
                report.kind.as_str(),
                report.name
            )),
            process_id: Set(process.id.clone()),
            kind: Set(report.kind.as_str().to_owned()),
            name: Set(report.name.clone()),
            version: Set(process.version.clone()),
            host: Set(process.host.clone()),
            started_at_ms: Set(process.started_at_ms),
            last_seen_ms: Set(now),
            interval_ms: Set(process.interval_ms),
            connections: Set(report.connections.max(0)),
            online_users: Set(report.online_users.max(0)),
        })
        .on_conflict(
            OnConflict::column(node_status::Column::Id)
                .update_columns([
                    node_status::Column::LastSeenMs,
                    node_status::Column::IntervalMs,
                    node_status::Column::Connections,
                    node_status::Column::OnlineUsers,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    node_status::Entity::delete_many()
        .filter(node_status::Column::LastSeenMs.lt(now - FORGET_AFTER_MS))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes a process's reports (it stops cleanly: listed as gone rather than stale).
pub async fn forget<C: ConnectionTrait>(db: &C, process_id: &str) -> ApiResult<()> {
    node_status::Entity::delete_many()
        .filter(node_status::Column::ProcessId.eq(process_id))
        .exec(db)
        .await?;
    Ok(())
}

fn instance(row: node_status::Model, now: i64) -> Instance {
    let stale = now - row.last_seen_ms > STALE_AFTER_INTERVALS * row.interval_ms;
    Instance {
        process_id: row.process_id,
        kind: row.kind,
        name: row.name,
        version: row.version,
        host: row.host,
        started_at_ms: row.started_at_ms,
        last_seen_ms: row.last_seen_ms,
        uptime_ms: (row.last_seen_ms - row.started_at_ms).max(0),
        stale,
        connections: row.connections,
        online_users: row.online_users,
    }
}

/// Every instance seen within [`FORGET_AFTER_MS`] (roles first, then by name), and the load
/// per protocol over those not stale: each bridge's, and "grpc" from the messaging roles'
/// event streams. The caller adds the maintenance state.
pub async fn list<C: ConnectionTrait>(db: &C) -> ApiResult<GetStatusResponse> {
    let now = now_ms();
    let rows = node_status::Entity::find()
        .filter(node_status::Column::LastSeenMs.gte(now - FORGET_AFTER_MS))
        .order_by_desc(node_status::Column::Kind)
        .order_by_asc(node_status::Column::Name)
        .order_by_asc(node_status::Column::ProcessId)
        .limit(MAX_LISTED)
        .all(db)
        .await?;
    let instances: Vec<Instance> = rows.into_iter().map(|row| instance(row, now)).collect();
    let mut load: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for live in instances.iter().filter(|i| !i.stale) {
        let protocol = match (live.kind.as_str(), live.name.as_str()) {
            ("bridge", name) => name,
            ("role", "messaging") => "grpc",
            _ => continue,
        };
        let sum = load.entry(protocol).or_default();
        sum.0 += live.connections;
        sum.1 += live.online_users;
    }
    let protocols = load
        .into_iter()
        .map(|(protocol, (connections, online_users))| ProtocolLoad {
            protocol: protocol.to_owned(),
            connections,
            online_users,
        })
        .collect();
    Ok(GetStatusResponse {
        instances,
        protocols,
        maintenance: None,
        now_ms: now,
    })
}
