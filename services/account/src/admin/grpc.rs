//! gRPC face of the admin service: every call is authorised (identity from the verified
//! token, role from the database) before anything else, then audited.

use std::{fmt::Debug, sync::Arc};

use rosetta_auth::Caller;
use rosetta_kit::ApiResult;
use rosetta_proto::admin::v1::{admin_service_server::AdminService, *};
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
}

impl AdminGrpc {
    pub fn new(accounts: Arc<Accounts>) -> Self {
        Self { accounts }
    }

    /// Runs `op` for an admin caller. A call that fails after it was authorised is audited
    /// here with its reason (its own entry went with its rolled-back transaction); one that
    /// succeeds wrote its entry itself.
    async fn admin<T: Debug, R>(
        &self,
        req: Request<T>,
        action: &'static str,
        op: impl AsyncFnOnce(&Accounts, &Actor, &T) -> ApiResult<R>,
    ) -> Result<Response<R>, Status> {
        let caller = Caller::of(&req)?;
        let actor = roles::authorize(&self.accounts.db, caller.user_id, action).await?;
        let body = req.into_inner();
        match op(&self.accounts, &actor, &body).await {
            Ok(reply) => Ok(Response::new(reply)),
            Err(err) => {
                let entry = Entry {
                    actor: &actor,
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
fn read(actor: &Actor, action: &'static str, target: Option<i64>, details: String) -> Entry<'_> {
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
        self.admin(req, "ListUsers", async |accounts, actor, body| {
            let reply = accounts.admin_list_users(body).await?;
            let details = format!("query={:?} users={}", body.query, reply.users.len());
            audit::record(&accounts.db, read(actor, "ListUsers", None, details)).await?;
            Ok(reply)
        })
        .await
    }

    async fn get_user(&self, req: Request<GetUserRequest>) -> Reply<UserDetails> {
        self.admin(req, "GetUser", async |accounts, actor, body| {
            let reply = accounts.admin_get_user(body.user.as_ref()).await?;
            let target = reply.summary.as_ref().and_then(|s| s.user.as_ref());
            let entry = read(actor, "GetUser", target.map(|u| u.id), String::new());
            audit::record(&accounts.db, entry).await?;
            Ok(reply)
        })
        .await
    }

    async fn disable_user(&self, req: Request<DisableUserRequest>) -> Reply<DisableUserResponse> {
        self.admin(req, "DisableUser", async |accounts, actor, body| {
            accounts.admin_disable(actor, body).await
        })
        .await
    }

    async fn enable_user(&self, req: Request<EnableUserRequest>) -> Reply<EnableUserResponse> {
        self.admin(req, "EnableUser", async |accounts, actor, body| {
            accounts.admin_enable(actor, body).await?;
            Ok(EnableUserResponse {})
        })
        .await
    }

    async fn force_logout(&self, req: Request<ForceLogoutRequest>) -> Reply<ForceLogoutResponse> {
        self.admin(req, "ForceLogout", async |accounts, actor, body| {
            accounts.admin_force_logout(actor, body).await
        })
        .await
    }

    async fn reset_password(
        &self,
        req: Request<ResetPasswordRequest>,
    ) -> Reply<ResetPasswordResponse> {
        self.admin(req, "ResetPassword", async |accounts, actor, body| {
            accounts.admin_reset_password(actor, body).await
        })
        .await
    }

    async fn delete_user(&self, req: Request<DeleteUserRequest>) -> Reply<DeleteUserResponse> {
        self.admin(req, "DeleteUser", async |accounts, actor, body| {
            accounts.admin_delete(actor, body).await?;
            Ok(DeleteUserResponse {})
        })
        .await
    }

    async fn list_audit_log(
        &self,
        req: Request<ListAuditLogRequest>,
    ) -> Reply<ListAuditLogResponse> {
        self.admin(req, "ListAuditLog", async |accounts, actor, body| {
            let reply = audit::list(&accounts.db, body).await?;
            let target = (body.target_user_id != 0).then_some(body.target_user_id);
            let details = format!("entries={}", reply.entries.len());
            audit::record(&accounts.db, read(actor, "ListAuditLog", target, details)).await?;
            Ok(reply)
        })
        .await
    }
}
