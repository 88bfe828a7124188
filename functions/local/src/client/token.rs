//! `iisbulk jwks` and `iisbulk token`: a registered client's key as the
//! JWKS to register, and an access token from a running IIS (signed client
//! assertion, SMART Backend Services), as the other client tools get one.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use registry::smart::jose::{JwkSet, SigningKey};
use registry::smart::ASSERTION_TYPE;

#[derive(Debug, Args)]
pub struct JwksArgs {
    /// A PKCS#8 private key (RSA 2048+ for RS384, or EC P-384 for ES384).
    #[arg(long)]
    key: PathBuf,
    /// The key id (default: the key's RFC 7638 thumbprint).
    #[arg(long)]
    kid: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The IIS's public base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long)]
    client_id: String,
    /// The client's PKCS#8 private key.
    #[arg(long)]
    key: PathBuf,
    /// The key id registered for it (default: its RFC 7638 thumbprint).
    #[arg(long)]
    kid: Option<String>,
    #[arg(long, default_value = "system/*.rs")]
    scope: String,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("iisbulk: {e}");
    ExitCode::from(1)
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn signing_key(path: &PathBuf) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// Prints the public JWKS of a private key, ready for `client add --jwks`.
pub fn run_jwks(args: &JwksArgs) -> ExitCode {
    let key = match signing_key(&args.key) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let kid = args.kid.clone().unwrap_or_else(|| key.thumbprint());
    let set = JwkSet {
        keys: vec![key.public_jwk(&kid)],
    };
    match serde_json::to_string_pretty(&set) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Signs a client assertion and exchanges it for an access token.
pub async fn run_token(args: TokenArgs) -> ExitCode {
    match token(args).await {
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The token endpoint's JSON answer.
pub(crate) async fn token(args: TokenArgs) -> Result<String, String> {
    let key = signing_key(&args.key)?;
    let kid = args.kid.clone().unwrap_or_else(|| key.thumbprint());
    let token_url = format!("{}/auth/token", args.url.trim_end_matches('/'));
    let now = iz::Clock::now().unix_seconds;
    let claims = serde_json::json!({
        "iss": args.client_id, "sub": args.client_id, "aud": token_url,
        "exp": now + 240, "jti": uuid::Uuid::new_v4().simple().to_string(),
    });
    let assertion = key.sign(&kid, &serde_json::json!({}), &claims)?;
    let response = reqwest::Client::new()
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
            ("scope", args.scope.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("POST {token_url}: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("POST {token_url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "POST {token_url}: HTTP {}: {body}",
            status.as_u16()
        ));
    }
    Ok(body)
}

/// An access token for `client_id` (all its scopes), for our own tools.
pub(crate) async fn token_with(
    url: &str,
    client_id: &str,
    key: &std::path::Path,
) -> Result<String, String> {
    access_token(TokenArgs {
        url: url.to_owned(),
        client_id: client_id.to_owned(),
        key: key.to_path_buf(),
        kid: None,
        scope: "system/*.rs".into(),
    })
    .await
}

/// The `access_token` of the token endpoint's answer.
pub(crate) async fn access_token(args: TokenArgs) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(&token(args).await?).map_err(|e| format!("token answer: {e}"))?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the token answer has no access_token".into())
}
