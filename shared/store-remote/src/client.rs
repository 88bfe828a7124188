//! The caller's side: an [`ItemStore`] whose operations run in the process
//! that holds the store.

use async_trait::async_trait;
use store::{Condition, Item, ItemStore, Key, Page, QueryOpts, StoreError, Write};

use crate::wire::{Answer, Request, WireItem, WireQuery, WireWrite};

/// The store of a running `iisbulk serve`, reached over HTTP.
#[derive(Clone)]
pub struct RemoteStore {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("RemoteStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// `base` is the server's base URL (`http://127.0.0.1:8080`).
    pub fn new(base: &str, token: impl Into<String>) -> Self {
        RemoteStore {
            http: reqwest::Client::new(),
            url: format!("{}{}", base.trim_end_matches('/'), crate::STORE_PATH),
            token: token.into(),
        }
    }

    async fn call(&self, request: Request) -> Result<Answer, StoreError> {
        let body = serde_json::to_vec(&request).map_err(|e| StoreError::Other(e.to_string()))?;
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("the running iisbulk serve ({}): {e}", self.url))
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            StoreError::Unavailable(format!("the running iisbulk serve ({}): {e}", self.url))
        })?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(StoreError::Other(format!(
                "the running iisbulk serve ({}) refused its admin token: was it restarted on another data directory?",
                self.url
            )));
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::Other(format!(
                "the running iisbulk serve ({}) answered HTTP {status} with no store answer: {e}",
                self.url
            ))
        })?;
        match answer {
            Answer::Error(e) => Err(e.into()),
            other => Ok(other),
        }
    }
}

fn unexpected(what: &str, answer: &Answer) -> StoreError {
    StoreError::Other(format!(
        "expected {what} from the running iisbulk serve, got {answer:?}"
    ))
}

fn item(w: Option<WireItem>) -> Result<Option<Item>, StoreError> {
    w.map(Item::try_from).transpose()
}

#[async_trait]
impl ItemStore for RemoteStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        match self.call(Request::Get { key: key.clone() }).await? {
            Answer::Item(i) => item(i),
            other => Err(unexpected("an item", &other)),
        }
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        match self
            .call(Request::GetMany {
                keys: keys.to_vec(),
            })
            .await?
        {
            Answer::Items(items) => items.into_iter().map(item).collect(),
            other => Err(unexpected("items", &other)),
        }
    }

    async fn put(&self, i: Item, cond: Condition) -> Result<u64, StoreError> {
        match self
            .call(Request::Put {
                item: (&i).into(),
                cond: cond.into(),
            })
            .await?
        {
            Answer::Version(v) => Ok(v),
            other => Err(unexpected("a version", &other)),
        }
    }

    async fn delete(&self, key: &Key, cond: Condition) -> Result<(), StoreError> {
        match self
            .call(Request::Delete {
                key: key.clone(),
                cond: cond.into(),
            })
            .await?
        {
            Answer::Done => Ok(()),
            other => Err(unexpected("done", &other)),
        }
    }

    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Page, StoreError> {
        match self
            .call(Request::Query {
                pk: pk.to_owned(),
                opts: WireQuery::from(&opts),
            })
            .await?
        {
            Answer::Page(p) => p.try_into(),
            other => Err(unexpected("a page", &other)),
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        match self
            .call(Request::Transact {
                writes: writes.iter().map(WireWrite::from).collect(),
            })
            .await?
        {
            Answer::Done => Ok(()),
            other => Err(unexpected("done", &other)),
        }
    }
}
