//! Who is calling. Access tokens are short-lived EdDSA JWTs: the account service signs them
//! with the private key, every other service verifies them with the public key alone. A
//! session revoked by logout stops its tokens everywhere (at once in the same process, within
//! [`SessionGuard`]'s cache lifetime elsewhere).

mod bridge_key;
mod caller;
mod keys;
mod layer;
mod sessions;
mod token;

pub use bridge_key::BridgeKey;
pub use caller::{Caller, bearer};
pub use keys::{KeyFiles, KeyPair};
pub use layer::{Authenticated, Authenticator};
pub use sessions::SessionGuard;
pub use token::{Claims, TokenIssuer, TokenVerifier};
