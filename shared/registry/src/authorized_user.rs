//! Authorized Users: the clinics, health systems, pharmacies… allowed to send
//! to the IIS, each with its facility ids (what it puts in MSH-4 and the SOAP
//! facilityID) and one login.
//!
//! A facility id and a login name each belong to exactly one Authorized User:
//! both are claimed with an "absent" condition in the same transaction as the
//! user, so two users can never share one, even when created concurrently.

use crate::credentials;
use crate::keys;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::{Condition, Item, ItemStore, QueryOpts, SkRange, StoreError, Write};

/// The kinds of organisation a jurisdiction grants access to; the Group
/// membership policy later decides per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuKind {
    Clinic,
    HealthSystem,
    Pharmacy,
    School,
    Payer,
    HealthDepartment,
    Other,
}

impl AuKind {
    pub const ALL: [AuKind; 7] = [
        AuKind::Clinic,
        AuKind::HealthSystem,
        AuKind::Pharmacy,
        AuKind::School,
        AuKind::Payer,
        AuKind::HealthDepartment,
        AuKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuKind::Clinic => "clinic",
            AuKind::HealthSystem => "health-system",
            AuKind::Pharmacy => "pharmacy",
            AuKind::School => "school",
            AuKind::Payer => "payer",
            AuKind::HealthDepartment => "health-department",
            AuKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<AuKind> {
        AuKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedUser {
    pub id: String,
    pub kind: AuKind,
    pub name: String,
    /// MSH-4.1 values (and SOAP facilityIDs) this user sends for.
    pub facilities: Vec<String>,
    pub username: String,
    /// Argon2id PHC string; never the password.
    pub password_hash: String,
    /// Epoch seconds.
    pub created_at: i64,
    /// The Authorized User's one persistent Group, when the jurisdiction
    /// gives its kind one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Store version of the item, for optimistic updates (not serialized).
    #[serde(skip)]
    pub version: u64,
}

impl AuthorizedUser {
    pub fn sends_for(&self, facility: &str) -> bool {
        self.facilities.iter().any(|f| f == facility)
    }
}

/// What an administrator gives to create an Authorized User.
#[derive(Debug, Clone)]
pub struct NewAuthorizedUser {
    pub id: String,
    pub kind: AuKind,
    pub name: String,
    pub facilities: Vec<String>,
    pub username: String,
    pub password: String,
}

/// An administrator's change to an Authorized User: applied whole, in one
/// transaction, or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuEdit {
    pub name: Option<String>,
    /// Facility ids it now also sends for (MSH-4 / SOAP facilityID).
    pub add_facilities: Vec<String>,
    /// Facility ids it no longer sends for; their messages are refused from
    /// then on (AR, MSH-4 not its own), and another Authorized User may
    /// take them.
    pub remove_facilities: Vec<String>,
    /// A new HL7 password (a login reset); the username stays.
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuError {
    /// The input is not acceptable; the text says which value and why.
    Invalid(String),
    AlreadyExists(String),
    UsernameTaken(String),
    FacilityTaken(String),
    NotFound(String),
    Store(StoreError),
}

impl std::fmt::Display for AuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuError::Invalid(m) => write!(f, "{m}"),
            AuError::AlreadyExists(id) => write!(f, "Authorized User '{id}' already exists"),
            AuError::UsernameTaken(u) => write!(f, "username '{u}' is already in use"),
            AuError::FacilityTaken(fac) => {
                write!(f, "facility '{fac}' already belongs to an Authorized User")
            }
            AuError::NotFound(id) => write!(f, "no Authorized User '{id}'"),
            AuError::Store(e) => write!(f, "storage error: {e}"),
        }
    }
}

impl std::error::Error for AuError {}

impl From<StoreError> for AuError {
    fn from(e: StoreError) -> Self {
        AuError::Store(e)
    }
}

/// The repository of Authorized Users.
#[derive(Clone)]
pub struct AuthorizedUsers {
    store: Arc<dyn ItemStore>,
}

impl std::fmt::Debug for AuthorizedUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorizedUsers")
    }
}

/// The body of the login and facility index items.
#[derive(Debug, Serialize, Deserialize)]
struct Pointer {
    au: String,
}

pub const MIN_PASSWORD_CHARS: usize = 12;

fn check_id(what: &str, v: &str, max: usize) -> Result<(), AuError> {
    if v.is_empty() || v.len() > max {
        return Err(AuError::Invalid(format!(
            "{what} must be 1 to {max} characters"
        )));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(AuError::Invalid(format!(
            "{what} '{v}' may contain only letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// Facility ids are what senders put in MSH-4.1 (an HD namespace id): any
/// printable text without HL7 delimiters.
fn check_facility(f: &str) -> Result<(), AuError> {
    if f.trim() != f || f.is_empty() || f.chars().count() > 180 {
        return Err(AuError::Invalid(format!(
            "facility id '{f}' must be 1 to 180 characters without surrounding spaces"
        )));
    }
    if f.chars().any(|c| c.is_control() || "|^~\\&#".contains(c)) {
        return Err(AuError::Invalid(format!(
            "facility id '{f}' must not contain control characters or the HL7 delimiters | ^ ~ \\ & #"
        )));
    }
    Ok(())
}

fn check_password(p: &str) -> Result<(), AuError> {
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, AuError> {
    serde_json::to_vec(v).map_err(|e| AuError::Store(StoreError::Other(e.to_string())))
}

/// The marker that the registry counts its charts from the first one
/// (`patients::count` reads it), written with its first Authorized User.
fn counting_charts_from_the_start() -> Write {
    Write::Put {
        item: Item::new(keys::chart_count_since(), Vec::new()),
        cond: Condition::None,
    }
}

fn decode_au(item: &Item) -> Result<AuthorizedUser, AuError> {
    let mut au: AuthorizedUser = serde_json::from_slice(&item.data)
        .map_err(|e| AuError::Store(StoreError::Corrupt(format!("Authorized User item: {e}"))))?;
    au.version = item.version;
    Ok(au)
}

impl AuthorizedUsers {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        AuthorizedUsers { store }
    }

    /// Creates an Authorized User without a Group (`membership::onboard`
    /// creates one with its Group).
    pub async fn add(&self, new: NewAuthorizedUser, now: i64) -> Result<AuthorizedUser, AuError> {
        self.add_with(new, now, None, |_| Ok(Vec::new())).await
    }

    /// Creates an Authorized User whose record names `group` as its Group,
    /// in one transaction with the writes `also` makes for the new user
    /// (the Group's own item, which `membership` builds: it owns Groups).
    pub async fn add_with<F>(
        &self,
        new: NewAuthorizedUser,
        now: i64,
        group: Option<&str>,
        also: F,
    ) -> Result<AuthorizedUser, AuError>
    where
        F: FnOnce(&AuthorizedUser) -> Result<Vec<Write>, StoreError>,
    {
        check_id("the Authorized User id", &new.id, 64)?;
        check_id("the username", &new.username, 64)?;
        if new.name.trim().is_empty() {
            return Err(AuError::Invalid("the name must not be empty".into()));
        }
        if new.facilities.is_empty() {
            return Err(AuError::Invalid(
                "an Authorized User needs at least one facility id".into(),
            ));
        }
        if new.facilities.len() > 90 {
            return Err(AuError::Invalid(
                "at most 90 facility ids per Authorized User".into(),
            ));
        }
        let mut facilities: Vec<String> = Vec::new();
        for f in &new.facilities {
            check_facility(f)?;
            if !facilities.contains(f) {
                facilities.push(f.clone());
            }
        }
        check_password(&new.password)?;
        let au = AuthorizedUser {
            id: new.id.clone(),
            kind: new.kind,
            name: new.name.trim().to_string(),
            facilities: facilities.clone(),
            username: new.username.clone(),
            password_hash: credentials::hash_password(&new.password),
            created_at: now,
            group: group.map(str::to_owned),
            version: 0,
        };
        let pointer = encode(&Pointer { au: au.id.clone() })?;
        let mut writes = vec![
            Write::Put {
                item: Item::new(keys::au(&au.id), encode(&au)?),
                cond: Condition::Absent,
            },
            Write::Put {
                item: Item::new(keys::login(&au.username), pointer.clone()),
                cond: Condition::Absent,
            },
        ];
        for f in &facilities {
            writes.push(Write::Put {
                item: Item::new(keys::facility(f), pointer.clone()),
                cond: Condition::Absent,
            });
        }
        writes.extend(also(&au)?);
        // A registry's first Authorized User comes before its first chart:
        // from here on, the registry knows how many charts it holds.
        let first = self
            .store
            .query(
                keys::AU_PK,
                QueryOpts::new(store::Index::Table, SkRange::All).limit(1),
            )
            .await?
            .items
            .is_empty();
        if first {
            writes.push(counting_charts_from_the_start());
        }
        match self.store.transact(writes).await {
            Ok(()) => Ok(AuthorizedUser { version: 1, ..au }),
            Err(StoreError::ConditionFailed { index }) => Err(match index {
                Some(0) => AuError::AlreadyExists(au.id),
                Some(1) => AuError::UsernameTaken(au.username),
                Some(i) if (2..facilities.len() + 2).contains(&i) => {
                    AuError::FacilityTaken(facilities[i - 2].clone())
                }
                Some(_) | None => AuError::Invalid(format!(
                    "the id '{}', the username '{}' or one of the facility ids is already in use",
                    au.id, au.username
                )),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The write that records `group` as the Authorized User's Group,
    /// guarded by the version `au` was read at (for `membership`, which
    /// creates the Group in the same transaction).
    pub fn group_assignment(&self, au: &AuthorizedUser, group: &str) -> Result<Write, AuError> {
        let updated = AuthorizedUser {
            group: Some(group.to_owned()),
            ..au.clone()
        };
        Ok(Write::Put {
            item: Item::new(keys::au(&au.id), encode(&updated)?),
            cond: Condition::Version(au.version),
        })
    }

    pub async fn get(&self, id: &str) -> Result<Option<AuthorizedUser>, AuError> {
        match self.store.get(&keys::au(id)).await? {
            Some(item) => Ok(Some(decode_au(&item)?)),
            None => Ok(None),
        }
    }

    pub async fn list(&self) -> Result<Vec<AuthorizedUser>, AuError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .query(
                    keys::AU_PK,
                    QueryOpts::new(store::Index::Table, SkRange::All)
                        .limit(100)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                out.push(decode_au(item)?);
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// The Authorized User a login name belongs to.
    pub async fn by_username(&self, username: &str) -> Result<Option<AuthorizedUser>, AuError> {
        if username.is_empty() || username.len() > 64 {
            return Ok(None);
        }
        let Some(ptr) = self.store.get(&keys::login(username)).await? else {
            return Ok(None);
        };
        let p: Pointer = serde_json::from_slice(&ptr.data)
            .map_err(|e| AuError::Store(StoreError::Corrupt(format!("login item: {e}"))))?;
        let au = self.get(&p.au).await?;
        // A login item always points at its user; check anyway so a stale
        // pointer can never authenticate someone else.
        Ok(au.filter(|a| a.username == username))
    }

    pub async fn set_password(&self, id: &str, password: &str) -> Result<AuthorizedUser, AuError> {
        check_password(password)?;
        let mut au = self
            .get(id)
            .await?
            .ok_or_else(|| AuError::NotFound(id.into()))?;
        au.password_hash = credentials::hash_password(password);
        let version = self
            .store
            .put(
                Item::new(keys::au(id), encode(&au)?),
                Condition::Version(au.version),
            )
            .await?;
        au.version = version;
        Ok(au)
    }

    pub async fn add_facility(&self, id: &str, facility: &str) -> Result<AuthorizedUser, AuError> {
        check_facility(facility)?;
        let mut au = self
            .get(id)
            .await?
            .ok_or_else(|| AuError::NotFound(id.into()))?;
        if au.sends_for(facility) {
            return Ok(au);
        }
        au.facilities.push(facility.to_string());
        let writes = vec![
            Write::Put {
                item: Item::new(keys::au(id), encode(&au)?),
                cond: Condition::Version(au.version),
            },
            Write::Put {
                item: Item::new(
                    keys::facility(facility),
                    encode(&Pointer { au: id.into() })?,
                ),
                cond: Condition::Absent,
            },
        ];
        match self.store.transact(writes).await {
            Ok(()) => {
                au.version += 1;
                Ok(au)
            }
            Err(StoreError::ConditionFailed { index: Some(1) }) => {
                Err(AuError::FacilityTaken(facility.into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies an administrator's edit at once or not at all: the record
    /// under its version, a pointer created for every added facility (none
    /// may belong to anyone else) and removed for every facility dropped.
    /// An Authorized User keeps at least one facility.
    pub async fn edit(&self, id: &str, edit: &AuEdit) -> Result<AuthorizedUser, AuError> {
        if let Some(name) = &edit.name {
            if name.trim().is_empty() {
                return Err(AuError::Invalid("the name must not be empty".into()));
            }
        }
        if let Some(password) = &edit.password {
            check_password(password)?;
        }
        for f in &edit.add_facilities {
            check_facility(f)?;
            if edit.remove_facilities.contains(f) {
                return Err(AuError::Invalid(format!(
                    "facility '{f}' is both added and removed"
                )));
            }
        }
        let mut au = self
            .get(id)
            .await?
            .ok_or_else(|| AuError::NotFound(id.into()))?;
        for f in &edit.remove_facilities {
            if !au.sends_for(f) {
                return Err(AuError::Invalid(format!(
                    "Authorized User '{id}' does not send for facility '{f}'"
                )));
            }
        }
        let mut added: Vec<String> = Vec::new();
        for f in &edit.add_facilities {
            if !au.sends_for(f) && !added.contains(f) {
                added.push(f.clone());
            }
        }
        let mut facilities: Vec<String> = au
            .facilities
            .iter()
            .filter(|f| !edit.remove_facilities.contains(f))
            .cloned()
            .collect();
        facilities.extend(added.iter().cloned());
        if facilities.is_empty() {
            return Err(AuError::Invalid(
                "an Authorized User keeps at least one facility id".into(),
            ));
        }
        if facilities.len() > 90 {
            return Err(AuError::Invalid(
                "at most 90 facility ids per Authorized User".into(),
            ));
        }
        au.facilities = facilities;
        if let Some(name) = &edit.name {
            au.name = name.trim().to_owned();
        }
        if let Some(password) = &edit.password {
            au.password_hash = credentials::hash_password(password);
        }
        let mut writes = vec![Write::Put {
            item: Item::new(keys::au(id), encode(&au)?),
            cond: Condition::Version(au.version),
        }];
        for f in &added {
            writes.push(Write::Put {
                item: Item::new(keys::facility(f), encode(&Pointer { au: id.into() })?),
                cond: Condition::Absent,
            });
        }
        let mut removed: Vec<&String> = Vec::new();
        for f in &edit.remove_facilities {
            if !removed.contains(&f) {
                removed.push(f);
                writes.push(Write::Delete {
                    key: keys::facility(f),
                    cond: Condition::None,
                });
            }
        }
        match self.store.transact(writes).await {
            Ok(()) => {
                au.version += 1;
                Ok(au)
            }
            Err(StoreError::ConditionFailed { index: Some(i) }) if i >= 1 && i <= added.len() => {
                Err(AuError::FacilityTaken(added[i - 1].clone()))
            }
            Err(e) => Err(e.into()),
        }
    }
}
