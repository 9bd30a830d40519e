use std::time::Duration;

use crate::sources::SourceLimit;

/// Tunables of the account service; the defaults are what a production deployment wants.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// `iss` claim of access tokens.
    pub issuer: String,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (each refresh starts a new one).
    pub refresh_ttl: Duration,
    /// Consecutive failed password checks before an account's logins are locked (also the
    /// limit of recovery attempts, and of login attempts for an identifier naming nobody).
    /// Each attempt is counted before it is checked; a counter untouched for
    /// max(1 h, 2 × `lockout_max`) is forgotten.
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
    /// Per source address (see `sources.rs`): `Login` and `ExchangeLegacyToken`.
    pub source_login: SourceLimit,
    /// Per source address: `Register`.
    pub source_register: SourceLimit,
    /// Per source address: `SendVerificationCode` and `RecoverPassword`.
    pub source_code: SourceLimit,
    /// Sources each per-source limiter remembers at most (bounded memory).
    pub source_max_tracked: usize,
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
            // A NAT'd campus or office logs in together in the morning: a burst of 300, then
            // 5 a second (18,000 an hour) per address. A guesser from one address gets 5
            // tries a second spread over all accounts (the per-account lock-out stops it
            // earlier on any one account), and at most that much argon2id work.
            source_login: SourceLimit::new(300, 300),
            // Registrations are rarer than logins even behind a NAT: 30 at once, then one
            // every 6 s per address (600 an hour), which stops bulk account creation.
            source_register: SourceLimit::new(30, 10),
            // Each code is a message to a phone or mailbox somebody pays for, and each
            // recovery a guess: 20 at once, then one every 6 s per address.
            source_code: SourceLimit::new(20, 10),
            // About 50 bytes per source: some 5 MB per limiter at most.
            source_max_tracked: 100_000,
            hash_workers: 0,
            hash_queue: 64,
        }
    }
}
