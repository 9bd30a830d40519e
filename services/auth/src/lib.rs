//! Who is calling. Access tokens are short-lived EdDSA JWTs: the account service signs them
//! with the private key, every other service verifies them with the public key alone. A
//! session revoked by logout stops its tokens everywhere (at once in the same process, within
//! [`SessionGuard`]'s cache lifetime elsewhere, within the [`SessionWatch`] period for open
//! event streams). A token's signature is checked once per
//! process: [`TokenVerifier`] remembers the tokens it verified (bounded, keyed by their SHA-256,
//! each until its `exp`), while the session check runs on every call.

mod bridge_key;
mod cache;
mod caller;
mod keys;
mod layer;
mod session_watch;
mod sessions;
mod token;

pub use bridge_key::BridgeKey;
pub use caller::{Caller, bearer};
pub use keys::{KeyFiles, KeyPair};
pub use layer::{Authenticated, Authenticator};
pub use session_watch::{SessionWatch, WatchHandle};
pub use sessions::{SessionGuard, SessionQueries};
pub use token::{Claims, TokenIssuer, TokenVerifier};
