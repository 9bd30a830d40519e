//! The account domain: registration, password login and identity resolution. Sessions and
//! profiles live in their own modules as further `impl Accounts` blocks.

use std::sync::{Arc, LazyLock};

use rand::{Rng, distr::Alphanumeric};
use rosetta_auth::{SessionGuard, TokenIssuer};
use rosetta_db::{
    entity::{credential, user},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::account::v1::{
    self as pb, LoginRequest, LoginResponse, RegisterRequest, SendVerificationCodeRequest,
    VerificationChannel, VerificationPurpose, login_request::Identifier,
};
use rosetta_proto::common::v1::{UserRef, user_ref::Ref};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Select,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::{
    AccountConfig, CodeSender, Scheme, codes,
    hash_pool::HashPool,
    password::{self, bad_credentials},
    throttle::Throttle,
};

/// Length of the generated public handle (OurChat's ocid).
const OCID_LEN: usize = 10;

/// A verifier of a password nobody has, checked when the user does not exist so that a
/// failed login takes as long for unknown users as for known ones.
static DUMMY_VERIFIER: LazyLock<String> =
    LazyLock::new(|| password::hash("no such user").unwrap_or_default());

pub struct Accounts {
    pub(crate) db: DatabaseConnection,
    pub(crate) cfg: AccountConfig,
    pub(crate) issuer: TokenIssuer,
    pub(crate) sessions: Arc<SessionGuard>,
    pub(crate) sender: Arc<dyn CodeSender>,
    pub(crate) public_pems: Vec<String>,
    pub(crate) login_throttle: Throttle,
    /// Where every password hash runs (see `hash_pool`).
    pub(crate) hash_pool: Arc<HashPool>,
    /// The maintenance switch as last read (see `admin::maintenance`).
    pub(crate) maintenance: crate::admin::maintenance::Cache,
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        cfg: AccountConfig,
        private_pem: &str,
        public_pems: Vec<String>,
        sessions: Arc<SessionGuard>,
        sender: Arc<dyn CodeSender>,
    ) -> ApiResult<Self> {
        let issuer = TokenIssuer::new(private_pem, cfg.issuer.clone(), cfg.access_ttl)?;
        let login_throttle =
            Throttle::new(cfg.lockout_threshold, cfg.lockout_base, cfg.lockout_max);
        let hash_pool = HashPool::new(cfg.hash_workers, cfg.hash_queue);
        Ok(Self {
            hash_pool,
            db,
            cfg,
            issuer,
            sessions,
            sender,
            public_pems,
            login_throttle,
            maintenance: Default::default(),
        })
    }

    /// Uses `pool` for password hashing instead of one of its own (a node's embedder or a
    /// test that holds the workers).
    pub fn with_hash_pool(self, pool: Arc<HashPool>) -> Self {
        Self {
            hash_pool: pool,
            ..self
        }
    }

    /// Runs CPU-heavy hashing on the bounded hashing pool, holding no database connection.
    pub(crate) async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        self.hash_pool.run(work).await
    }

    /// [`Accounts::hashing`] for a guess whose attempt is already reserved at `key`. When the
    /// pool cannot run it (busy, stopping) nothing was checked, so the attempt is given back.
    pub(crate) async fn guess<T: Send + 'static>(
        &self,
        key: &str,
        work: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        match self.hashing(work).await {
            Err(refused) => {
                self.login_throttle.release(&self.db, key).await?;
                Err(refused)
            }
            checked => checked,
        }
    }

    pub async fn register(&self, req: RegisterRequest) -> ApiResult<pb::User> {
        let scheme = Scheme::from_proto(req.password_scheme)?;
        let password = scheme.normalize(&req.password)?;
        let ocid = self.fresh_ocid().await?;
        let username = if req.username.is_empty() {
            ocid.clone()
        } else {
            valid_username(&req.username)?
        };
        let email = optional(&req.email).map(valid_email).transpose()?;
        let phone = optional(&req.phone).map(valid_phone).transpose()?;
        if self
            .find(user::Column::Username.eq(&username))
            .await?
            .is_some()
        {
            return Err(ApiError::exists(
                Reason::UsernameTaken,
                "user name is taken",
            ));
        }
        if let Some(email) = &email
            && self.find(user::Column::Email.eq(email)).await?.is_some()
        {
            return Err(ApiError::exists(
                Reason::EmailTaken,
                "e-mail address is registered",
            ));
        }
        if let Some(phone) = &phone
            && self.find(user::Column::Phone.eq(phone)).await?.is_some()
        {
            return Err(ApiError::exists(
                Reason::PhoneTaken,
                "phone number is registered",
            ));
        }
        self.check_registration_code(&req.verification_code, phone.as_deref(), email.as_deref())
            .await?;

        let answer = normalize_answer(&req.security_answer);
        let verifiers = self
            .hashing(move || {
                let answer = answer.map(|a| password::hash(&a)).transpose()?;
                Ok((password::verifiers_for(&password, scheme)?, answer))
            })
            .await?;
        let now = now_ms();
        let txn = self.db.begin().await?;
        let inserted = user::Entity::insert(user::ActiveModel {
            username: Set(username),
            ocid: Set(ocid),
            email: Set(email),
            phone: Set(phone),
            nickname: Set(crate::names::nickname(&req.nickname)?),
            avatar: Set(limit(&req.avatar, 512)?),
            signature: Set(limit(&req.signature, 512)?),
            gender: Set(i16::try_from(req.gender).unwrap_or(0)),
            // Self-service registration never grants VIP (the legacy servers stored 0 too).
            vip: Set(false),
            security_question_id: Set(req.security_question_id),
            security_answer_hash: Set(verifiers.1),
            created_at_ms: Set(now),
            deleted_at_ms: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|err| unique_violation(err, Reason::UsernameTaken))?;
        store_verifiers(&txn, inserted.id, verifiers.0).await?;
        txn.commit().await?;
        tracing::info!(user_id = inserted.id, "registered");
        Ok(own_profile(&inserted))
    }

    pub async fn send_code(&self, req: SendVerificationCodeRequest) -> ApiResult<i64> {
        let channel =
            VerificationChannel::try_from(req.channel).unwrap_or(VerificationChannel::Unspecified);
        let purpose =
            VerificationPurpose::try_from(req.purpose).unwrap_or(VerificationPurpose::Unspecified);
        let (target, column, taken) = match channel {
            VerificationChannel::Phone => (
                valid_phone(&req.target)?,
                user::Column::Phone,
                Reason::PhoneTaken,
            ),
            VerificationChannel::Email => (
                valid_email(&req.target)?,
                user::Column::Email,
                Reason::EmailTaken,
            ),
            VerificationChannel::Unspecified => {
                return Err(ApiError::invalid(
                    Reason::InvalidArgument,
                    "channel is required",
                ));
            }
        };
        let owner = self.find(column.eq(&target)).await?;
        match purpose {
            VerificationPurpose::Register if owner.is_some() => {
                return Err(ApiError::exists(taken, "already registered"));
            }
            VerificationPurpose::ChangeEmail if channel != VerificationChannel::Email => {
                return Err(ApiError::invalid(
                    Reason::InvalidArgument,
                    "purpose CHANGE_EMAIL needs channel EMAIL",
                ));
            }
            VerificationPurpose::ChangeEmail if owner.is_some() => {
                return Err(ApiError::exists(taken, "already registered"));
            }
            VerificationPurpose::Unspecified => {
                return Err(ApiError::invalid(
                    Reason::InvalidArgument,
                    "purpose is required",
                ));
            }
            _ => {}
        }
        // A code is issued (and rate limited) for an address nobody has too, so the answer
        // does not tell who has an account; it is just never sent.
        let (code, expires_at_ms) =
            codes::issue(&self.db, &self.cfg, channel, &target, purpose).await?;
        if owner.is_some() || purpose != VerificationPurpose::Recovery {
            self.sender.send(channel, &target, &code).await?;
        }
        Ok(expires_at_ms)
    }

    pub async fn login(&self, req: LoginRequest) -> ApiResult<LoginResponse> {
        let scheme = Scheme::from_proto(req.password_scheme)?;
        let password = scheme.normalize(&req.password)?;
        let Some(identifier) = req.identifier else {
            return Err(ApiError::invalid(
                Reason::InvalidArgument,
                "identifier is required",
            ));
        };
        let unknown_key = unknown_key("login", &identifier);
        let found = match identifier {
            Identifier::Phone(v) => self.find(user::Column::Phone.eq(v)).await?,
            Identifier::Username(v) => self.resolve_ok(Ref::Username(v)).await?,
            Identifier::Email(v) => self.resolve_ok(Ref::Email(v)).await?,
            Identifier::UserId(v) => self.resolve_ok(Ref::Id(v)).await?,
            Identifier::Ocid(v) => self.resolve_ok(Ref::Ocid(v)).await?,
        };
        // An identifier nobody has is throttled like an account, so that after the threshold
        // both answer THROTTLED and a lock does not tell that the account exists.
        let Some(user) = found else {
            self.login_throttle.reserve(&self.db, &unknown_key).await?;
            self.guess(&unknown_key, move || {
                Ok(password::verify(&password, &DUMMY_VERIFIER))
            })
            .await?;
            return Err(bad_credentials());
        };
        self.check_password(&user, password, scheme).await?;
        self.open_session(&user, &req.client).await
    }

    /// Verifies a password under the login throttle, upgrading the stored verifiers when a
    /// plain password fills a gap.
    pub(crate) async fn check_password(
        &self,
        user: &user::Model,
        password: String,
        scheme: Scheme,
    ) -> ApiResult<()> {
        let key = format!("login:{}", user.id);
        // Reserved before the hash is checked: concurrent guesses get `threshold` checks.
        self.login_throttle.reserve(&self.db, &key).await?;
        let stored = self.verifiers(user.id).await?;
        // A refusal of the hashing pool (busy) is no password check: the attempt is given
        // back, and it never counts as a failed one.
        let checked = self
            .guess(&key, move || {
                Ok(password::check(&password, scheme, &stored))
            })
            .await?;
        match checked {
            Ok(added) => {
                self.login_throttle.reset(&self.db, &key).await?;
                if let Some(added) = added {
                    store_verifiers(&self.db, user.id, added).await?;
                    tracing::info!(
                        user_id = user.id,
                        "added password verifiers after a plain login"
                    );
                }
                Ok(())
            }
            // The reserved attempt stays counted as the failure.
            Err(err) => Err(err),
        }
    }

    pub(crate) async fn verifiers(&self, user_id: i64) -> ApiResult<Vec<(Scheme, String)>> {
        Ok(credential::Entity::find()
            .filter(credential::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|c| Scheme::from_db(c.scheme).map(|s| (s, c.verifier)))
            .collect())
    }

    /// The live (not deleted) user a handle names.
    pub async fn resolve(&self, r: &UserRef) -> ApiResult<user::Model> {
        let filter = match &r.r#ref {
            Some(Ref::Id(id)) => user::Column::Id.eq(*id),
            Some(Ref::Username(name)) => user::Column::Username.eq(name),
            Some(Ref::Ocid(ocid)) => user::Column::Ocid.eq(ocid),
            Some(Ref::Email(email)) => user::Column::Email.eq(email.trim().to_ascii_lowercase()),
            None => {
                return Err(ApiError::invalid(
                    Reason::InvalidArgument,
                    "user reference is required",
                ));
            }
        };
        self.find(filter)
            .await?
            .ok_or_else(|| ApiError::not_found("no such user"))
    }

    /// The user `by` names, if any; a failing database is an error, not "nobody".
    async fn resolve_ok(&self, by: Ref) -> ApiResult<Option<user::Model>> {
        match self.resolve(&UserRef { r#ref: Some(by) }).await {
            Ok(user) => Ok(Some(user)),
            Err(err) if err.code == tonic::Code::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub(crate) async fn find(
        &self,
        filter: impl sea_orm::sea_query::IntoCondition,
    ) -> ApiResult<Option<user::Model>> {
        Ok(live_users().filter(filter).one(&self.db).await?)
    }

    async fn check_registration_code(
        &self,
        code: &str,
        phone: Option<&str>,
        email: Option<&str>,
    ) -> ApiResult<()> {
        let target = match (phone, email) {
            (Some(phone), _) => Some((
                VerificationChannel::Phone,
                phone,
                self.cfg.require_phone_code,
            )),
            (None, Some(email)) => Some((
                VerificationChannel::Email,
                email,
                self.cfg.require_email_code,
            )),
            (None, None) => None,
        };
        match target {
            Some((channel, target, _)) if !code.is_empty() => {
                codes::consume(
                    &self.db,
                    channel,
                    target,
                    VerificationPurpose::Register,
                    code,
                )
                .await
            }
            Some((_, _, true)) => Err(ApiError::precondition(
                Reason::CodeRequired,
                "a verification code is required",
            )),
            _ if !code.is_empty() => Err(ApiError::invalid(
                Reason::InvalidArgument,
                "a code needs a phone or e-mail",
            )),
            _ => Ok(()),
        }
    }

    async fn fresh_ocid(&self) -> ApiResult<String> {
        loop {
            let ocid: String = rand::rng()
                .sample_iter(&Alphanumeric)
                .take(OCID_LEN)
                .map(char::from)
                .collect();
            // The system's ocid (announcements to OurChat clients) is never drawn.
            if ocid == rosetta_proto::system::OCID {
                continue;
            }
            if self.find(user::Column::Ocid.eq(&ocid)).await?.is_none() {
                return Ok(ocid);
            }
        }
    }
}

/// The throttle key of `action` for an identifier that names nobody: a digest of the handle
/// as lookups read it (so the table holds no addresses and keys have one length).
pub(crate) fn unknown_key(action: &str, identifier: &Identifier) -> String {
    let handle = match identifier {
        Identifier::Username(v) => format!("username:{v}"),
        Identifier::Email(v) => format!("email:{}", v.trim().to_ascii_lowercase()),
        Identifier::UserId(v) => format!("id:{v}"),
        Identifier::Ocid(v) => format!("ocid:{v}"),
        Identifier::Phone(v) => format!("phone:{v}"),
    };
    format!(
        "{action}:?{}",
        hex::encode(Sha256::digest(handle.as_bytes()))
    )
}

/// [`unknown_key`] for a user reference.
pub(crate) fn unknown_ref_key(action: &str, r: &UserRef) -> String {
    let identifier = match &r.r#ref {
        Some(Ref::Id(v)) => Identifier::UserId(*v),
        Some(Ref::Username(v)) => Identifier::Username(v.clone()),
        Some(Ref::Ocid(v)) => Identifier::Ocid(v.clone()),
        Some(Ref::Email(v)) => Identifier::Email(v.clone()),
        None => Identifier::Username(String::new()),
    };
    unknown_key(action, &identifier)
}

pub(crate) fn live_users() -> Select<user::Entity> {
    user::Entity::find().filter(user::Column::DeletedAtMs.is_null())
}

/// Replaces (or adds) the given verifiers of a user.
pub(crate) async fn store_verifiers<C: sea_orm::ConnectionTrait>(
    db: &C,
    user_id: i64,
    verifiers: Vec<(Scheme, String)>,
) -> ApiResult<()> {
    let now = now_ms();
    for (scheme, verifier) in verifiers {
        credential::Entity::delete_by_id((user_id, scheme as i16))
            .exec(db)
            .await?;
        credential::Entity::insert(credential::ActiveModel {
            user_id: Set(user_id),
            scheme: Set(scheme as i16),
            verifier: Set(verifier),
            created_at_ms: Set(now),
        })
        .exec(db)
        .await?;
    }
    Ok(())
}

pub(crate) fn own_profile(u: &user::Model) -> pb::User {
    pb::User {
        email: u.email.clone().unwrap_or_default(),
        phone: u.phone.clone().unwrap_or_default(),
        security_question_id: u.security_question_id,
        ..public_profile(u)
    }
}

pub(crate) fn public_profile(u: &user::Model) -> pb::User {
    pb::User {
        id: u.id,
        username: u.username.clone(),
        ocid: u.ocid.clone(),
        nickname: u.nickname.clone(),
        avatar: u.avatar.clone(),
        signature: u.signature.clone(),
        gender: i32::from(u.gender),
        vip: u.vip,
        created_at_ms: u.created_at_ms,
        ..Default::default()
    }
}

fn optional(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty()).then_some(value)
}

pub(crate) fn valid_username(name: &str) -> ApiResult<String> {
    crate::names::username(name)
}

pub(crate) fn valid_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_ascii_lowercase();
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email)
    } else {
        Err(ApiError::invalid(
            Reason::InvalidArgument,
            "not an e-mail address",
        ))
    }
}

pub(crate) fn valid_phone(phone: &str) -> ApiResult<String> {
    let phone = phone.trim();
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(phone.to_owned())
    } else {
        Err(ApiError::invalid(
            Reason::InvalidArgument,
            "not a phone number",
        ))
    }
}

pub(crate) fn normalize_answer(answer: &str) -> Option<String> {
    optional(answer).map(str::to_owned)
}

pub(crate) fn limit(value: &str, max_chars: usize) -> ApiResult<String> {
    if value.chars().count() > max_chars {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            format!("field longer than {max_chars} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A unique-constraint race lost to a concurrent writer becomes ALREADY_EXISTS.
pub(crate) fn unique_violation(err: sea_orm::DbErr, reason: Reason) -> ApiError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::exists(reason, "already exists")
        }
        _ => ApiError::from(err),
    }
}
