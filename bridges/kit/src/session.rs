//! A logged-in user as a bridge holds them: the canonical access and refresh tokens, renewed
//! before the access token lapses, so a legacy connection that lives for hours keeps working.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rosetta_proto::account::v1::{LoginResponse, LogoutRequest, RefreshRequest, User};
use tokio::sync::Mutex;
use tonic::{Request, Status};

use crate::{Backend, backend::authed};

/// Renew the access token when it has less than this left.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

pub struct UserSession {
    backend: Backend,
    user: User,
    tokens: Mutex<Tokens>,
}

struct Tokens {
    access: String,
    access_expires_at_ms: i64,
    refresh: String,
}

impl UserSession {
    /// Wraps the answer of `Login`, `Refresh` or `ExchangeLegacyToken`.
    pub fn new(backend: Backend, login: LoginResponse) -> Self {
        Self {
            backend,
            user: login.user.unwrap_or_default(),
            tokens: Mutex::new(Tokens {
                access: login.access_token,
                access_expires_at_ms: login.access_expires_at_ms,
                refresh: login.refresh_token,
            }),
        }
    }

    /// The user as they were at login.
    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn user_id(&self) -> i64 {
        self.user.id
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// A valid access token, refreshed first if it is about to expire.
    pub async fn access_token(&self) -> Result<String, Status> {
        let mut tokens = self.tokens.lock().await;
        if tokens.access_expires_at_ms - now_ms() < RENEW_MARGIN.as_millis() as i64 {
            let renewed = self
                .backend
                .account()
                .refresh(RefreshRequest {
                    refresh_token: tokens.refresh.clone(),
                })
                .await?
                .into_inner();
            *tokens = Tokens {
                access: renewed.access_token,
                access_expires_at_ms: renewed.access_expires_at_ms,
                refresh: renewed.refresh_token,
            };
        }
        Ok(tokens.access.clone())
    }

    /// `message` as a request made by this user.
    pub async fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        Ok(authed(message, &self.access_token().await?))
    }

    /// Makes one call as this user: `message` with a fresh access token, through `call`,
    /// which is handed the backend and the request (the deadline is the backend's).
    ///
    /// ```ignore
    /// let sent = session
    ///     .call(request, |backend, r| async move { backend.messaging().send_message(r).await })
    ///     .await?;
    /// ```
    pub async fn call<T, R, F, Fut>(&self, message: T, call: F) -> Result<R, Status>
    where
        F: FnOnce(Backend, Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let request = self.request(message).await?;
        Ok(call(self.backend.clone(), request).await?.into_inner())
    }

    /// Ends the canonical session (its tokens stop working everywhere).
    pub async fn logout(&self) -> Result<(), Status> {
        let request = self.request(LogoutRequest {}).await?;
        self.backend.account().logout(request).await?;
        Ok(())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
