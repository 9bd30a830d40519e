//! gRPC face of the admin service: every call is authorised (identity from the verified
//! token, role from the database) before anything else, then audited.

use std::{fmt::Debug, sync::Arc};

use rosetta_auth::Caller;
use rosetta_events::{DiscardEvents, EventSink};
use rosetta_kit::ApiResult;
use rosetta_proto::{
    admin::v1::{admin_service_server::AdminService, *},
    messaging::v1::event::Kind,
};
use tonic::{Request, Response, Status};

use super::{
    audit::{self, Actor, Entry},
    roles,
};
use crate::Accounts;

/// Longest request text kept in the audit entry of a failed call.
const MAX_REQUEST_TEXT: usize = 500;

pub struct AdminGrpc {
    accounts: Arc<Accounts>,
    /// Where announcements are broadcast: the messaging service's streams.
    events: Arc<dyn EventSink>,
}

impl AdminGrpc {
    /// Announcements reach no stream until [`AdminGrpc::with_events`] names the sink.
    pub fn new(accounts: Arc<Accounts>) -> Self {
        Self {
            accounts,
            events: Arc::new(DiscardEvents),
        }
    }

    /// Broadcasts announcements through `events`.
    pub fn with_events(self, events: Arc<dyn EventSink>) -> Self {
        Self { events, ..self }
    }

    /// The admin behind `req` and its message, or the refusal: identity from the verified
    /// token only, the role from the database, on every call.
    async fn authorize<T>(
        &self,
        req: Request<T>,
        action: &'static str,
    ) -> Result<(Actor, T), Status> {
        let caller = Caller::of(&req)?;
        let actor = roles::authorize(&self.accounts.db, caller.user_id, action).await?;
        Ok((actor, req.into_inner()))
    }

    /// The reply of an authorised call. One that failed is audited here with its reason (its
    /// own entry went with its rolled-back transaction); one that succeeded wrote its entry
    /// itself.
    async fn finish<T: Debug, R>(
        &self,
        actor: &Actor,
        action: &'static str,
        body: &T,
        result: ApiResult<R>,
    ) -> Result<Response<R>, Status> {
        match result {
            Ok(reply) => Ok(Response::new(reply)),
            Err(err) => {
                let entry = Entry {
                    actor,
                    action,
                    target: None,
                    details: format!("{body:?}").chars().take(MAX_REQUEST_TEXT).collect(),
                    outcome: err.reason.as_str(),
                };
                if let Err(failed) = audit::record(&self.accounts.db, entry).await {
                    tracing::error!(%failed, action, "could not audit a failed admin call");
                }
                Err(err.into())
            }
        }
    }
}

/// The entry of a call that only reads.
fn read<'a>(
    actor: &'a Actor,
    action: &'static str,
    target: Option<i64>,
    details: String,
) -> Entry<'a> {
    Entry {
        actor,
        action,
        target,
        details,
        outcome: audit::OK,
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    async fn list_users(&self, req: Request<ListUsersRequest>) -> Reply<ListUsersResponse> {
        const ACTION: &str = "ListUsers";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = async {
            let reply = self.accounts.admin_list_users(&body).await?;
            let details = format!("query={:?} users={}", body.query, reply.users.len());
            audit::record(&self.accounts.db, read(&actor, ACTION, None, details)).await?;
            Ok(reply)
        }
        .await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn get_user(&self, req: Request<GetUserRequest>) -> Reply<UserDetails> {
        const ACTION: &str = "GetUser";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = async {
            let reply = self.accounts.admin_get_user(body.user.as_ref()).await?;
            let target = reply.summary.as_ref().and_then(|s| s.user.as_ref());
            let entry = read(&actor, ACTION, target.map(|u| u.id), String::new());
            audit::record(&self.accounts.db, entry).await?;
            Ok(reply)
        }
        .await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn disable_user(&self, req: Request<DisableUserRequest>) -> Reply<DisableUserResponse> {
        const ACTION: &str = "DisableUser";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = self.accounts.admin_disable(&actor, &body).await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn enable_user(&self, req: Request<EnableUserRequest>) -> Reply<EnableUserResponse> {
        const ACTION: &str = "EnableUser";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = self.accounts.admin_enable(&actor, &body).await;
        let result = result.map(|()| EnableUserResponse {});
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn force_logout(&self, req: Request<ForceLogoutRequest>) -> Reply<ForceLogoutResponse> {
        const ACTION: &str = "ForceLogout";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = self.accounts.admin_force_logout(&actor, &body).await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn reset_password(
        &self,
        req: Request<ResetPasswordRequest>,
    ) -> Reply<ResetPasswordResponse> {
        const ACTION: &str = "ResetPassword";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = self.accounts.admin_reset_password(&actor, &body).await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn delete_user(&self, req: Request<DeleteUserRequest>) -> Reply<DeleteUserResponse> {
        const ACTION: &str = "DeleteUser";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = self.accounts.admin_delete(&actor, &body).await;
        let result = result.map(|()| DeleteUserResponse {});
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn list_audit_log(
        &self,
        req: Request<ListAuditLogRequest>,
    ) -> Reply<ListAuditLogResponse> {
        const ACTION: &str = "ListAuditLog";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = async {
            let reply = audit::list(&self.accounts.db, &body).await?;
            let target = (body.target_user_id != 0).then_some(body.target_user_id);
            let details = format!("entries={}", reply.entries.len());
            audit::record(&self.accounts.db, read(&actor, ACTION, target, details)).await?;
            Ok(reply)
        }
        .await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn get_status(&self, req: Request<GetStatusRequest>) -> Reply<GetStatusResponse> {
        const ACTION: &str = "GetStatus";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = async {
            let mut reply = super::status::list(&self.accounts.db).await?;
            reply.maintenance = Some(self.accounts.maintenance(true).await?);
            let details = format!("instances={}", reply.instances.len());
            audit::record(&self.accounts.db, read(&actor, ACTION, None, details)).await?;
            Ok(reply)
        }
        .await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn set_maintenance(
        &self,
        req: Request<SetMaintenanceRequest>,
    ) -> Reply<SetMaintenanceResponse> {
        const ACTION: &str = "SetMaintenance";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = self.accounts.admin_set_maintenance(&actor, &body).await;
        self.finish(&actor, ACTION, &body, result).await
    }

    async fn announce(&self, req: Request<AnnounceRequest>) -> Reply<AnnounceResponse> {
        const ACTION: &str = "Announce";
        let (actor, body) = self.authorize(req, ACTION).await?;
        let result = self.accounts.admin_announce(&actor, &body).await;
        if let Ok(announcement) = &result {
            // Stored and committed: streams that miss this read it when they next open.
            let kind = Kind::Announcement(announcement.clone());
            self.events.broadcast(kind).await;
        }
        let result = result.map(|announcement| AnnounceResponse {
            announcement: Some(announcement),
        });
        self.finish(&actor, ACTION, &body, result).await
    }
}
