//! Placeholder of the auth contract (owned by ws-ops; replaced by their version on merge).

/// What a connection or channel may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Refused.
    Refuse,
    /// May pull, changes nobody.
    ReadOnly,
    /// Full access.
    ReadWrite,
}

/// What an auth hook decides on.
pub struct AuthRequest<'a> {
    /// The room path (8.1) being joined; for a multiplexed subscribe, the channel's room path.
    pub path: &'a str,
    /// The upgrade request's headers.
    pub headers: &'a axum::http::HeaderMap,
    /// The upgrade request's raw query string.
    pub query: Option<&'a str>,
    /// The peer's address.
    pub remote: std::net::SocketAddr,
}

/// Decides the access of a connection or channel.
pub type AuthHook = std::sync::Arc<dyn Fn(&AuthRequest) -> Access + Send + Sync>;
