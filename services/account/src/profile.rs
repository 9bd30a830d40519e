//! Profiles, search, password changes, recovery and account deletion.

use rosetta_auth::Caller;
use rosetta_db::{
    entity::{credential, user},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason, page::Page};
use rosetta_proto::account::v1::{
    self as pb, ChangePasswordRequest, DeleteAccountRequest, RecoverPasswordRequest,
    SearchUsersRequest, SearchUsersResponse, UpdateProfileRequest, VerificationChannel,
    VerificationPurpose, recover_password_request::Proof, search_users_request::Query,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use crate::{
    Accounts, Scheme,
    accounts::{
        limit, live_users, normalize_answer, own_profile, public_profile, store_verifiers,
        unique_violation, unknown_ref_key, valid_email, valid_username,
    },
    codes, names, password,
    session::end_sessions,
};

impl Accounts {
    pub async fn my_profile(&self, caller: &Caller) -> ApiResult<pb::User> {
        Ok(own_profile(&self.me(caller).await?))
    }

    pub async fn profiles(&self, ids: &[i64]) -> ApiResult<Vec<pb::User>> {
        if ids.len() > 1000 {
            return Err(ApiError::invalid(
                Reason::InvalidArgument,
                "at most 1000 ids per call",
            ));
        }
        let users = live_users()
            .filter(user::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        Ok(users.iter().map(public_profile).collect())
    }

    pub async fn search(&self, req: SearchUsersRequest) -> ApiResult<SearchUsersResponse> {
        let page = Page::from_request(req.page.as_ref())?;
        let mut query = live_users()
            .order_by_asc(user::Column::Id)
            .limit(page.fetch());
        if let Some(after) = page.after {
            query = query.filter(user::Column::Id.gt(after));
        }
        query = match req.query {
            Some(Query::UserId(id)) => query.filter(user::Column::Id.eq(id)),
            Some(Query::Name(name)) if !name.trim().is_empty() => {
                let pattern = format!("%{}%", escape_like(&name.trim().to_lowercase()));
                let lower = |c| Expr::expr(Func::lower(Expr::col(c)));
                query.filter(
                    sea_orm::Condition::any()
                        .add(
                            lower(user::Column::Username)
                                .like(LikeExpr::new(&pattern).escape('\\')),
                        )
                        .add(
                            lower(user::Column::Nickname)
                                .like(LikeExpr::new(&pattern).escape('\\')),
                        ),
                )
            }
            _ => {
                return Err(ApiError::invalid(
                    Reason::InvalidArgument,
                    "a user id or a name is required",
                ));
            }
        };
        let (rows, page) = page.finish(query.all(&self.db).await?, |u| u.id);
        Ok(SearchUsersResponse {
            users: rows.iter().map(public_profile).collect(),
            page: Some(page),
        })
    }

    pub async fn update_profile(
        &self,
        caller: &Caller,
        req: UpdateProfileRequest,
    ) -> ApiResult<pb::User> {
        let me = self.me(caller).await?;
        let answer_hash = match req.security_answer.as_deref().and_then(normalize_answer) {
            Some(answer) => Some(self.hashing(move || password::hash(&answer)).await?),
            None => None,
        };
        let current_email = me.email.clone();
        let mut active = me.into_active_model();
        if let Some(v) = req.nickname {
            active.nickname = Set(names::nickname(&v)?);
        }
        if let Some(v) = req.avatar {
            active.avatar = Set(limit(&v, 512)?);
        }
        if let Some(v) = req.signature {
            active.signature = Set(limit(&v, 512)?);
        }
        if let Some(v) = req.gender {
            active.gender = Set(i16::try_from(v).unwrap_or(0));
        }
        if let Some(v) = req.username {
            active.username = Set(self.free_username(caller, &v).await?);
        }
        if let Some(v) = req.email
            && let Some(email) = self
                .proven_email(caller, &v, current_email, &req.verification_code)
                .await?
        {
            active.email = Set(email);
        }
        if let Some(v) = req.security_question_id {
            active.security_question_id = Set(v);
        }
        if answer_hash.is_some() {
            active.security_answer_hash = Set(answer_hash);
        }
        let updated = active
            .update(&self.db)
            .await
            .map_err(|e| unique_violation(e, Reason::UsernameTaken))?;
        Ok(own_profile(&updated))
    }

    /// `name` if the caller may rename to it.
    async fn free_username(&self, caller: &Caller, name: &str) -> ApiResult<String> {
        let name = valid_username(name)?;
        let taken = user::Column::Username
            .eq(&name)
            .and(user::Column::Id.ne(caller.user_id));
        if self.find(taken).await?.is_some() {
            return Err(ApiError::exists(
                Reason::UsernameTaken,
                "user name is taken",
            ));
        }
        Ok(name)
    }

    /// The e-mail address to store, or `None` to leave it as it is. A new address is the
    /// account's recovery address, so it needs the code SendVerificationCode(EMAIL,
    /// CHANGE_EMAIL) sent to it: without one nothing is stored (an address nobody proved never
    /// blocks its owner from registering it). Removing the address needs no code.
    async fn proven_email(
        &self,
        caller: &Caller,
        requested: &str,
        current: Option<String>,
        code: &str,
    ) -> ApiResult<Option<Option<String>>> {
        if requested.trim().is_empty() {
            return Ok(Some(None));
        }
        let email = valid_email(requested)?;
        if current.as_deref() == Some(email.as_str()) {
            return Ok(None);
        }
        let taken = user::Column::Email
            .eq(&email)
            .and(user::Column::Id.ne(caller.user_id));
        if self.find(taken).await?.is_some() {
            return Err(ApiError::exists(
                Reason::EmailTaken,
                "e-mail address is registered",
            ));
        }
        if code.trim().is_empty() {
            return Err(ApiError::precondition(
                Reason::CodeRequired,
                "a new e-mail address needs the code sent to it (SendVerificationCode, \
                 purpose CHANGE_EMAIL)",
            ));
        }
        codes::consume(
            &self.db,
            VerificationChannel::Email,
            &email,
            VerificationPurpose::ChangeEmail,
            code,
        )
        .await?;
        Ok(Some(Some(email)))
    }

    pub async fn change_password(
        &self,
        caller: &Caller,
        req: ChangePasswordRequest,
    ) -> ApiResult<()> {
        let me = self.me(caller).await?;
        let current_scheme = Scheme::from_proto(req.current_scheme)?;
        let current = current_scheme.normalize(&req.current_password)?;
        let new_scheme = Scheme::from_proto(req.new_scheme)?;
        let new = new_scheme.normalize(&req.new_password)?;
        self.check_password(&me, current, current_scheme).await?;
        // Whoever else holds a session or legacy token may be the reason for the change.
        self.replace_password(me.id, new, new_scheme, Some(&caller.session_id))
            .await
    }

    pub async fn recover_password(&self, req: RecoverPasswordRequest) -> ApiResult<()> {
        let refused = || ApiError::denied(Reason::BadProof, "the proof of identity does not match");
        let Some(user_ref) = &req.user else {
            return Err(ApiError::invalid(
                Reason::InvalidArgument,
                "user is required",
            ));
        };
        let new_scheme = Scheme::from_proto(req.new_scheme)?;
        let new = new_scheme.normalize(&req.new_password)?;
        // Same limits as logins, under their own keys. The attempt is reserved before the
        // proof is checked, so concurrent guesses get `threshold` checks; a user nobody has
        // is throttled under a key of the presented handle, so a lock tells nothing.
        let throttle = &self.login_throttle;
        let user = match self.resolve(user_ref).await {
            Ok(user) => user,
            Err(err) if err.code == tonic::Code::NotFound => {
                throttle
                    .reserve(&self.db, &unknown_ref_key("recover", user_ref))
                    .await?;
                return Err(refused());
            }
            Err(err) => return Err(err),
        };
        let key = format!("recover:{}", user.id);
        throttle.reserve(&self.db, &key).await?;
        let proven = match req.proof {
            Some(Proof::SecurityAnswer(answer)) => {
                let stored = user.security_answer_hash.clone();
                let question_ok = answer.question_id == user.security_question_id;
                let presented = normalize_answer(&answer.answer).unwrap_or_default();
                question_ok
                    && self
                        .guess(&key, move || {
                            Ok(stored.is_some_and(|phc| password::verify(&presented, &phc)))
                        })
                        .await?
            }
            Some(Proof::VerificationCode(code)) => self.consume_recovery_code(&user, &code).await?,
            None => {
                return Err(ApiError::invalid(
                    Reason::InvalidArgument,
                    "a proof is required",
                ));
            }
        };
        if !proven {
            return Err(refused());
        }
        throttle.reset(&self.db, &key).await?;
        self.login_throttle
            .reset(&self.db, &format!("login:{}", user.id))
            .await?;
        // Whoever needed recovery may have lost control of a device: end every session.
        self.replace_password(user.id, new, new_scheme, None).await
    }

    pub async fn delete_account(
        &self,
        caller: &Caller,
        req: DeleteAccountRequest,
    ) -> ApiResult<()> {
        let me = self.me(caller).await?;
        let scheme = Scheme::from_proto(req.password_scheme)?;
        self.check_password(&me, scheme.normalize(&req.password)?, scheme)
            .await?;
        let id = me.id;
        let txn = self.db.begin().await?;
        scrub_account(&txn, me).await?;
        txn.commit().await?;
        self.revoke_all(id).await
    }

    async fn me(&self, caller: &Caller) -> ApiResult<user::Model> {
        self.find(user::Column::Id.eq(caller.user_id))
            .await?
            .ok_or_else(|| ApiError::unauthenticated(Reason::SessionRevoked, "account is gone"))
    }

    /// Sets a new password and, in the same transaction, ends every session of the user but
    /// `keep` and revokes all their legacy tokens: a password change is how a user shuts out
    /// whoever stole a session, so nothing issued under the old password survives it.
    async fn replace_password(
        &self,
        user_id: i64,
        password: String,
        scheme: Scheme,
        keep: Option<&str>,
    ) -> ApiResult<()> {
        let verifiers = self
            .hashing(move || password::verifiers_for(&password, scheme))
            .await?;
        let txn = self.db.begin().await?;
        credential::Entity::delete_many()
            .filter(credential::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        store_verifiers(&txn, user_id, verifiers).await?;
        let ended = end_sessions(&txn, user_id, keep).await?;
        txn.commit().await?;
        self.forget_sessions(&ended);
        tracing::info!(
            user_id,
            sessions = ended.len(),
            "password replaced; other sessions ended"
        );
        Ok(())
    }

    /// A recovery code may have gone to the account's phone or to its e-mail address, or an
    /// operator may have issued one (admin ResetPassword). A code refused for one is tried on
    /// the next; a failing database is an error, not a wrong proof.
    async fn consume_recovery_code(&self, user: &user::Model, code: &str) -> ApiResult<bool> {
        let targets = [
            (VerificationChannel::Phone, user.phone.as_deref()),
            (VerificationChannel::Email, user.email.as_deref()),
        ];
        for (channel, target) in targets {
            let Some(target) = target else { continue };
            let spent = codes::consume(
                &self.db,
                channel,
                target,
                VerificationPurpose::Recovery,
                code,
            )
            .await;
            match spent {
                Ok(()) => return Ok(true),
                Err(err) if err.reason == Reason::Internal => return Err(err),
                Err(_refused) => {}
            }
        }
        match codes::consume_operator(&self.db, user.id, code).await {
            Ok(()) => Ok(true),
            Err(err) if err.reason == Reason::Internal => Err(err),
            Err(_refused) => Ok(false),
        }
    }
}

/// Deletes an account on `db` (a transaction): the row stays, so that messages others
/// received still name their sender, with every personal field scrubbed and the user name
/// `deleted-<id>` (freeing the name, e-mail and phone); its passwords are removed. Sessions
/// are the caller's to end.
pub(crate) async fn scrub_account<C: sea_orm::ConnectionTrait>(
    db: &C,
    account: user::Model,
) -> ApiResult<()> {
    let id = account.id;
    let mut active = account.into_active_model();
    active.username = Set(format!("deleted-{id}"));
    active.email = Set(None);
    active.phone = Set(None);
    active.nickname = Set(String::new());
    active.avatar = Set(String::new());
    active.signature = Set(String::new());
    active.security_answer_hash = Set(None);
    active.deleted_at_ms = Set(Some(now_ms()));
    active.update(db).await?;
    credential::Entity::delete_many()
        .filter(credential::Column::UserId.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub(crate) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
