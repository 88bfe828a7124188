//! The HTTP client the AWS SDK clients send their requests with: HTTP/1.1
//! over rustls (`ring`) on hyper, with connection pooling.
//!
//! DynamoDB and S3 speak HTTP/1.1, and smithy's default client also links an
//! HTTP/2 stack and proxy support this project never uses (about 0.8 MB of
//! every Lambda bootstrap). The system's root certificates are read on the
//! first connection rather than at start-up, which keeps them out of a cold
//! start that makes no request.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::OnceCell;

/// How long an unused pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

type Pool = Client<HttpsConnector<TcpConnector>, SdkBody>;
type Timeouts = (Option<Duration>, Option<Duration>);

/// The SDK's HTTP client (see the module documentation).
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(Http1Client::default())
}

/// One connector (and so one connection pool) per distinct pair of
/// timeouts the SDK asks for, which in this project means one.
#[derive(Debug, Default)]
struct Http1Client {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let make = || {
            SharedHttpConnector::new(Http1Connector {
                pool: Arc::new(OnceCell::new()),
                connect_timeout: key.0,
                read_timeout: key.1,
            })
        };
        match self.connectors.lock() {
            Ok(mut connectors) => connectors.entry(key).or_insert_with(make).clone(),
            // A panic elsewhere poisoned the cache: work uncached.
            Err(_) => make(),
        }
    }
}

#[derive(Debug)]
struct Http1Connector {
    pool: Arc<OnceCell<Pool>>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let pool = self.pool.clone();
        let connect_timeout = self.connect_timeout;
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let pool = pool.get_or_try_init(|| build_pool(connect_timeout)).await?;
            let sent = pool.request(request);
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| {
                    ConnectorError::timeout(
                        format!("no response within the read timeout of {limit:?}").into(),
                    )
                })?,
                None => sent.await,
            }
            .map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

async fn build_pool(connect_timeout: Option<Duration>) -> Result<Pool, ConnectorError> {
    // Reading the certificate store is file I/O.
    // The provider is named rather than taken from the process default,
    // which rustls refuses to choose when two are compiled in.
    let tls = tokio::task::spawn_blocking(|| {
        HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
    })
    .await
    .map_err(|e| ConnectorError::other(e.into(), None))?
    .map_err(|e| {
        ConnectorError::other(
            format!("no root certificates to check AWS endpoints with: {e}").into(),
            None,
        )
    })?;
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout);
    let connector = tls.https_or_http().enable_http1().wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new())
        // Endpoints close idle keep-alive connections on their own schedule
        // (S3's is short); dropping ours first avoids sending on a socket
        // the other end is closing.
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector))
}

/// Network failures are transient (the SDK retries them with backoff);
/// a request the SDK built wrongly is the caller's.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = {
        let mut source = error.source();
        let mut found = false;
        while let Some(e) = source {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                found = true;
                break;
            }
            source = e.source();
        }
        found
    };
    let user = error
        .source()
        .and_then(|e| e.downcast_ref::<hyper::Error>())
        .is_some_and(hyper::Error::is_user);
    if timed_out {
        ConnectorError::timeout(error.into())
    } else if user {
        ConnectorError::user(error.into())
    } else {
        ConnectorError::io(error.into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn connector(read_timeout: Option<Duration>) -> SharedHttpConnector {
        let mut settings = HttpConnectorSettings::builder().connect_timeout(Duration::from_secs(1));
        if let Some(t) = read_timeout {
            settings = settings.read_timeout(t);
        }
        let components = RuntimeComponentsBuilder::for_tests().build().unwrap();
        client().http_connector(&settings.build(), &components)
    }

    fn get(url: &str) -> HttpRequest {
        HttpRequest::try_from(
            http::Request::get(url)
                .body(SdkBody::from("payload"))
                .unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_request_gets_its_response() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            let seen = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(seen.starts_with("GET /x HTTP/1.1"), "{seen}");
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let response = connector(None)
            .call(get(&format!("http://{addr}/x")))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.body().bytes(), None); // streamed, not buffered
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transient_io_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = connector(None)
            .call(get(&format!("http://{addr}/x")))
            .await
            .unwrap_err();
        assert!(err.is_io(), "{err:?}");
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let err = connector(Some(Duration::from_millis(200)))
            .call(get(&format!("http://{addr}/x")))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }

    #[test]
    fn connectors_are_shared_per_timeouts() {
        let http = Http1Client::default();
        let components = RuntimeComponentsBuilder::for_tests().build().unwrap();
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(1))
            .build();
        let _a = http.http_connector(&settings, &components);
        let _b = http.http_connector(&settings, &components);
        assert_eq!(http.connectors.lock().unwrap().len(), 1);
    }
}
