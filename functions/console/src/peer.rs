//! Where a console request came from, for the audit trail: the peer
//! address `iisbulk serve` gets from its listener and the Lambda from API
//! Gateway's `sourceIp` (both as axum's `ConnectInfo<SocketAddr>`, the
//! extension bulk-api's `Peer` reads).
//!
//! A layer over the whole router keeps the address for the time of the
//! request, and `audit_routes::record` stamps every event with it: an
//! event recorded deep in a login or a decision carries it without each
//! route passing it along, and a route added later cannot forget it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static SOURCE: Option<String>;
}

/// The middleware: runs the rest of the request with its caller's address
/// (the IP only: the port says nothing about who asked).
pub(crate) async fn keep_source(request: Request, next: Next) -> Response {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    SOURCE.scope(source, next.run(request)).await
}

/// The current request's caller address, when the transport gave one.
pub(crate) fn source() -> Option<String> {
    SOURCE.try_with(Clone::clone).ok().flatten()
}
