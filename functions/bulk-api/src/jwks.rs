//! Reading a client's registered JWKS URL over HTTPS.

use std::time::Duration;

use async_trait::async_trait;
use registry::smart::JwksSource;

/// A JWKS is a few keys; anything larger is not one.
const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct HttpJwks {
    client: reqwest::Client,
}

impl HttpJwks {
    pub fn new() -> Result<Self, String> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map(|client| HttpJwks { client })
            .map_err(|e| format!("HTTP client: {e}"))
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self, url: &str) -> Result<String, String> {
        let response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_JWKS_BYTES)
        {
            return Err(format!("GET {url}: larger than {MAX_JWKS_BYTES} bytes"));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("GET {url}: larger than {MAX_JWKS_BYTES} bytes"));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("GET {url}: not UTF-8"))
    }
}
