//! How every Lambda function logs: one JSON object per line on stdout, which
//! CloudWatch Logs stores with its own timestamp (so none is printed), at the
//! level `RUST_LOG` sets (the template's `LogLevel` parameter).
//!
//! `RUST_LOG` takes `tracing` target directives: a level (`info`), or levels
//! per target (`warn,registry=debug`). Nothing else is read, and message
//! bodies and PHI are only ever logged at `trace`/`debug` by targets that say
//! so, which the default (`info`) leaves off.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The variable the filter is read from.
pub const FILTER_ENV: &str = "RUST_LOG";

/// Installs the JSON logger as the process's subscriber (once; a second call
/// changes nothing). A `RUST_LOG` that does not parse is reported in the log
/// and replaced by `info`, rather than silencing the function.
pub fn init() {
    let spec = std::env::var(FILTER_ENV).ok();
    let (filter, problem) = filter(spec.as_deref());
    let installed = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .without_time()
                .with_filter(filter),
        )
        .try_init();
    if let (Ok(()), Some(problem)) = (installed, problem) {
        tracing::warn!("{problem}");
    }
}

/// The filter `spec` describes, or `info` and why `spec` was not used.
pub fn filter(spec: Option<&str>) -> (Targets, Option<String>) {
    let default = || Targets::new().with_default(LevelFilter::INFO);
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        None => (default(), None),
        Some(spec) => match spec.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (
                default(),
                Some(format!(
                    "{FILTER_ENV}={spec:?} is not a target filter ({e}); logging at info"
                )),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn unset_or_blank_is_info() {
        for spec in [None, Some(""), Some("  ")] {
            let (f, problem) = filter(spec);
            assert!(problem.is_none());
            assert!(f.would_enable("registry", &Level::INFO));
            assert!(!f.would_enable("registry", &Level::DEBUG));
        }
    }

    #[test]
    fn levels_and_per_target_directives() {
        let (f, _) = filter(Some("debug"));
        assert!(f.would_enable("anything", &Level::DEBUG));
        let (f, problem) = filter(Some("warn,registry=debug"));
        assert!(problem.is_none());
        assert!(f.would_enable("registry::patients", &Level::DEBUG));
        assert!(!f.would_enable("store_dynamodb", &Level::INFO));
        assert!(f.would_enable("store_dynamodb", &Level::WARN));
    }

    #[test]
    fn nonsense_falls_back_to_info_and_says_so() {
        let (f, problem) = filter(Some("registry=loud"));
        assert!(f.would_enable("registry", &Level::INFO));
        assert!(problem.is_some_and(|p| p.contains("RUST_LOG")));
    }
}
