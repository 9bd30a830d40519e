//! Password verifiers. Legacy clients send the password in three forms (plain, MD5 hex,
//! SHA-256 hex); an account stores an argon2id verifier per form it can be checked in. A plain
//! password yields all three; a digest only its own, until the user logs in once with the plain
//! password through any client, which adds the missing ones. MD5 and SHA-256 digests cannot be
//! turned into each other, so an account created from one digest cannot log in with the other
//! until that happens.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use md5::Md5;
use rosetta_kit::{ApiError, Reason};

use crate::hash_pool;
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
                Reason::InvalidArgument,
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
                Reason::InvalidArgument,
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
                Reason::InvalidArgument,
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

/// Length of a fresh salt and of the hash output (argon2's defaults, as the stock hasher).
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// argon2id PHC string of `secret` with a fresh salt. CPU-heavy: runs on a hashing worker
/// (see [`crate::hash_pool`]), whose reused memory it borrows.
pub fn hash(secret: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; SALT_LEN];
    rand::Rng::fill(&mut rand::rng(), &mut salt);
    let argon2 = argon2();
    let mut out = [0u8; OUTPUT_LEN];
    hash_pool::with_memory(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(secret.as_bytes(), &salt, &mut out, blocks)
    })
    .map_err(ApiError::internal)?;
    // The same PHC string the stock `PasswordHasher` writes, so every verifier reads it.
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(ApiError::internal)?,
        salt: Some(Salt::new(&salt).map_err(ApiError::internal)?),
        hash: Some(Output::new(&out).map_err(ApiError::internal)?),
    };
    Ok(phc.to_string())
}

/// Whether `secret` matches a PHC string. CPU-heavy: runs on a hashing worker, whose reused
/// memory it borrows. Reads what the stock verifier reads: any argon2 variant, version and
/// parameters the string names.
pub fn verify(secret: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(version), Ok(params)) = (version, Params::try_from(&parsed)) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = hash_pool::with_memory(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(secret.as_bytes(), salt.as_ref(), &mut out, blocks)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == *expected)
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
    ApiError::unauthenticated(Reason::BadCredentials, "wrong user name or password")
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
