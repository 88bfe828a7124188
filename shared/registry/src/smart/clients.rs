//! Client registration: an Authorized User's back-end system, its public
//! keys (an inline JWKS, or a JWKS URL fetched when needed) and the scopes
//! it may be granted.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use store::{Condition, Index, Item, ItemStore, QueryOpts, SkRange, StoreError, Write};

use super::jose::JwkSet;
use super::scopes::Scopes;
use crate::json::{decode, encode};
use crate::keys;

/// Where a registered JWKS URL is read from (HTTP at the edge; a map in tests).
#[async_trait]
pub trait JwksSource: Send + Sync {
    async fn fetch(&self, url: &str) -> Result<String, String>;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    pub au: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The most it may be granted.
    pub scope: String,
    pub created_at: i64,
}

impl Client {
    pub fn allowed(&self) -> Scopes {
        Scopes::parse_granted(&self.scope)
    }
}

#[derive(Debug)]
pub enum ClientError {
    Invalid(String),
    NotFound(String),
    Store(StoreError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Invalid(m) => f.write_str(m),
            ClientError::NotFound(id) => write!(f, "no client '{id}'"),
            ClientError::Store(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        ClientError::Store(e)
    }
}

/// A JWKS URL must be https (plain http only to this machine, for tests).
fn check_url(url: &str) -> Result<(), ClientError> {
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    if !(url.starts_with("https://") || local) || url.chars().any(char::is_whitespace) {
        return Err(ClientError::Invalid(format!(
            "the JWKS URL {url:?} must be an https:// URL"
        )));
    }
    Ok(())
}

#[derive(Clone)]
pub struct Clients {
    store: Arc<dyn ItemStore>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clients")
    }
}

impl Clients {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Clients { store }
    }

    /// Registers a client for an existing Authorized User, with an inline
    /// JWKS (text) or a JWKS URL; returns it with its new client_id.
    pub async fn add(
        &self,
        au: &str,
        jwks: Option<&str>,
        jwks_url: Option<&str>,
        scope: &str,
        now_ms: i64,
    ) -> Result<Client, ClientError> {
        if self.store.get(&keys::au(au)).await?.is_none() {
            return Err(ClientError::Invalid(format!("no Authorized User '{au}'")));
        }
        let (jwks, jwks_url) = match (jwks, jwks_url) {
            (Some(text), None) => (
                Some(JwkSet::parse(text).map_err(ClientError::Invalid)?),
                None,
            ),
            (None, Some(url)) => {
                check_url(url)?;
                (None, Some(url.to_owned()))
            }
            _ => {
                return Err(ClientError::Invalid(
                    "give exactly one of a JWKS or a JWKS URL".into(),
                ))
            }
        };
        let unserved = super::scopes::unserved(scope);
        if !unserved.is_empty() {
            return Err(ClientError::Invalid(format!(
                "scope: {} not served here (resource types: {})",
                unserved.join(", "),
                super::scopes::RESOURCE_TYPES.join(", ")
            )));
        }
        // Registration may give reading and, asked for explicitly, the
        // change of the Authorized User's own Group's members.
        let allowed =
            super::scopes::grant(scope, &Scopes::parse_granted("system/*.rs system/Group.u"))
                .map_err(|e| ClientError::Invalid(format!("scope: {e}")))?;
        let client = Client {
            id: uuid::Uuid::new_v4().simple().to_string(),
            au: au.to_owned(),
            jwks,
            jwks_url,
            scope: allowed.as_string(),
            created_at: now_ms,
        };
        self.store
            .transact(vec![
                Write::Put {
                    item: Item::new(keys::client(&client.id), encode(&client)?),
                    cond: Condition::Absent,
                },
                Write::Put {
                    item: Item::new(keys::au_client(au, &client.id), Vec::new()),
                    cond: Condition::None,
                },
            ])
            .await?;
        Ok(client)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Client>, StoreError> {
        match self.store.get(&keys::client(id)).await? {
            Some(item) => decode(&item, "client").map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the inline JWKS (key rotation: publish old and new keys,
    /// then drop the old one).
    pub async fn set_jwks(&self, id: &str, jwks: &str) -> Result<Client, ClientError> {
        let set = JwkSet::parse(jwks).map_err(ClientError::Invalid)?;
        let item = self
            .store
            .get(&keys::client(id))
            .await?
            .ok_or_else(|| ClientError::NotFound(id.to_owned()))?;
        let mut client: Client = decode(&item, "client")?;
        client.jwks = Some(set);
        client.jwks_url = None;
        self.store
            .put(
                Item::new(keys::client(id), encode(&client)?),
                Condition::Version(item.version),
            )
            .await?;
        Ok(client)
    }

    /// Removes a client: its tokens stop working at once.
    pub async fn remove(&self, id: &str) -> Result<(), ClientError> {
        let client = self
            .get(id)
            .await?
            .ok_or_else(|| ClientError::NotFound(id.to_owned()))?;
        self.store
            .transact(vec![
                Write::Delete {
                    key: keys::client(id),
                    cond: Condition::None,
                },
                Write::Delete {
                    key: keys::au_client(&client.au, id),
                    cond: Condition::None,
                },
            ])
            .await?;
        Ok(())
    }

    pub async fn of_au(&self, au: &str) -> Result<Vec<Client>, StoreError> {
        let page = self
            .store
            .query(
                &keys::au_clients_pk(au),
                QueryOpts::new(Index::Table, SkRange::All).limit(100),
            )
            .await?;
        let mut out = Vec::new();
        for item in &page.items {
            if let Some(c) = self.get(&item.key.sk).await? {
                out.push(c);
            }
        }
        Ok(out)
    }
}
