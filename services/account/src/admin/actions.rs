//! What operators do to accounts: disable and enable, end sessions, issue a recovery code,
//! delete. Each writes its audit entry in the transaction of its effect.

use rosetta_db::{
    begin_write,
    entity::{admin, disabled_account, legacy_token, session},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::admin::v1::{
    DeleteUserRequest, DisableUserRequest, DisableUserResponse, EnableUserRequest,
    ForceLogoutRequest, ForceLogoutResponse, ResetPasswordRequest, ResetPasswordResponse,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};

use super::audit::{self, Actor, Entry};
use crate::{Accounts, codes, profile::scrub_account, session::end_sessions};

/// Longest operator note kept with a disable or enable.
const MAX_NOTE_CHARS: usize = 500;

fn note(text: &str) -> ApiResult<String> {
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            format!("note longer than {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(text.trim().to_owned())
}

/// An admin may not shut themselves out: the last admin would need the database to get back.
fn not_self(actor: &Actor, target: i64, what: &str) -> ApiResult<()> {
    if actor.user_id == Some(target) {
        return Err(ApiError::precondition(
            Reason::NotAllowed,
            format!("an admin cannot {what} their own account"),
        ));
    }
    Ok(())
}

/// Ends one session and its legacy tokens, as a logout does; nothing if it had ended.
async fn end_one<C: ConnectionTrait>(db: &C, found: &session::Model) -> ApiResult<Vec<String>> {
    if found.revoked_at_ms.is_some() {
        return Ok(Vec::new());
    }
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAtMs, Expr::value(now_ms()))
        .filter(session::Column::Id.eq(&found.id))
        .filter(session::Column::RevokedAtMs.is_null())
        .exec(db)
        .await?;
    legacy_token::Entity::delete_many()
        .filter(legacy_token::Column::SessionId.eq(&found.id))
        .exec(db)
        .await?;
    Ok(vec![found.id.clone()])
}

impl Accounts {
    /// Refuses a login of a disabled account (every protocol's login opens its session here).
    pub(crate) async fn refuse_disabled(&self, user_id: i64) -> ApiResult<()> {
        match disabled_account::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
        {
            Some(_) => Err(ApiError::denied(
                Reason::AccountDisabled,
                "this account is disabled",
            )),
            None => Ok(()),
        }
    }

    pub(crate) async fn admin_disable(
        &self,
        actor: &Actor,
        req: &DisableUserRequest,
    ) -> ApiResult<DisableUserResponse> {
        let note = note(&req.note)?;
        let target = self.admin_target(req.user.as_ref(), false).await?;
        not_self(actor, target.id, "disable")?;
        let txn = begin_write(&self.db).await?;
        disabled_account::Entity::insert(disabled_account::ActiveModel {
            user_id: Set(target.id),
            disabled_at_ms: Set(now_ms()),
            disabled_by: Set(actor.name.clone()),
            note: Set(note.clone()),
        })
        .on_conflict(
            OnConflict::column(disabled_account::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&*txn)
        .await?;
        let mut ended = end_sessions(&*txn, target.id, None).await?;
        let entry = Entry {
            actor,
            action: "DisableUser",
            target: Some(target.id),
            details: format!("note={note:?} sessions_ended={}", ended.len()),
            outcome: audit::OK,
        };
        audit::record(&*txn, entry).await?;
        txn.commit().await?;
        // A login that read the account as enabled may have stored its session after the
        // statement above: it checks the flag again after storing (and sees it committed now),
        // or its session is ended here.
        ended.extend(end_sessions(&self.db, target.id, None).await?);
        self.forget_sessions(&ended);
        Ok(DisableUserResponse {
            sessions_ended: i32::try_from(ended.len()).unwrap_or(i32::MAX),
        })
    }

    pub(crate) async fn admin_enable(
        &self,
        actor: &Actor,
        req: &EnableUserRequest,
    ) -> ApiResult<()> {
        let note = note(&req.note)?;
        let target = self.admin_target(req.user.as_ref(), false).await?;
        let txn = begin_write(&self.db).await?;
        let removed = disabled_account::Entity::delete_by_id(target.id)
            .exec(&*txn)
            .await?;
        let entry = Entry {
            actor,
            action: "EnableUser",
            target: Some(target.id),
            details: format!("note={note:?} was_disabled={}", removed.rows_affected > 0),
            outcome: audit::OK,
        };
        audit::record(&*txn, entry).await?;
        txn.commit().await?;
        Ok(())
    }

    pub(crate) async fn admin_force_logout(
        &self,
        actor: &Actor,
        req: &ForceLogoutRequest,
    ) -> ApiResult<ForceLogoutResponse> {
        let target = self.admin_target(req.user.as_ref(), false).await?;
        let txn = begin_write(&self.db).await?;
        let ended = if req.session_id.is_empty() {
            end_sessions(&*txn, target.id, None).await?
        } else {
            let found = session::Entity::find_by_id(req.session_id.clone())
                .filter(session::Column::UserId.eq(target.id))
                .one(&*txn)
                .await?
                .ok_or_else(|| ApiError::not_found("the user has no such session"))?;
            end_one(&*txn, &found).await?
        };
        let entry = Entry {
            actor,
            action: "ForceLogout",
            target: Some(target.id),
            details: format!(
                "session={:?} sessions_ended={}",
                req.session_id,
                ended.len()
            ),
            outcome: audit::OK,
        };
        audit::record(&*txn, entry).await?;
        txn.commit().await?;
        self.forget_sessions(&ended);
        Ok(ForceLogoutResponse {
            sessions_ended: i32::try_from(ended.len()).unwrap_or(i32::MAX),
        })
    }

    pub(crate) async fn admin_reset_password(
        &self,
        actor: &Actor,
        req: &ResetPasswordRequest,
    ) -> ApiResult<ResetPasswordResponse> {
        let target = self.admin_target(req.user.as_ref(), false).await?;
        let txn = begin_write(&self.db).await?;
        let (code, expires_at_ms) = codes::issue_operator(&*txn, target.id).await?;
        let entry = Entry {
            actor,
            action: "ResetPassword",
            target: Some(target.id),
            // The code itself is never logged: whoever reads the log could redeem it.
            details: format!("code issued, expires_at_ms={expires_at_ms}"),
            outcome: audit::OK,
        };
        audit::record(&*txn, entry).await?;
        txn.commit().await?;
        Ok(ResetPasswordResponse {
            code,
            expires_at_ms,
        })
    }

    pub(crate) async fn admin_delete(
        &self,
        actor: &Actor,
        req: &DeleteUserRequest,
    ) -> ApiResult<()> {
        let target = self.admin_target(req.user.as_ref(), false).await?;
        not_self(actor, target.id, "delete")?;
        let (id, username) = (target.id, target.username.clone());
        let txn = begin_write(&self.db).await?;
        scrub_account(&*txn, target).await?;
        // A deleted account keeps no role; its disabled mark no longer matters.
        admin::Entity::delete_by_id(id).exec(&*txn).await?;
        disabled_account::Entity::delete_by_id(id)
            .exec(&*txn)
            .await?;
        let ended = end_sessions(&*txn, id, None).await?;
        let entry = Entry {
            actor,
            action: "DeleteUser",
            target: Some(id),
            details: format!("username={username:?} sessions_ended={}", ended.len()),
            outcome: audit::OK,
        };
        audit::record(&*txn, entry).await?;
        txn.commit().await?;
        self.forget_sessions(&ended);
        Ok(())
    }
}
