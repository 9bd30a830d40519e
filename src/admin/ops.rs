//! `rosetta admin status` and `rosetta admin maintenance`: the deployment's instances and the
//! maintenance switch, printed as one JSON object per line.

use clap::ValueEnum;
use rosetta_proto::admin::v1::{
    GetStatusRequest, GetStatusResponse, Maintenance, SetMaintenanceRequest,
};
use serde_json::{Value, json};

use super::Api;

/// What `rosetta admin maintenance` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Refuse new logins of non-admins.
    On,
    /// Take logins again.
    Off,
}

/// Prints every instance, the load per protocol and the maintenance state as one object.
pub async fn status(api: &Api) -> anyhow::Result<()> {
    let request = api.request(GetStatusRequest {})?;
    let reply = api.client().await?.get_status(request).await?.into_inner();
    println!("{}", status_json(&reply));
    Ok(())
}

/// Turns maintenance on (optionally ending the sessions of non-admins) or off.
pub async fn maintenance(
    api: &Api,
    switch: Switch,
    message: String,
    drain: bool,
) -> anyhow::Result<()> {
    let request = api.request(SetMaintenanceRequest {
        enabled: switch == Switch::On,
        message,
        drain,
    })?;
    let reply = api
        .client()
        .await?
        .set_maintenance(request)
        .await?
        .into_inner();
    let mut value = maintenance_json(&reply.maintenance.unwrap_or_default());
    value["sessions_ended"] = reply.sessions_ended.into();
    println!("{value}");
    Ok(())
}

fn maintenance_json(m: &Maintenance) -> Value {
    json!({
        "enabled": m.enabled,
        "message": m.message,
        "changed_at_ms": m.changed_at_ms,
        "changed_by": m.changed_by,
    })
}

fn status_json(s: &GetStatusResponse) -> Value {
    let instances: Vec<Value> = s
        .instances
        .iter()
        .map(|i| {
            json!({
                "process_id": i.process_id,
                "kind": i.kind,
                "name": i.name,
                "version": i.version,
                "host": i.host,
                "started_at_ms": i.started_at_ms,
                "last_seen_ms": i.last_seen_ms,
                "uptime_ms": i.uptime_ms,
                "stale": i.stale,
                "connections": i.connections,
                "online_users": i.online_users,
            })
        })
        .collect();
    let protocols: serde_json::Map<String, Value> = s
        .protocols
        .iter()
        .map(|p| {
            (
                p.protocol.clone(),
                json!({"connections": p.connections, "online_users": p.online_users}),
            )
        })
        .collect();
    json!({
        "now_ms": s.now_ms,
        "maintenance": maintenance_json(&s.maintenance.clone().unwrap_or_default()),
        "protocols": protocols,
        "instances": instances,
    })
}
