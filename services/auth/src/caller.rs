use tonic::{Request, Status, metadata::MetadataValue};

/// The authenticated user of a request, put into the request's extensions by
/// [`crate::Authenticated`]. Handlers take identity from here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub session_id: String,
}

impl Caller {
    /// The caller of a request that passed the auth layer.
    pub fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))
    }
}

/// The `authorization` metadata value for an access token.
pub fn bearer(access_token: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
    format!("Bearer {access_token}")
        .parse()
        .map_err(|_| Status::invalid_argument("access token is not ASCII"))
}
