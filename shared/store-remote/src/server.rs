//! The server side: the running process's store, answering at
//! [`crate::STORE_PATH`] to holders of its admin token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use store::{Item, ItemStore, Key, StoreError, Write};

use crate::wire::{Answer, Request, WireError, WireItem, WirePage};

/// A transaction of 100 items of 400 KB each, base64-encoded, fits.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

struct Lent {
    store: Arc<dyn ItemStore>,
    token: String,
}

/// The store operations, for callers on this machine (a peer address, when
/// the server knows it, must be loopback: 403 otherwise) presenting
/// `Authorization: Bearer <token>`. Everyone else gets 401 and learns
/// nothing.
pub fn router(store: Arc<dyn ItemStore>, token: String) -> Router {
    Router::new()
        .route(crate::STORE_PATH, post(operate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(Lent { store, token }))
}

/// Compares in time independent of where the strings first differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| !token.is_empty() && same_secret(given.as_bytes(), token.as_bytes()))
}

fn answer(status: StatusCode, body: &Answer) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn operate(
    State(lent): State<Arc<Lent>>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(axum::Extension(ConnectInfo(address))) = peer {
        if !address.ip().is_loopback() {
            return (
                StatusCode::FORBIDDEN,
                "the store is lent to processes on this machine only",
            )
                .into_response();
        }
    }
    if !authorized(&headers, &lent.token) {
        return (
            StatusCode::UNAUTHORIZED,
            "the admin token of this iisbulk serve is required",
        )
            .into_response();
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                &Answer::Error(WireError::Invalid {
                    detail: format!("not a store operation: {e}"),
                }),
            )
        }
    };
    match run(lent.store.as_ref(), request).await {
        Ok(a) => answer(StatusCode::OK, &a),
        // Store errors are answers too: the caller reacts to what happened.
        Err(e) => answer(StatusCode::OK, &Answer::Error((&e).into())),
    }
}

fn item(w: WireItem) -> Result<Item, StoreError> {
    w.try_into()
}

async fn run(store: &dyn ItemStore, request: Request) -> Result<Answer, StoreError> {
    Ok(match request {
        Request::Get { key } => Answer::Item(store.get(&key).await?.as_ref().map(WireItem::from)),
        Request::GetMany { keys } => {
            let keys: Vec<Key> = keys;
            Answer::Items(
                store
                    .get_many(&keys)
                    .await?
                    .iter()
                    .map(|i| i.as_ref().map(WireItem::from))
                    .collect(),
            )
        }
        Request::Put { item: w, cond } => Answer::Version(store.put(item(w)?, cond.into()).await?),
        Request::Delete { key, cond } => {
            store.delete(&key, cond.into()).await?;
            Answer::Done
        }
        Request::Query { pk, opts } => {
            Answer::Page(WirePage::from(&store.query(&pk, opts.try_into()?).await?))
        }
        Request::Transact { writes } => {
            let writes = writes
                .into_iter()
                .map(Write::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            store.transact(writes).await?;
            Answer::Done
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_caller_from_another_machine_is_refused_even_with_the_token() {
        use tower::ServiceExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ItemStore> =
            Arc::new(store::embedded::EmbeddedStore::open(dir.path().join("s.redb")).unwrap());
        let app = router(store, "s3cret".into());
        let ask = |from: &str| {
            let mut request = axum::http::Request::post(crate::STORE_PATH)
                .header(header::AUTHORIZATION, "Bearer s3cret")
                .body(axum::body::Body::from(
                    r#"{"op":"get","key":{"pk":"p","sk":"s"}}"#,
                ))
                .unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(from.parse::<std::net::SocketAddr>().unwrap()));
            app.clone().oneshot(request)
        };
        assert_eq!(
            ask("10.1.2.3:5000").await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ask("127.0.0.1:5000").await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(ask("[::1]:5000").await.unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn only_the_exact_token_is_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "s3cret"));
        for (given, ok) in [
            ("Bearer s3cret", true),
            ("Bearer s3cre", false),
            ("Bearer s3cretx", false),
            ("Bearer S3cret", false),
            ("s3cret", false),
            ("Basic s3cret", false),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(given));
            assert_eq!(authorized(&headers, "s3cret"), ok, "{given}");
        }
        // An empty token (a misconfigured server) admits nobody.
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(!authorized(&headers, ""));
    }
}
