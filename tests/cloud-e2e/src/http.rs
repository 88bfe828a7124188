//! HTTP functions invoked as Lambda invokes them behind an API Gateway HTTP
//! API: the payload format 2.0 event as JSON, deserialised into
//! lambda_http's request type, handed to the router through
//! [`lambda_http::Adapter`] (what `lambda_http::run` wraps the router in),
//! and the answer serialised to the JSON Lambda returns to API Gateway.

use std::collections::BTreeMap;

use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::{Service, ServiceExt};
use lambda_http::{Adapter, Context, IntoResponse, LambdaEvent};
use serde_json::{json, Value};

/// The host API Gateway is reached on in these tests.
pub const API_HOST: &str = "iis.e2e.example";

/// An API Gateway HTTP API (payload format 2.0) event, as the `$default`
/// route of the template's API delivers it. The body is always sent
/// base64-encoded (API Gateway does so for non-text media types such as
/// `application/hl7-v2`).
pub fn apigw_v2_event(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut h = serde_json::Map::new();
    h.insert("host".into(), json!(API_HOST));
    // API Gateway hands cookies over in their own list, not as a header.
    let mut cookies = Vec::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if k == "cookie" {
            cookies.extend(v.split(';').map(|c| json!(c.trim())));
            continue;
        }
        // API Gateway joins repeated headers with commas.
        let joined = match h.get(&k).and_then(Value::as_str) {
            Some(prev) => format!("{prev},{v}"),
            None => (*v).to_owned(),
        };
        h.insert(k, json!(joined));
    }
    let mut query_parameters = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query_parameters.insert(k.to_owned(), json!(v));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "e2eapi",
            "domainName": API_HOST,
            "domainPrefix": "iis",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "cloud-e2e"
            },
            "requestId": "e2e-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jun/2025:12:00:00 +0000",
            "timeEpoch": 1_748_779_200_000_i64
        },
        "isBase64Encoded": !body.is_empty(),
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query_parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(query_parameters);
    }
    if !body.is_empty() {
        event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    }
    event
}

/// What API Gateway gets back from the function.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// `Set-Cookie` values: payload 2.0 answers carry them in a list of
    /// their own (`cookies`), not among the headers.
    pub cookies: Vec<String>,
    pub body: Vec<u8>,
    /// The JSON the function returned (body elided).
    pub raw: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Invokes `service` (a function's router) with `event` as the Lambda
/// runtime would: the event JSON through lambda_http's deserializer, the
/// adapter, and the answer through its serializer.
pub async fn invoke<S, R, E>(service: S, event: &Value) -> Result<Answer, String>
where
    S: Service<lambda_http::Request, Response = R, Error = E>,
    S::Future: Send + 'static,
    R: IntoResponse + 'static,
    E: std::fmt::Debug,
{
    let text = serde_json::to_string(event).map_err(|e| e.to_string())?;
    let request: LambdaRequest =
        serde_json::from_str(&text).map_err(|e| format!("lambda_http refused the event: {e}"))?;
    if !matches!(request, LambdaRequest::ApiGatewayV2(_)) {
        return Err("lambda_http did not read the event as API Gateway HTTP API 2.0".into());
    }
    invoke_request(service, request).await
}

/// Which front door lambda_http read an event as.
pub fn event_kind(request: &LambdaRequest) -> &'static str {
    match request {
        LambdaRequest::ApiGatewayV1(_) => "API Gateway REST API (1.0)",
        LambdaRequest::ApiGatewayV2(_) => "API Gateway HTTP API (2.0) or Function URL",
        _ => "another event source",
    }
}

/// Invokes `service` with an already parsed event of any front door.
pub async fn invoke_request<S, R, E>(service: S, request: LambdaRequest) -> Result<Answer, String>
where
    S: Service<lambda_http::Request, Response = R, Error = E>,
    S::Future: Send + 'static,
    R: IntoResponse + 'static,
    E: std::fmt::Debug,
{
    let mut adapter: Adapter<'static, R, S> = Adapter::from(service);
    let answer = adapter
        .ready()
        .await
        .map_err(|e| format!("{e:?}"))?
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .map_err(|e| format!("the function failed: {e:?}"))?;
    let raw = serde_json::to_value(&answer).map_err(|e| e.to_string())?;
    let status = raw["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or(format!("no statusCode in {raw}"))?;
    let mut headers = BTreeMap::new();
    if let Some(h) = raw["headers"].as_object() {
        for (k, v) in h {
            headers.insert(
                k.to_ascii_lowercase(),
                v.as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    // REST API (1.0) answers carry their headers as lists.
    if let Some(h) = raw["multiValueHeaders"].as_object() {
        for (k, v) in h {
            let joined = v
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            headers.entry(k.to_ascii_lowercase()).or_insert(joined);
        }
    }
    let cookies = raw["cookies"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let body = match raw["body"].as_str() {
        None => Vec::new(),
        Some(b) if raw["isBase64Encoded"] == json!(true) => {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("isBase64Encoded but the body is not base64: {e}"))?
        }
        Some(b) => b.as_bytes().to_vec(),
    };
    let mut raw = raw;
    if let Some(o) = raw.as_object_mut() {
        o.remove("body");
    }
    Ok(Answer {
        status,
        headers,
        cookies,
        body,
        raw,
    })
}
