//! Failed attempts remembered for a while (one item each, expiring with the
//! window): the lockout of console logins, where passwords can be guessed.
//! (SMART token requests are not locked out: a signed assertion cannot be
//! guessed, and a lockout keyed by a public `client_id` would be a denial
//! of service; bulk-api limits them per source address instead.)

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use store::{Condition, Index, Item, ItemStore, Key, QueryOpts, SkRange, StoreError};

#[derive(Serialize, Deserialize)]
struct Failure {
    at: i64,
}

/// At most `max` failures per partition within `window` seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailedAttempts {
    pub max: usize,
    pub window: i64,
}

impl FailedAttempts {
    /// `Err(seconds)` until the partition may try again, when `max` of its
    /// failures fall within the window.
    pub async fn check(
        &self,
        store: &dyn ItemStore,
        pk: &str,
        now: i64,
    ) -> Result<Result<(), i64>, StoreError> {
        let page = store
            .query(
                pk,
                QueryOpts::new(Index::Table, SkRange::All)
                    .limit(u32::try_from(self.max + 1).unwrap_or(u32::MAX)),
            )
            .await?;
        let recent: Vec<i64> = page
            .items
            .iter()
            .filter_map(|i| serde_json::from_slice::<Failure>(&i.data).ok())
            .map(|f| f.at)
            .filter(|at| *at > now - self.window)
            .collect();
        if recent.len() >= self.max {
            let oldest = recent.iter().min().copied().unwrap_or(now);
            return Ok(Err((oldest + self.window - now).max(1)));
        }
        Ok(Ok(()))
    }

    /// Remembers one failure of the partition until the window has passed.
    pub async fn record(
        &self,
        store: &dyn ItemStore,
        pk: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let n = OsRng.next_u32();
        let data = serde_json::to_vec(&Failure { at: now })
            .map_err(|e| StoreError::Other(e.to_string()))?;
        store
            .put(
                Item::new(Key::new(pk, format!("{now:020}#{n:08x}")), data)
                    .with_expiry(now + self.window),
                Condition::None,
            )
            .await?;
        Ok(())
    }
}
