//! Optimistic transactions: read, decide, commit with version conditions;
//! when another writer got there first, read again and decide again.

use store::StoreError;

/// Attempts before the work is left for redelivery.
pub(crate) const MAX_ATTEMPTS: usize = 12;

pub(crate) fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::ConditionFailed { .. })
}

/// Runs `attempt` until it does not fail with a condition conflict, with a
/// jittered exponential pause between attempts so two writers stop colliding.
pub(crate) async fn on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut last = None;
    for n in 0..MAX_ATTEMPTS {
        match attempt().await {
            Err(e) if is_conflict(&e) => {
                last = Some(e);
                pause(n).await;
            }
            other => return other,
        }
    }
    Err(last.unwrap_or(StoreError::Other("retries exhausted".into())))
}

/// The jittered exponential pause before conflict retry `n` (0-based).
pub(crate) async fn pause(n: usize) {
    let jitter = u64::from(rand_core::RngCore::next_u32(&mut rand_core::OsRng) % 8);
    tokio::time::sleep(std::time::Duration::from_millis(
        (1u64 << n.min(6)) + jitter,
    ))
    .await;
}
