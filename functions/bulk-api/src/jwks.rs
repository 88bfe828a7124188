//! Reading a client's registered JWKS URL over HTTPS.
//!
//! A plain HTTP/1.1 GET on hyper with rustls (the same stack the AWS SDK
//! links, so the Lambda bootstrap carries no second HTTP client), with the
//! system's root certificates loaded on the first fetch rather than at
//! start-up: most cold starts never fetch a JWKS.

use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use registry::smart::JwksSource;
use tokio::sync::OnceCell;

/// A JWKS is a few keys; anything larger is not one.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// The whole fetch, connection to last byte.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Clone, Debug, Default)]
pub struct HttpJwks {
    client: std::sync::Arc<OnceCell<HttpsClient>>,
}

impl HttpJwks {
    pub fn new() -> Result<Self, String> {
        Ok(HttpJwks::default())
    }

    async fn client(&self) -> Result<&HttpsClient, String> {
        self.client
            .get_or_try_init(|| async {
                // Reading the certificate store is file I/O.
                let connector = tokio::task::spawn_blocking(|| {
                    HttpsConnectorBuilder::new()
                        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                        .map(|b| b.https_or_http().enable_http1().build())
                })
                .await
                .map_err(|e| format!("loading the root certificates: {e}"))?
                .map_err(|e| format!("no root certificates to check a JWKS URL with: {e}"))?;
                Ok(Client::builder(TokioExecutor::new()).build(connector))
            })
            .await
    }

    async fn get(&self, url: &str) -> Result<String, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("GET {url}: {e}"))?;
        let request = hyper::Request::get(uri)
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| format!("GET {url}: {e}"))?;
        let response = self
            .client()
            .await?
            .request(request)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        // Redirects are not followed: the registered URL is the one trusted.
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status().as_u16()));
        }
        let too_large = || format!("GET {url}: larger than {MAX_JWKS_BYTES} bytes");
        let declared = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err(too_large());
        }
        // Bounded while reading, so a chunked response cannot grow past it.
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    format!("GET {url}: {e}")
                }
            })?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| format!("GET {url}: not UTF-8"))
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self, url: &str) -> Result<String, String> {
        tokio::time::timeout(FETCH_TIMEOUT, self.get(url))
            .await
            .map_err(|_| format!("GET {url}: no answer within {FETCH_TIMEOUT:?}"))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP server answering `response` verbatim.
    async fn serve_once(response: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            }
        });
        format!("http://{addr}/jwks.json")
    }

    #[tokio::test]
    async fn a_jwks_is_read() {
        let body = r#"{"keys":[]}"#;
        let url = serve_once(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
        .await;
        assert_eq!(HttpJwks::new().unwrap().fetch(&url).await.unwrap(), body);
    }

    #[tokio::test]
    async fn redirects_and_errors_are_not_followed() {
        let url = serve_once(
            b"HTTP/1.1 302 Found\r\nlocation: http://example.org/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .to_vec(),
        )
        .await;
        let err = HttpJwks::new().unwrap().fetch(&url).await.unwrap_err();
        assert!(err.ends_with("HTTP 302"), "{err}");
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused_declared_or_chunked() {
        let declared = serve_once(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                MAX_JWKS_BYTES + 1
            )
            .into_bytes(),
        )
        .await;
        let err = HttpJwks::new().unwrap().fetch(&declared).await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");

        let chunk = "x".repeat(16 * 1024);
        let mut chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
        for _ in 0..5 {
            chunked.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let url = serve_once(chunked).await;
        let err = HttpJwks::new().unwrap().fetch(&url).await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_url_is_named() {
        let err = HttpJwks::new()
            .unwrap()
            .fetch("not a url")
            .await
            .unwrap_err();
        assert!(err.starts_with("GET not a url"), "{err}");
    }
}
