//! The local event bus: what the table's stream and its event source
//! mappings do on AWS, done in this process over the embedded store's
//! change feed. Each consumer reads the feed from its own checkpoint with
//! retries ([`consumer`]), setting aside what it cannot apply ([`parked`],
//! the dead-letter queue's counterpart); the matcher, membership and export
//! consumers call the same registry use cases as their Lambdas; the bulk
//! match worker polls its queue; the feed is trimmed behind the slowest
//! consumer ([`feed_trim`]).

pub mod bulk_match_loop;
pub mod consumer;
pub mod export_loop;
pub mod feed_trim;
pub mod matcher_loop;
pub mod membership_loop;
pub mod parked;
