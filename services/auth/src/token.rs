//! JWT access tokens.

use std::time::Duration;

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
    get_current_timestamp,
};
use rosetta_kit::{ApiError, Reason};
use serde::{Deserialize, Serialize};

use crate::{
    Caller,
    cache::{Cached, DEFAULT_CAPACITY, TokenCache},
};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id, decimal.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    pub iss: String,
}

/// Signs access tokens (account service only).
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    ttl: Duration,
}

impl TokenIssuer {
    pub fn new(
        private_pem: &str,
        issuer: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, ApiError> {
        let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).map_err(ApiError::internal)?;
        Ok(Self {
            key,
            issuer: issuer.into(),
            ttl,
        })
    }

    /// A token for `user_id` in `session_id`, and its expiry in Unix milliseconds.
    pub fn issue(
        &self,
        user_id: i64,
        session_id: &str,
        now_ms: i64,
    ) -> Result<(String, i64), ApiError> {
        let iat = u64::try_from(now_ms / 1000).unwrap_or(0);
        let exp = iat + self.ttl.as_secs().max(1);
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_owned(),
            iat,
            exp,
            iss: self.issuer.clone(),
        };
        let token = encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(ApiError::internal)?;
        Ok((token, i64::try_from(exp).unwrap_or(i64::MAX) * 1000))
    }
}

/// Checks access tokens with public keys only, remembering the ones it verified (see
/// the `cache` module) until they expire.
pub struct TokenVerifier {
    keys: Vec<DecodingKey>,
    validation: Validation,
    cache: TokenCache,
}

impl TokenVerifier {
    /// `public_pems`: every key that may have signed a live token (the first is current).
    pub fn new<'a>(
        public_pems: impl IntoIterator<Item = &'a str>,
        issuer: &str,
    ) -> Result<Self, ApiError> {
        let keys = public_pems
            .into_iter()
            .map(|pem| DecodingKey::from_ed_pem(pem.as_bytes()).map_err(ApiError::internal))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(ApiError::internal("no token verification key configured"));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 0;
        Ok(Self {
            keys,
            validation,
            cache: TokenCache::new(DEFAULT_CAPACITY),
        })
    }

    /// This verifier remembering at most `capacity` verified tokens (0: none, every call
    /// checks the signature).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = TokenCache::new(capacity);
        self
    }

    /// The caller a token names, if its signature, issuer and expiry hold. Whether its session
    /// is still live is the caller's to check ([`crate::SessionGuard`]).
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        self.verify_at(token, get_current_timestamp())
    }

    /// [`Self::verify`] with the cache consulted at `now` (Unix seconds); the decoder reads
    /// the clock itself, and both use the same rule (expired once `exp < now`).
    fn verify_at(&self, token: &str, now: u64) -> Result<Caller, ApiError> {
        let key = TokenCache::key(token);
        match self.cache.get(&key, now) {
            Cached::Valid(caller) => return Ok(caller),
            Cached::Expired => return Err(token_expired()),
            Cached::Unknown => {}
        }
        let (caller, exp) = self.decode(token)?;
        self.cache.insert(key, caller.clone(), exp, now);
        Ok(caller)
    }

    /// The caller a token names and its expiry, from its signature and claims.
    fn decode(&self, token: &str) -> Result<(Caller, u64), ApiError> {
        let mut last = None;
        for key in &self.keys {
            match decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    let user_id = data.claims.sub.parse().map_err(|_| invalid_token())?;
                    let caller = Caller {
                        user_id,
                        session_id: data.claims.sid,
                    };
                    return Ok((caller, data.claims.exp));
                }
                Err(err) if matches!(err.kind(), ErrorKind::ExpiredSignature) => {
                    return Err(token_expired());
                }
                Err(err) => last = Some(err),
            }
        }
        tracing::debug!(error = ?last, "rejected access token");
        Err(invalid_token())
    }

    /// Verified tokens remembered now (for tests of the bound).
    #[doc(hidden)]
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

fn invalid_token() -> ApiError {
    ApiError::unauthenticated(Reason::TokenInvalid, "invalid access token")
}

fn token_expired() -> ApiError {
    ApiError::unauthenticated(Reason::TokenExpired, "access token expired")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let pair = KeyPair::generate().unwrap();
        let issuer =
            TokenIssuer::new(&pair.private_pem, "rosetta", Duration::from_secs(60)).unwrap();
        let verifier = TokenVerifier::new([pair.public_pem.as_str()], "rosetta").unwrap();
        let now = rosetta_db::now_ms();
        let (token, exp) = issuer.issue(42, "s1", now).unwrap();
        assert!(exp > now);
        assert_eq!(
            verifier.verify(&token).unwrap(),
            Caller {
                user_id: 42,
                session_id: "s1".into()
            }
        );

        let other = KeyPair::generate().unwrap();
        let foreign =
            TokenIssuer::new(&other.private_pem, "rosetta", Duration::from_secs(60)).unwrap();
        let (forged, _) = foreign.issue(42, "s1", now).unwrap();
        assert_eq!(
            verifier.verify(&forged).unwrap_err().reason,
            Reason::TokenInvalid
        );

        let (old, _) = issuer.issue(42, "s1", now - 120_000).unwrap();
        assert_eq!(
            verifier.verify(&old).unwrap_err().reason,
            Reason::TokenExpired
        );

        let mut tampered = token.clone();
        tampered.push('x');
        assert!(verifier.verify(&tampered).is_err());
    }

    fn pair() -> (TokenIssuer, TokenVerifier) {
        let pair = KeyPair::generate().unwrap();
        let issuer =
            TokenIssuer::new(&pair.private_pem, "rosetta", Duration::from_secs(60)).unwrap();
        let verifier = TokenVerifier::new([pair.public_pem.as_str()], "rosetta").unwrap();
        (issuer, verifier)
    }

    #[test]
    fn a_cached_token_stops_working_at_its_exp() {
        let (issuer, verifier) = pair();
        let (token, exp_ms) = issuer.issue(42, "s1", rosetta_db::now_ms()).unwrap();
        let exp = u64::try_from(exp_ms / 1000).unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(verifier.cached_tokens(), 1, "verified once, then cached");
        assert_eq!(verifier.verify_at(&token, exp).unwrap(), caller);
        assert_eq!(
            verifier.verify_at(&token, exp + 1).unwrap_err().reason,
            Reason::TokenExpired
        );
        assert_eq!(verifier.cached_tokens(), 0, "the expired entry is gone");
    }

    #[test]
    fn only_verified_tokens_are_cached() {
        let (issuer, verifier) = pair();
        let (token, _) = issuer.issue(42, "s1", rosetta_db::now_ms()).unwrap();
        verifier.verify(&token).unwrap();
        // A token differing from a cached one in any byte is checked on its own.
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        for _ in 0..3 {
            assert_eq!(
                verifier.verify(&tampered).unwrap_err().reason,
                Reason::TokenInvalid
            );
        }
        for n in 0..100 {
            assert!(verifier.verify(&format!("bogus.{n}.token")).is_err());
        }
        assert_eq!(verifier.cached_tokens(), 1, "refused tokens take no place");
        assert!(
            verifier.verify(&token).is_ok(),
            "nor do they evict a good one"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let (issuer, verifier) = pair();
        let verifier = verifier.with_cache_capacity(64);
        let now = rosetta_db::now_ms();
        for n in 0..500 {
            let (token, _) = issuer.issue(n, &format!("s{n}"), now).unwrap();
            assert_eq!(verifier.verify(&token).unwrap().user_id, n);
            assert!(verifier.cached_tokens() <= 64);
        }
    }

    /// The cost of one verification, cached and not (debug builds are far slower than release
    /// for both; the ratio is what counts): `cargo test -p rosetta-auth --lib -- --ignored
    /// --nocapture verify_cost`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn verify_cost() {
        let pair = KeyPair::generate().unwrap();
        let issuer =
            TokenIssuer::new(&pair.private_pem, "rosetta", Duration::from_secs(60)).unwrap();
        let verifier = |capacity| {
            TokenVerifier::new([pair.public_pem.as_str()], "rosetta")
                .unwrap()
                .with_cache_capacity(capacity)
        };
        let (cached, uncached) = (verifier(DEFAULT_CAPACITY), verifier(0));
        // A session id as the account service makes them (a UUID).
        let sid = "7f1c2a9e-5b3d-4c8e-9a0f-1e2d3c4b5a69";
        let (token, _) = issuer.issue(42, sid, rosetta_db::now_ms()).unwrap();
        let per_op = |verifier: &TokenVerifier, rounds: u32| {
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(verifier.verify(std::hint::black_box(&token)).unwrap());
            }
            started.elapsed().as_nanos() / u128::from(rounds)
        };
        per_op(&cached, 100);
        println!(
            "verify: {} ns/op without the cache, {} ns/op with it",
            per_op(&uncached, 2_000),
            per_op(&cached, 200_000)
        );
    }
}
