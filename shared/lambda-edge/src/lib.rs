//! # lambda-edge — the HTTP functions' routers on Lambda
//!
//! `ingest`, `bulk-api` and `console` are axum routers with routes such as
//! `/hl7`, `/fhir/metadata` and `/console/api/session`. lambda_http turns each front door's event into a
//! request, but for an API Gateway REST API (payload 1.0), or an HTTP API
//! stage other than `$default`, it puts the stage in front of the path
//! (`/prod/hl7`), and no route would match. [`on_lambda`] takes the stage
//! off again, so one router answers every door the same way; links the
//! functions write come from their configured public URL, which names the
//! stage where there is one.
//!
//! It also gives the router the caller's address as a local server would:
//! API Gateway's `sourceIp` as axum's `ConnectInfo<SocketAddr>` (port 0:
//! API Gateway does not pass the caller's port), so per-source limits work
//! the same in both places.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Request, Uri};
use axum::Router;
use lambda_http::request::RequestContext;
use tower::util::MapRequest;

/// A router as Lambda serves it: the stage comes off before routing (a
/// `Router::layer` would run after routing, too late to change the route).
pub type OnLambda = MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

/// The router as the functions' `main.rs` serve it on Lambda.
pub fn on_lambda(router: Router) -> OnLambda {
    MapRequest::new(router, for_router::<lambda_http::Body>)
}

/// The request as the router expects it: without the stage, with the
/// caller's address.
pub fn for_router<B>(req: Request<B>) -> Request<B> {
    with_source(without_stage(req))
}

/// The caller's address as API Gateway saw it (the TCP peer of the
/// connection it accepted, not a header a caller could set).
pub fn source_ip<B>(req: &Request<B>) -> Option<IpAddr> {
    let ip = match req.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.as_deref(),
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.as_deref(),
        _ => None,
    }?;
    ip.trim().parse().ok()
}

/// The request with its caller's address as `ConnectInfo<SocketAddr>`,
/// when the event has one and no address is there yet.
pub fn with_source<B>(mut req: Request<B>) -> Request<B> {
    if req.extensions().get::<ConnectInfo<SocketAddr>>().is_some() {
        return req;
    }
    if let Some(ip) = source_ip(&req) {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    req
}

/// Serves `router` on the Lambda runtime (see [`on_lambda`]).
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(on_lambda(router)).await
}

/// The stage the event came through, when it is a path segment.
fn stage<B>(req: &Request<B>) -> Option<&str> {
    let stage = match req.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV1(c) => c.stage.as_deref(),
        RequestContext::ApiGatewayV2(c) => c.stage.as_deref(),
        _ => None,
    }?;
    (!stage.is_empty() && stage != "$default").then_some(stage)
}

/// The request with `/{stage}` taken off the front of its path.
pub fn without_stage<B>(mut req: Request<B>) -> Request<B> {
    let Some(stage) = stage(&req) else {
        return req;
    };
    let path = req.uri().path();
    let Some(rest) = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage))
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        return req;
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        // The pieces came from a valid URI: keep the request as it was.
        Err(_) => return req,
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayProxyRequestContext, ApiGatewayV2httpRequestContext,
    };

    fn request(uri: &str, context: Option<RequestContext>) -> Request<Body> {
        let mut req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        if let Some(c) = context {
            req.extensions_mut().insert(c);
        }
        req
    }

    fn rest(stage: &str) -> Option<RequestContext> {
        let mut c = ApiGatewayProxyRequestContext::default();
        c.stage = Some(stage.to_owned());
        Some(RequestContext::ApiGatewayV1(c))
    }

    fn http_api(stage: &str) -> Option<RequestContext> {
        let mut c = ApiGatewayV2httpRequestContext::default();
        c.stage = Some(stage.to_owned());
        Some(RequestContext::ApiGatewayV2(c))
    }

    fn path(req: Request<Body>) -> String {
        without_stage(req).uri().to_string()
    }

    #[test]
    fn a_rest_stage_is_taken_off_with_the_query_kept() {
        assert_eq!(
            path(request(
                "https://h.example/prod/fhir/Group?_count=2",
                rest("prod")
            )),
            "https://h.example/fhir/Group?_count=2"
        );
        assert_eq!(path(request("/prod", rest("prod"))), "/");
    }

    #[test]
    fn only_a_whole_leading_segment_naming_the_stage_is_taken() {
        assert_eq!(
            path(request("/production/hl7", rest("prod"))),
            "/production/hl7"
        );
        assert_eq!(path(request("/hl7/prod", rest("prod"))), "/hl7/prod");
    }

    #[test]
    fn the_source_ip_of_either_payload_becomes_the_peer_address() {
        let peer = |req: Request<Body>| {
            for_router(req)
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0)
        };
        let mut v1 = ApiGatewayProxyRequestContext::default();
        v1.identity.source_ip = Some("192.0.2.10".into());
        v1.stage = Some("prod".into());
        let req = request("/prod/auth/token", Some(RequestContext::ApiGatewayV1(v1)));
        assert_eq!(peer(req), Some("192.0.2.10:0".parse().unwrap()));
        let mut v2 = ApiGatewayV2httpRequestContext::default();
        v2.http.source_ip = Some("2001:db8::7".into());
        let req = request("/auth/token", Some(RequestContext::ApiGatewayV2(v2)));
        assert_eq!(peer(req), Some("[2001:db8::7]:0".parse().unwrap()));
        // No context, or an address that is not one: none is made up.
        assert_eq!(peer(request("/auth/token", None)), None);
        let mut bad = ApiGatewayV2httpRequestContext::default();
        bad.http.source_ip = Some("not an address".into());
        let req = request("/auth/token", Some(RequestContext::ApiGatewayV2(bad)));
        assert_eq!(peer(req), None);
    }

    #[test]
    fn default_stages_function_urls_and_other_hosts_are_left_alone() {
        assert_eq!(path(request("/hl7", http_api("$default"))), "/hl7");
        assert_eq!(path(request("/beta/hl7", http_api("beta"))), "/hl7");
        assert_eq!(path(request("/prod/hl7", None)), "/prod/hl7");
    }
}
