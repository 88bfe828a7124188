//! The admin commands IIS staff and DevOps run: Authorized Users, console
//! staff, matching review, Groups, SMART clients, the local feed. Each works
//! on the local data directory (directly, or through a running `iisbulk
//! serve` that lends its store) or on a stack's DynamoDB table
//! ([`backend`]).

pub mod au;
pub mod backend;
pub mod client_cli;
pub mod feed_cli;
pub mod group_cli;
pub mod patients_cli;
pub mod staff_cli;
