use std::time::Duration;

/// Tunables of the account service; the defaults are what a production deployment wants.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// `iss` claim of access tokens.
    pub issuer: String,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (each refresh starts a new one).
    pub refresh_ttl: Duration,
    /// Consecutive failed password checks before an account's logins are locked.
    pub lockout_threshold: u32,
    /// First lock period; each further failure doubles it, up to `lockout_max`.
    pub lockout_base: Duration,
    pub lockout_max: Duration,
    /// How long a verification code stays valid.
    pub code_ttl: Duration,
    /// Minimum time between two codes to the same target.
    pub code_resend_interval: Duration,
    /// Codes per target per hour.
    pub code_max_per_hour: u32,
    /// Registration with a phone number requires a code sent to it.
    pub require_phone_code: bool,
    /// Registration with an e-mail address (and no phone) requires a code sent to it.
    pub require_email_code: bool,
    /// Every verification code is this value instead of a random one: for test rigs and
    /// demos whose clients must register without an SMS or e-mail gateway. Never in production.
    pub fixed_code: Option<String>,
    /// Password-hashing worker threads (0: one per available core); each holds one argon2
    /// memory area (19 MiB) for good.
    pub hash_workers: usize,
    /// Hashing requests that may wait for a worker; beyond them requests are refused at once
    /// with `THROTTLED` and a `RetryInfo`.
    pub hash_queue: usize,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            issuer: "rosetta".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            lockout_threshold: 5,
            lockout_base: Duration::from_secs(30),
            lockout_max: Duration::from_secs(15 * 60),
            code_ttl: Duration::from_secs(10 * 60),
            code_resend_interval: Duration::from_secs(30),
            code_max_per_hour: 5,
            require_phone_code: false,
            require_email_code: false,
            fixed_code: None,
            hash_workers: 0,
            hash_queue: 64,
        }
    }
}
