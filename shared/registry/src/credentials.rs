//! Password checking for Authorized Users.
//!
//! Passwords are stored only as Argon2id hashes (slow on purpose, so a stolen
//! table is expensive to crack). That slowness (tens of milliseconds) cannot
//! be paid on every message of a busy sender, so a successful check is
//! remembered for a short time under a keyed hash of (username, password):
//! the password itself is never kept in memory, and a changed password takes
//! effect within [`Credentials::CACHE_SECONDS`].
//!
//! Each Argon2 check needs 19 MiB and a core for tens of milliseconds, so
//! checks run on the blocking pool, at most [`Credentials::PARALLEL_CHECKS`]
//! at a time, and a burst of requests with the same credentials (a sender
//! opening many connections at once) waits for the first check instead of
//! repeating it.

use crate::authorized_user::{AuError, AuthorizedUser, AuthorizedUsers};
use crate::keys::hex;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Argon2id with the library's defaults (19 MiB, 2 passes, 1 lane: OWASP's
/// minimum recommendation) as a PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    match Argon2::default().hash_password(password.as_bytes(), &salt) {
        Ok(h) => h.to_string(),
        // Only reachable with an invalid salt or parameters, which are fixed here.
        Err(e) => panic!("argon2 with default parameters failed: {e}"),
    }
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The hash of a random password nobody knows, on the blocking pool: what a
/// login with an unknown username is checked against, so that it takes as
/// long as a wrong password.
pub(crate) async fn decoy_hash() -> String {
    let mut random = [0u8; 16];
    OsRng.fill_bytes(&mut random);
    let password = hex(&random);
    match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(hash) => hash,
        // The blocking pool is shutting down: hash here rather than answer
        // an unknown username faster than a wrong password.
        Err(_) => {
            OsRng.fill_bytes(&mut random);
            hash_password(&hex(&random))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown username or wrong password (deliberately not told apart).
    BadCredentials,
    Store(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::BadCredentials => write!(f, "invalid username or password"),
            AuthError::Store(e) => write!(f, "could not check credentials: {e}"),
        }
    }
}

impl std::error::Error for AuthError {}

struct Remembered {
    au: AuthorizedUser,
    until: Instant,
}

/// Authenticates senders against the Authorized Users.
#[derive(Clone)]
pub struct Credentials {
    users: AuthorizedUsers,
    /// Random per process: cache keys are useless outside it.
    secret: [u8; 32],
    cache: Arc<Mutex<HashMap<[u8; 32], Remembered>>>,
    checks: Arc<tokio::sync::Semaphore>,
    /// A real hash to verify against when the username is unknown, so the
    /// answer takes as long as for a wrong password. Computing it costs an
    /// Argon2 hash (tens of milliseconds), which would otherwise sit in every
    /// cold start: it is computed in the background from construction and
    /// awaited by the first unknown-username check that needs it.
    decoy: Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials")
    }
}

/// The username and password of an HTTP Basic `Authorization` header value
/// (RFC 7617), or why not, in words for the client.
pub fn parse_basic(value: &str) -> Result<(String, String), &'static str> {
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or("the Authorization header must be 'Basic <base64 of username:password>'")?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("only HTTP Basic authentication is supported here");
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "the Basic credentials are not valid base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "the Basic credentials are not UTF-8")?;
    let (user, password) = text
        .split_once(':')
        .ok_or("the Basic credentials must be 'username:password'")?;
    Ok((user.to_string(), password.to_string()))
}

impl Credentials {
    pub const CACHE_SECONDS: u64 = 60;
    pub const PARALLEL_CHECKS: usize = 2;
    const CACHE_MAX: usize = 10_000;

    pub fn new(users: AuthorizedUsers) -> Self {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let credentials = Credentials {
            users,
            secret,
            cache: Arc::new(Mutex::new(HashMap::new())),
            checks: Arc::new(tokio::sync::Semaphore::new(Self::PARALLEL_CHECKS)),
            decoy: Arc::new(tokio::sync::OnceCell::new()),
        };
        // Outside a runtime (a synchronous caller) the decoy is simply
        // computed on first use.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let decoy = credentials.decoy.clone();
            runtime.spawn(async move {
                decoy.get_or_init(decoy_hash).await;
            });
        }
        credentials
    }

    async fn decoy(&self) -> String {
        self.decoy.get_or_init(decoy_hash).await.clone()
    }

    fn cache_key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update((username.len() as u64).to_be_bytes());
        h.update(username.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn remembered(&self, key: &[u8; 32]) -> Option<AuthorizedUser> {
        let now = Instant::now();
        let cache = self.cache.lock().ok()?;
        cache
            .get(key)
            .filter(|r| r.until > now)
            .map(|r| r.au.clone())
    }

    /// The Authorized User these credentials belong to.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<AuthorizedUser, AuthError> {
        let key = self.cache_key(username, password);
        if let Some(au) = self.remembered(&key) {
            return Ok(au);
        }
        let _permit = self
            .checks
            .acquire()
            .await
            .map_err(|_| AuthError::Store("credential checks are shut down".into()))?;
        // Someone with the same credentials may have finished while we waited.
        if let Some(au) = self.remembered(&key) {
            return Ok(au);
        }
        let now = Instant::now();
        let au = self
            .users
            .by_username(username)
            .await
            .map_err(|e| match e {
                AuError::Store(s) => AuthError::Store(s.to_string()),
                other => AuthError::Store(other.to_string()),
            })?;
        let hash = match &au {
            Some(au) => au.password_hash.clone(),
            None => self.decoy().await,
        };
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        let Some(au) = au.filter(|_| ok) else {
            return Err(AuthError::BadCredentials);
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= Self::CACHE_MAX {
                cache.retain(|_, r| r.until > now);
                if cache.len() >= Self::CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(
                key,
                Remembered {
                    au: au.clone(),
                    until: now + Duration::from_secs(Self::CACHE_SECONDS),
                },
            );
        }
        Ok(au)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_user::AuthorizedUsers;
    use std::sync::Arc;

    fn users() -> (tempfile::TempDir, AuthorizedUsers) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            store::embedded::EmbeddedStore::open(dir.path().join("iis.redb")).expect("store");
        (dir, AuthorizedUsers::new(Arc::new(store)))
    }

    #[tokio::test]
    async fn the_decoy_is_hashed_in_the_background_from_construction() {
        let (_dir, users) = users();
        let creds = Credentials::new(users.clone());
        for _ in 0..200 {
            if creds.decoy.initialized() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let decoy = creds.decoy.get().expect("decoy computed without any login");
        assert!(decoy.starts_with("$argon2id$"));
        // Every process has its own, unguessable decoy.
        assert_ne!(decoy, &Credentials::new(users).decoy().await);
    }

    #[test]
    fn outside_a_runtime_the_decoy_waits_for_first_use() {
        let (_dir, users) = users();
        let creds = Credentials::new(users);
        assert!(!creds.decoy.initialized());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(
            runtime.block_on(creds.authenticate("nobody", "whatever password")),
            Err(AuthError::BadCredentials)
        );
        assert!(creds.decoy.initialized());
    }
}
