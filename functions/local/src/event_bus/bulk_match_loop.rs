//! The `Patient/$bulk-match` worker of the local composition: runs queued
//! jobs one after the other (each matches its patients a few at a time),
//! looking for new ones every second, and sweeps expired jobs' files every
//! minute. A job interrupted by a stop is run again from its first patient
//! at the next start.

use std::time::Duration;

use registry::bulk_match::BulkMatchJobs;

const IDLE: Duration = Duration::from_secs(1);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub async fn run(jobs: BulkMatchJobs) {
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            match jobs.sweep(store::limits::now_epoch_seconds(), 100).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "expired bulk matches deleted"),
                Err(e) => tracing::warn!(error = %e, "expired bulk matches not swept; will retry"),
            }
            last_sweep = Some(tokio::time::Instant::now());
        }
        match jobs.run_pending(10).await {
            // Something ran: look again at once.
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "bulk match worker: storage trouble; will retry"),
        }
        tokio::time::sleep(IDLE).await;
    }
}
