//! `rosetta.admin.v1.NodeService`: bridges report their instances (with the bridge
//! credential), and anyone may ask whether the server takes logins (what a legacy "server
//! status" request is answered from).

use std::sync::Arc;

use rosetta_auth::BridgeKey;
use rosetta_kit::{ApiError, Reason};
use rosetta_proto::admin::v1::{node_service_server::NodeService, *};
use tonic::{Request, Response, Status};

use super::status::{self, Kind, Process, Report};
use crate::Accounts;

/// Methods callable without a bearer token: all of them (`ReportStatus` checks the bridge
/// credential itself).
pub const NODE_PUBLIC_METHODS: &[&str] = &["ReportStatus", "GetServerStatus"];

/// Most bridges one report may carry (a process runs at most the five).
const MAX_BRIDGES: usize = 16;

pub struct NodeGrpc {
    accounts: Arc<Accounts>,
    /// Only callers holding it may report: without a key nothing is accepted.
    bridge_key: Option<BridgeKey>,
}

impl NodeGrpc {
    pub fn new(accounts: Arc<Accounts>, bridge_key: Option<BridgeKey>) -> Self {
        Self {
            accounts,
            bridge_key,
        }
    }
}

#[tonic::async_trait]
impl NodeService for NodeGrpc {
    async fn report_status(
        &self,
        req: Request<ReportStatusRequest>,
    ) -> Result<Response<ReportStatusResponse>, Status> {
        let from_bridge = self
            .bridge_key
            .as_ref()
            .is_some_and(|key| key.verifies(req.metadata()));
        if !from_bridge {
            return Err(
                ApiError::denied(Reason::Forbidden, "only bridges report their status").into(),
            );
        }
        let body = req.into_inner();
        let known = body
            .bridges
            .iter()
            .all(|b| status::BRIDGES.contains(&b.name.as_str()));
        if body.bridges.len() > MAX_BRIDGES || !known {
            return Err(ApiError::invalid(Reason::InvalidArgument, "unknown bridge name").into());
        }
        let process = Process {
            id: body.process_id,
            version: body.version,
            host: body.host,
            started_at_ms: body.started_at_ms,
            interval_ms: body.interval_ms,
        };
        let reports: Vec<Report> = body
            .bridges
            .into_iter()
            .map(|b| Report {
                kind: Kind::Bridge,
                name: b.name,
                connections: b.connections,
                online_users: b.online_users,
            })
            .collect();
        status::record(&self.accounts.db, &process, &reports).await?;
        Ok(Response::new(ReportStatusResponse {}))
    }

    async fn get_server_status(
        &self,
        _req: Request<GetServerStatusRequest>,
    ) -> Result<Response<GetServerStatusResponse>, Status> {
        let state = self.accounts.maintenance(false).await?;
        Ok(Response::new(GetServerStatusResponse {
            maintenance: state.enabled,
            message: if state.enabled {
                state.message
            } else {
                String::new()
            },
        }))
    }
}
