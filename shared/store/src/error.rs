//! The store's error type.
//!
//! One enum for both backends so repositories can react to *what happened*
//! (a lost race, a limit, a transient outage) without knowing which backend
//! they run on. Retryable errors are the ones where doing the same call again
//! later can succeed unchanged.

use std::fmt;

/// Result alias used throughout the store port.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// A write's condition did not hold. For a transaction, `index` names the
    /// first failing write (position in the `Vec<Write>`); `None` for single
    /// writes or when the backend could not tell which.
    ConditionFailed { index: Option<usize> },
    /// An item (or a transaction's total) is over DynamoDB's size limit.
    TooLarge { size: usize, limit: usize },
    /// More than [`crate::limits::MAX_TRANSACTION_WRITES`] writes in one transaction.
    TooManyWrites { count: usize, limit: usize },
    /// Two writes in one transaction address the same key.
    DuplicateKeyInTransaction { index: usize },
    /// The request is malformed (empty or oversized key, bad cursor, bad range).
    Invalid(String),
    /// The backend asked us to slow down (DynamoDB throttling, transaction
    /// conflicts). Retry with backoff.
    Throttled(String),
    /// The backend could not be reached or failed transiently. Retry with backoff.
    Unavailable(String),
    /// Stored bytes could not be decoded: a bug or on-disk corruption.
    Corrupt(String),
    /// Anything else; not retryable.
    Other(String),
}

impl StoreError {
    /// Whether repeating the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Throttled(_) | StoreError::Unavailable(_))
    }

    /// Whether this is a failed condition (a lost optimistic-concurrency race
    /// or an "already exists" / "does not exist" answer).
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, StoreError::ConditionFailed { .. })
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::ConditionFailed { index: Some(i) } => {
                write!(f, "condition failed (transaction write #{i})")
            }
            StoreError::ConditionFailed { index: None } => write!(f, "condition failed"),
            StoreError::TooLarge { size, limit } => {
                write!(f, "too large: {size} bytes, limit {limit}")
            }
            StoreError::TooManyWrites { count, limit } => {
                write!(
                    f,
                    "too many writes in one transaction: {count}, limit {limit}"
                )
            }
            StoreError::DuplicateKeyInTransaction { index } => {
                write!(f, "transaction write #{index} repeats an earlier key")
            }
            StoreError::Invalid(m) => write!(f, "invalid request: {m}"),
            StoreError::Throttled(m) => write!(f, "throttled: {m}"),
            StoreError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StoreError::Corrupt(m) => write!(f, "corrupt data: {m}"),
            StoreError::Other(m) => write!(f, "store error: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}
