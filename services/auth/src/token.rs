//! JWT access tokens.

use std::time::Duration;

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
};
use rosetta_kit::{ApiError, Reason};
use serde::{Deserialize, Serialize};

use crate::Caller;

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

/// Checks access tokens with public keys only.
pub struct TokenVerifier {
    keys: Vec<DecodingKey>,
    validation: Validation,
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
        Ok(Self { keys, validation })
    }

    /// The caller a token names, if its signature, issuer and expiry hold.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let mut last = None;
        for key in &self.keys {
            match decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    let user_id = data.claims.sub.parse().map_err(|_| invalid_token())?;
                    return Ok(Caller {
                        user_id,
                        session_id: data.claims.sid,
                    });
                }
                Err(err) if matches!(err.kind(), ErrorKind::ExpiredSignature) => {
                    return Err(ApiError::unauthenticated(
                        Reason::TokenExpired,
                        "access token expired",
                    ));
                }
                Err(err) => last = Some(err),
            }
        }
        tracing::debug!(error = ?last, "rejected access token");
        Err(invalid_token())
    }
}

fn invalid_token() -> ApiError {
    ApiError::unauthenticated(Reason::TokenInvalid, "invalid access token")
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
}
