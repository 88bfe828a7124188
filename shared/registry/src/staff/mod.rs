//! IIS staff: the people who run the registry from the console (issue 25),
//! apart from the Authorized Users who send to it.
//!
//! - Each staff member has one role: a *reviewer* works the duplicate
//!   queue, an *administrator* manages Authorized Users, clients and Groups,
//!   an *auditor* reads the audit trail.
//! - Passwords are stored as Argon2id hashes only; administrators also need
//!   a TOTP code (RFC 6238) from an authenticator app enrolled when the
//!   account is made.
//! - A login opens a session: a random token (the cookie's value) of which
//!   only a hash is stored, with its own CSRF token, an idle and an absolute
//!   lifetime. A session ends when its staff member's password changes or
//!   the account is removed, because it names the password generation it
//!   was opened under.
//! - Repeated failed logins lock the account for a while: the console is for
//!   a jurisdiction's own staff, whose usernames are not published.

pub mod totp;

use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError};

use crate::attempts::FailedAttempts;

use crate::credentials::{decoy_hash, hash_password, verify_password};
use crate::keys;

/// What a staff member may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    /// Works the possible-duplicate queue: merges and keeps apart.
    Reviewer,
    /// Authorized Users, facilities, logins, SMART clients, Groups.
    Administrator,
    /// Reads the audit trail.
    Auditor,
}

impl StaffRole {
    pub const ALL: [StaffRole; 3] = [
        StaffRole::Reviewer,
        StaffRole::Administrator,
        StaffRole::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Reviewer => "reviewer",
            StaffRole::Administrator => "administrator",
            StaffRole::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Result<StaffRole, StaffError> {
        StaffRole::ALL
            .into_iter()
            .find(|r| r.as_str() == text.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                StaffError::Invalid(format!(
                    "unknown role '{text}': one of reviewer, administrator, auditor"
                ))
            })
    }

    /// Whether logins need a TOTP code besides the password.
    pub fn needs_second_factor(self) -> bool {
        self == StaffRole::Administrator
    }
}

impl std::fmt::Display for StaffRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff account as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct StaffAccount {
    pub username: String,
    pub role: StaffRole,
    pub password_hash: String,
    /// The TOTP secret (base32), for roles that need a second factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// The last TOTP step accepted: a code is never accepted twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_last_step: Option<i64>,
    /// Bumped by every password change: sessions opened under an earlier
    /// generation are over.
    pub password_generation: u64,
    pub created_at: i64,
    #[serde(skip)]
    pub version: u64,
}

impl std::fmt::Debug for StaffAccount {
    // Never the hash or the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffAccount")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("second_factor", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// A staff member to add.
#[derive(Clone)]
pub struct NewStaff {
    pub username: String,
    pub role: StaffRole,
    pub password: String,
}

impl std::fmt::Debug for NewStaff {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewStaff")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A new account, and what its holder enrols in an authenticator app (only
/// for roles that need a second factor; shown once, never stored in clear
/// elsewhere).
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub account: StaffAccount,
    pub totp_uri: Option<String>,
}

/// An open console session.
#[derive(Clone, Serialize, Deserialize)]
pub struct StaffSession {
    pub username: String,
    pub role: StaffRole,
    /// Sent back by the console on every state-changing request (a header);
    /// a cross-site page cannot read it.
    pub csrf_token: String,
    pub password_generation: u64,
    pub created_at: i64,
    pub last_seen: i64,
}

impl std::fmt::Debug for StaffSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSession")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl StaffSession {
    /// Whether `presented` is this session's CSRF token (compared in
    /// constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let (a, b) = (self.csrf_token.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffError {
    /// Bad input, in words for the person who typed it.
    Invalid(String),
    UsernameTaken(String),
    NotFound(String),
    /// Unknown username, wrong password or wrong code (not told apart).
    BadLogin,
    /// The password was right, and this role also needs a TOTP code.
    SecondFactorRequired,
    /// Too many failed logins: try again after this many seconds.
    Locked {
        retry_after: i64,
    },
    Store(String),
}

impl std::fmt::Display for StaffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaffError::Invalid(m) => f.write_str(m),
            StaffError::UsernameTaken(u) => write!(f, "staff username '{u}' is already in use"),
            StaffError::NotFound(u) => write!(f, "no staff member '{u}'"),
            StaffError::BadLogin => f.write_str("invalid username, password or code"),
            StaffError::SecondFactorRequired => {
                f.write_str("this account also needs the code from its authenticator app")
            }
            StaffError::Locked { retry_after } => write!(
                f,
                "too many failed logins for this account: try again in {retry_after} seconds"
            ),
            StaffError::Store(e) => write!(f, "staff accounts could not be read or written: {e}"),
        }
    }
}

impl std::error::Error for StaffError {}

impl From<StoreError> for StaffError {
    fn from(e: StoreError) -> Self {
        StaffError::Store(e.to_string())
    }
}

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Argon2 hashes whatever it is given: a cap keeps a login cheap to refuse.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Staff accounts and their console sessions.
#[derive(Clone)]
pub struct Staff {
    store: Arc<dyn ItemStore>,
    /// The issuer an authenticator app shows beside the code.
    pub issuer: String,
    /// A session unused this long is over.
    pub idle_seconds: i64,
    /// A session is over this long after login, used or not.
    pub absolute_seconds: i64,
    /// Failed logins within [`Staff::failure_window`] that lock an account.
    pub max_failures: usize,
    pub failure_window: i64,
    decoy: Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staff")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Only this hash of a session token is stored: a copy of the table opens
/// no session.
fn token_hash(token: &str) -> String {
    keys::hex(&Sha256::digest(token.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    keys::hex(&bytes)
}

fn check_username(username: &str) -> Result<(), StaffError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StaffError::Invalid(format!(
            "staff username '{username}' must be 1 to 64 letters, digits or . _ - @"
        )))
    }
}

fn check_password(username: &str, password: &str) -> Result<(), StaffError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StaffError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(StaffError::Invalid(format!(
            "the password must have at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(StaffError::Invalid(
            "the password must not be the username".into(),
        ));
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StaffError> {
    serde_json::to_vec(value).map_err(|e| StaffError::Store(e.to_string()))
}

fn decode_account(item: &Item) -> Result<StaffAccount, StaffError> {
    let mut account: StaffAccount = serde_json::from_slice(&item.data)
        .map_err(|e| StaffError::Store(format!("staff account item: {e}")))?;
    account.version = item.version;
    Ok(account)
}

async fn verify_off_thread(password: &str, hash: String) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

impl Staff {
    pub const DEFAULT_IDLE_SECONDS: i64 = 30 * 60;
    pub const DEFAULT_ABSOLUTE_SECONDS: i64 = 12 * 3600;
    pub const DEFAULT_MAX_FAILURES: usize = 5;
    pub const DEFAULT_FAILURE_WINDOW: i64 = 15 * 60;
    /// `last_seen` is written back at most this often (a session's every
    /// request would otherwise be a write).
    const TOUCH_SECONDS: i64 = 60;

    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Staff {
            store,
            issuer: "iisbulk IIS console".into(),
            idle_seconds: Self::DEFAULT_IDLE_SECONDS,
            absolute_seconds: Self::DEFAULT_ABSOLUTE_SECONDS,
            max_failures: Self::DEFAULT_MAX_FAILURES,
            failure_window: Self::DEFAULT_FAILURE_WINDOW,
            decoy: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Adds a staff member; an administrator gets a TOTP secret to enrol.
    pub async fn add(&self, new: NewStaff, now: i64) -> Result<Enrolled, StaffError> {
        check_username(&new.username)?;
        check_password(&new.username, &new.password)?;
        let secret = new.role.needs_second_factor().then(|| {
            let mut bytes = [0u8; totp::SECRET_BYTES];
            OsRng.fill_bytes(&mut bytes);
            bytes
        });
        let password = new.password.clone();
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| StaffError::Store(format!("password hashing stopped: {e}")))?;
        let mut account = StaffAccount {
            username: new.username.clone(),
            role: new.role,
            password_hash,
            totp_secret: secret.map(|s| totp::base32(&s)),
            totp_last_step: None,
            password_generation: 1,
            created_at: now,
            version: 0,
        };
        let item = Item::new(keys::staff(&account.username), encode(&account)?);
        account.version = self
            .store
            .put(item, Condition::Absent)
            .await
            .map_err(|e| match e {
                StoreError::ConditionFailed { .. } => {
                    StaffError::UsernameTaken(new.username.clone())
                }
                other => other.into(),
            })?;
        let totp_uri = secret.map(|s| totp::otpauth_uri(&self.issuer, &account.username, &s));
        Ok(Enrolled { account, totp_uri })
    }

    pub async fn get(&self, username: &str) -> Result<Option<StaffAccount>, StaffError> {
        if check_username(username).is_err() {
            return Ok(None);
        }
        match self.store.get(&keys::staff(username)).await? {
            Some(item) => Ok(Some(decode_account(&item)?)),
            None => Ok(None),
        }
    }

    /// Every staff account, by username.
    pub async fn list(&self) -> Result<Vec<StaffAccount>, StaffError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let mut opts = QueryOpts::new(Index::Table, SkRange::All);
            opts.cursor = cursor;
            let page = self.store.query(keys::STAFF_PK, opts).await?;
            for item in &page.items {
                out.push(decode_account(item)?);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// Removes a staff member; their sessions end with the account.
    pub async fn remove(&self, username: &str) -> Result<(), StaffError> {
        if self.get(username).await?.is_none() {
            return Err(StaffError::NotFound(username.to_owned()));
        }
        self.store
            .delete(&keys::staff(username), Condition::Exists)
            .await
            .map_err(|e| match e {
                StoreError::ConditionFailed { .. } => StaffError::NotFound(username.to_owned()),
                other => other.into(),
            })
    }

    /// Sets a new password; every open session of this staff member ends.
    pub async fn change_password(&self, username: &str, password: &str) -> Result<(), StaffError> {
        check_password(username, password)?;
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| StaffError::Store(format!("password hashing stopped: {e}")))?;
        self.update(username, |account| {
            account.password_hash = hash.clone();
            account.password_generation += 1;
        })
        .await
    }

    /// A new TOTP secret for an account whose phone was lost (an
    /// administrator's act); the old authenticator stops working.
    pub async fn reset_second_factor(&self, username: &str) -> Result<String, StaffError> {
        let mut bytes = [0u8; totp::SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        let secret = totp::base32(&bytes);
        self.update(username, |account| {
            account.totp_secret = Some(secret.clone());
            account.totp_last_step = None;
        })
        .await?;
        Ok(totp::otpauth_uri(&self.issuer, username, &bytes))
    }

    /// Reads, changes and writes back an account, again if another writer
    /// came between.
    async fn update(
        &self,
        username: &str,
        change: impl Fn(&mut StaffAccount),
    ) -> Result<(), StaffError> {
        for _ in 0..8 {
            let Some(mut account) = self.get(username).await? else {
                return Err(StaffError::NotFound(username.to_owned()));
            };
            let version = account.version;
            change(&mut account);
            let item = Item::new(keys::staff(username), encode(&account)?);
            match self.store.put(item, Condition::Version(version)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StaffError::Store(format!(
            "staff account '{username}' kept changing while being updated"
        )))
    }

    /// Checks a login and opens a session: the token for the cookie and the
    /// session (with its CSRF token).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        now: i64,
    ) -> Result<(String, StaffSession), StaffError> {
        if password.len() > MAX_PASSWORD_BYTES || check_username(username).is_err() {
            return Err(StaffError::BadLogin);
        }
        self.check_not_locked(username, now).await?;
        let account = self.get(username).await?;
        let hash = match &account {
            Some(a) => a.password_hash.clone(),
            // As slow as a wrong password, so timing does not tell which
            // usernames exist.
            None => self.decoy.get_or_init(decoy_hash).await.clone(),
        };
        let password_ok = verify_off_thread(password, hash).await;
        let Some(account) = account.filter(|_| password_ok) else {
            self.record_failure(username, now).await?;
            return Err(StaffError::BadLogin);
        };
        if let Some(secret) = &account.totp_secret {
            let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
                // The password was right: ask for the code (not a failure).
                return Err(StaffError::SecondFactorRequired);
            };
            self.accept_code(&account, secret, code, now).await?;
        }
        let token = random_token();
        let session = StaffSession {
            username: account.username.clone(),
            role: account.role,
            csrf_token: random_token(),
            password_generation: account.password_generation,
            created_at: now,
            last_seen: now,
        };
        self.store
            .put(
                Item::new(keys::staff_session(&token_hash(&token)), encode(&session)?)
                    .with_expiry(now + self.absolute_seconds),
                Condition::Absent,
            )
            .await?;
        Ok((token, session))
    }

    /// Accepts a TOTP code once: a code (or an older one) already used is
    /// refused, so a code seen over a shoulder is worth nothing.
    async fn accept_code(
        &self,
        account: &StaffAccount,
        secret: &str,
        code: &str,
        now: i64,
    ) -> Result<(), StaffError> {
        let bytes = totp::from_base32(secret)
            .ok_or_else(|| StaffError::Store("stored TOTP secret is not base32".into()))?;
        let fresh = totp::verify(&bytes, code, now)
            .filter(|step| account.totp_last_step.is_none_or(|last| *step > last));
        let Some(step) = fresh else {
            self.record_failure(&account.username, now).await?;
            return Err(StaffError::BadLogin);
        };
        let mut updated = account.clone();
        updated.totp_last_step = Some(step);
        let item = Item::new(keys::staff(&account.username), encode(&updated)?);
        match self
            .store
            .put(item, Condition::Version(account.version))
            .await
        {
            Ok(_) => Ok(()),
            // Another login used the account meanwhile (perhaps the same
            // code): this one is refused rather than risk a replay.
            Err(StoreError::ConditionFailed { .. }) => Err(StaffError::BadLogin),
            Err(e) => Err(e.into()),
        }
    }

    /// The session behind a cookie's token, if it is still open: known,
    /// within its idle and absolute lifetimes, its account still there with
    /// the same password generation and role.
    pub async fn session(&self, token: &str, now: i64) -> Result<Option<StaffSession>, StaffError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let key = keys::staff_session(&token_hash(token));
        let Some(item) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let mut session: StaffSession = serde_json::from_slice(&item.data)
            .map_err(|e| StaffError::Store(format!("staff session item: {e}")))?;
        let expired = now - session.last_seen > self.idle_seconds
            || now - session.created_at > self.absolute_seconds;
        let account = self.get(&session.username).await?;
        let current = account.is_some_and(|a| {
            a.password_generation == session.password_generation && a.role == session.role
        });
        if expired || !current {
            let _ = self.store.delete(&key, Condition::None).await;
            return Ok(None);
        }
        if now - session.last_seen >= Self::TOUCH_SECONDS {
            session.last_seen = now;
            // A lost race only means another request touched it first.
            let _ = self
                .store
                .put(
                    Item::new(key, encode(&session)?)
                        .with_expiry(session.created_at + self.absolute_seconds),
                    Condition::Version(item.version),
                )
                .await;
        }
        Ok(Some(session))
    }

    /// Ends a session (logout).
    pub async fn logout(&self, token: &str) -> Result<(), StaffError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(());
        }
        self.store
            .delete(&keys::staff_session(&token_hash(token)), Condition::None)
            .await?;
        Ok(())
    }

    fn attempts(&self) -> FailedAttempts {
        FailedAttempts {
            max: self.max_failures,
            window: self.failure_window,
        }
    }

    async fn check_not_locked(&self, username: &str, now: i64) -> Result<(), StaffError> {
        self.attempts()
            .check(
                self.store.as_ref(),
                &keys::staff_login_failures_pk(username),
                now,
            )
            .await?
            .map_err(|retry_after| StaffError::Locked { retry_after })
    }

    async fn record_failure(&self, username: &str, now: i64) -> Result<(), StaffError> {
        self.attempts()
            .record(
                self.store.as_ref(),
                &keys::staff_login_failures_pk(username),
                now,
            )
            .await?;
        Ok(())
    }
}

// Unit tests (the file is `#![cfg(test)]`: never in a build).
mod tests;
