//! gRPC handlers: unwrap the request, take identity from the auth layer, call the domain.

use std::sync::Arc;

use rosetta_auth::{BridgeKey, Caller};
use rosetta_proto::account::v1::{account_service_server::AccountService, *};
use tonic::{Request, Response, Status};

use crate::{
    Accounts,
    sources::{Action, Sources},
};

/// Methods callable without a bearer token.
pub const PUBLIC_METHODS: &[&str] = &[
    "Register",
    "SendVerificationCode",
    "Login",
    "Refresh",
    "ExchangeLegacyToken",
    "RecoverPassword",
    "GetVerificationKeys",
];

pub struct AccountGrpc {
    accounts: Arc<Accounts>,
    /// Per-source limits of logins, registrations and code requests.
    sources: Sources,
}

impl AccountGrpc {
    /// `bridge_key`: the credential that lets a bridge name its legacy client's address.
    pub fn new(accounts: Arc<Accounts>, bridge_key: Option<BridgeKey>) -> Self {
        let sources = Sources::new(&accounts.cfg, bridge_key);
        Self { accounts, sources }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AccountService for AccountGrpc {
    async fn register(&self, req: Request<RegisterRequest>) -> Reply<RegisterResponse> {
        self.sources.admit(Action::Register, &req)?;
        let user = self.accounts.register(req.into_inner()).await?;
        Ok(Response::new(RegisterResponse { user: Some(user) }))
    }

    async fn send_verification_code(
        &self,
        req: Request<SendVerificationCodeRequest>,
    ) -> Reply<SendVerificationCodeResponse> {
        self.sources.admit(Action::Code, &req)?;
        let expires_at_ms = self.accounts.send_code(req.into_inner()).await?;
        Ok(Response::new(SendVerificationCodeResponse {
            expires_at_ms,
        }))
    }

    async fn login(&self, req: Request<LoginRequest>) -> Reply<LoginResponse> {
        self.sources.admit(Action::Login, &req)?;
        Ok(Response::new(self.accounts.login(req.into_inner()).await?))
    }

    async fn refresh(&self, req: Request<RefreshRequest>) -> Reply<LoginResponse> {
        Ok(Response::new(
            self.accounts
                .refresh(&req.into_inner().refresh_token)
                .await?,
        ))
    }

    async fn logout(&self, req: Request<LogoutRequest>) -> Reply<LogoutResponse> {
        self.accounts.logout(&Caller::of(&req)?).await?;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn issue_legacy_token(
        &self,
        req: Request<IssueLegacyTokenRequest>,
    ) -> Reply<IssueLegacyTokenResponse> {
        let caller = Caller::of(&req)?;
        let req = req.into_inner();
        let token = self
            .accounts
            .issue_legacy_token(&caller, &req.protocol, req.format)
            .await?;
        Ok(Response::new(IssueLegacyTokenResponse { token }))
    }

    async fn exchange_legacy_token(
        &self,
        req: Request<ExchangeLegacyTokenRequest>,
    ) -> Reply<LoginResponse> {
        self.sources.admit(Action::Login, &req)?;
        Ok(Response::new(
            self.accounts
                .exchange_legacy_token(req.into_inner())
                .await?,
        ))
    }

    async fn get_my_profile(&self, req: Request<GetMyProfileRequest>) -> Reply<User> {
        Ok(Response::new(
            self.accounts.my_profile(&Caller::of(&req)?).await?,
        ))
    }

    async fn get_profiles(&self, req: Request<GetProfilesRequest>) -> Reply<GetProfilesResponse> {
        let users = self.accounts.profiles(&req.into_inner().user_ids).await?;
        Ok(Response::new(GetProfilesResponse { users }))
    }

    async fn lookup_user(&self, req: Request<LookupUserRequest>) -> Reply<User> {
        let user = req.into_inner().user.unwrap_or_default();
        let found = self.accounts.resolve(&user).await?;
        Ok(Response::new(crate::accounts::public_profile(&found)))
    }

    async fn search_users(&self, req: Request<SearchUsersRequest>) -> Reply<SearchUsersResponse> {
        Ok(Response::new(self.accounts.search(req.into_inner()).await?))
    }

    async fn update_profile(&self, req: Request<UpdateProfileRequest>) -> Reply<User> {
        let caller = Caller::of(&req)?;
        Ok(Response::new(
            self.accounts
                .update_profile(&caller, req.into_inner())
                .await?,
        ))
    }

    async fn change_password(
        &self,
        req: Request<ChangePasswordRequest>,
    ) -> Reply<ChangePasswordResponse> {
        let caller = Caller::of(&req)?;
        self.accounts
            .change_password(&caller, req.into_inner())
            .await?;
        Ok(Response::new(ChangePasswordResponse {}))
    }

    async fn recover_password(
        &self,
        req: Request<RecoverPasswordRequest>,
    ) -> Reply<RecoverPasswordResponse> {
        self.sources.admit(Action::Code, &req)?;
        self.accounts.recover_password(req.into_inner()).await?;
        Ok(Response::new(RecoverPasswordResponse {}))
    }

    async fn delete_account(
        &self,
        req: Request<DeleteAccountRequest>,
    ) -> Reply<DeleteAccountResponse> {
        let caller = Caller::of(&req)?;
        self.accounts
            .delete_account(&caller, req.into_inner())
            .await?;
        Ok(Response::new(DeleteAccountResponse {}))
    }

    async fn get_verification_keys(
        &self,
        _: Request<GetVerificationKeysRequest>,
    ) -> Reply<GetVerificationKeysResponse> {
        Ok(Response::new(GetVerificationKeysResponse {
            public_keys_pem: self.accounts.public_pems.clone(),
            issuer: self.accounts.cfg.issuer.clone(),
        }))
    }
}
