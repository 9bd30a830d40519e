//! Password verifiers. Legacy clients send the password in three forms (plain, MD5 hex,
//! SHA-256 hex); an account stores an argon2id verifier per form it can be checked in. A plain
//! password yields all three; a digest only its own, until the user logs in once with the plain
//! password through any client, which adds the missing ones. MD5 and SHA-256 digests cannot be
//! turned into each other, so an account created from one digest cannot log in with the other
//! until that happens.

use argon2::{
    Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version,
    password_hash::phc::PasswordHash,
};
use md5::Md5;
use rosetta_kit::ApiError;
use rosetta_proto::account::v1::PasswordScheme;
use sha2::{Digest, Sha256};

/// OWASP's minimum for argon2id: 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;
const MAX_PASSWORD_BYTES: usize = 1024;

/// The form a password travels in; stored as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Plain = 1,
    Md5Hex = 2,
    Sha256Hex = 3,
}

impl Scheme {
    pub const ALL: [Scheme; 3] = [Scheme::Plain, Scheme::Md5Hex, Scheme::Sha256Hex];

    pub fn from_proto(value: i32) -> Result<Self, ApiError> {
        match PasswordScheme::try_from(value) {
            Ok(PasswordScheme::Unspecified | PasswordScheme::Plain) => Ok(Self::Plain),
            Ok(PasswordScheme::Md5Hex) => Ok(Self::Md5Hex),
            Ok(PasswordScheme::Sha256Hex) => Ok(Self::Sha256Hex),
            Err(_) => Err(ApiError::invalid(
                "INVALID_ARGUMENT",
                "unknown password scheme",
            )),
        }
    }

    pub fn from_db(value: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as i16 == value)
    }

    /// Checks the presented text's shape and puts digests in canonical (lowercase) form.
    pub fn normalize(self, password: &str) -> Result<String, ApiError> {
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::invalid(
                "INVALID_ARGUMENT",
                "password must be 1 to 1024 bytes",
            ));
        }
        let hex_len = match self {
            Scheme::Plain => return Ok(password.to_owned()),
            Scheme::Md5Hex => 32,
            Scheme::Sha256Hex => 64,
        };
        if password.len() != hex_len || !password.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "INVALID_ARGUMENT",
                format!("password must be {hex_len} hex digits for this scheme"),
            ));
        }
        Ok(password.to_ascii_lowercase())
    }

    /// The form of a plain password in this scheme.
    pub fn derive(self, plain: &str) -> String {
        match self {
            Scheme::Plain => plain.to_owned(),
            Scheme::Md5Hex => hex::encode(Md5::digest(plain.as_bytes())),
            Scheme::Sha256Hex => hex::encode(Sha256::digest(plain.as_bytes())),
        }
    }
}

/// The argon2id parameters of every verifier; public so that bulk writers (the importer)
/// produce verifiers the service checks as its own.
pub fn argon2_params() -> Params {
    Params::new(MEMORY_KIB, PASSES, LANES, None).expect("argon2 parameters are valid")
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params())
}

/// argon2id PHC string of `secret` with a fresh salt. CPU-heavy: call from a blocking thread.
pub fn hash(secret: &str) -> Result<String, ApiError> {
    argon2()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Whether `secret` matches a PHC string. CPU-heavy: call from a blocking thread.
pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|parsed| argon2().verify_password(secret.as_bytes(), &parsed).is_ok())
}

/// Runs CPU-heavy hashing off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

/// Verifiers for a new password presented in `scheme`.
pub fn verifiers_for(password: &str, scheme: Scheme) -> Result<Vec<(Scheme, String)>, ApiError> {
    match scheme {
        Scheme::Plain => Scheme::ALL
            .iter()
            .map(|s| Ok((*s, hash(&s.derive(password))?)))
            .collect(),
        digest => Ok(vec![(digest, hash(password)?)]),
    }
}

/// Checks a presented password against the stored verifiers. Returns the verifiers to add when
/// a plain password succeeded and some forms were missing.
pub fn check(
    password: &str,
    scheme: Scheme,
    stored: &[(Scheme, String)],
) -> Result<Option<Vec<(Scheme, String)>>, ApiError> {
    let find = |s: Scheme| {
        stored
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, v)| v.as_str())
    };
    let matched = match scheme {
        Scheme::Plain => Scheme::ALL
            .iter()
            .find_map(|s| find(*s).map(|phc| verify(&s.derive(password), phc)))
            .unwrap_or(false),
        digest => find(digest).is_some_and(|phc| verify(password, phc)),
    };
    if !matched {
        return Err(bad_credentials());
    }
    if scheme != Scheme::Plain {
        return Ok(None);
    }
    let missing: Vec<Scheme> = Scheme::ALL
        .into_iter()
        .filter(|s| find(*s).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let added = missing
        .into_iter()
        .map(|s| Ok((s, hash(&s.derive(password))?)))
        .collect::<Result<_, ApiError>>()?;
    Ok(Some(added))
}

pub fn bad_credentials() -> ApiError {
    ApiError::unauthenticated("BAD_CREDENTIALS", "wrong user name or password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_legacy_clients() {
        // Values from the protocol notes' example sessions.
        assert_eq!(
            Scheme::Md5Hex.derive("123456"),
            "e10adc3949ba59abbe56e057f20f883e"
        );
        assert_eq!(
            Scheme::Md5Hex.derive("abc123"),
            "e99a18c428cb38d5f260853678922e03"
        );
        assert_eq!(
            Scheme::Sha256Hex.derive("123456"),
            "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92"
        );
    }

    #[test]
    fn argon2id_uses_owasp_parameters() {
        let phc = hash("secret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("secret", &phc));
        assert!(!verify("Secret", &phc));
    }

    #[test]
    fn plain_login_against_a_digest_account_adds_the_missing_forms() {
        let stored = verifiers_for(&Scheme::Md5Hex.derive("pw"), Scheme::Md5Hex).unwrap();
        assert!(check(&Scheme::Sha256Hex.derive("pw"), Scheme::Sha256Hex, &stored).is_err());
        let added = check("pw", Scheme::Plain, &stored).unwrap().unwrap();
        let kinds: Vec<_> = added.iter().map(|(s, _)| *s).collect();
        assert_eq!(kinds, vec![Scheme::Plain, Scheme::Sha256Hex]);
        assert!(check("wrong", Scheme::Plain, &stored).is_err());
    }

    #[test]
    fn digest_shape_is_checked() {
        assert!(Scheme::Md5Hex.normalize("xyz").is_err());
        assert_eq!(
            Scheme::Md5Hex
                .normalize("E10ADC3949BA59ABBE56E057F20F883E")
                .unwrap(),
            "e10adc3949ba59abbe56e057f20f883e"
        );
        assert!(Scheme::Plain.normalize("").is_err());
    }
}
