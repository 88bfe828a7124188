//! SMART Backend Services: registered clients of Authorized Users, the
//! token endpoint's rules (RFC 7523 client assertions, RS384/ES384, replay
//! and time checks, system scopes) and bearer token checks. Transport-free:
//! the HTTP routes live in `functions/bulk-api`, fetching a JWKS URL is a port.

mod clients;
pub mod jose;
pub mod scopes;
mod tokens;

pub use clients::{Client, ClientError, Clients, JwksSource};
pub use tokens::{
    AccessGrant, Issued, OAuthError, TokenRequest, Tokens, ASSERTION_TYPE, AUDIT_ACTION,
    MAX_ASSERTION_LIFETIME, TOKEN_LIFETIME,
};
