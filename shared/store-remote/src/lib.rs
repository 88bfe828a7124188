//! # store-remote — the item-store port over loopback HTTP
//!
//! The embedded store is one redb file that one process holds. While
//! `iisbulk serve` runs, the admin commands (`iisbulk au`, `client`,
//! `group`, `patients`, `staff`) cannot open it, yet an IIS cannot go
//! offline to onboard a clinic. So the running server lends its store:
//! [`router`] answers the six [`ItemStore`] operations at
//! [`STORE_PATH`], and [`RemoteStore`] is an [`ItemStore`] that sends them
//! there. The commands keep their own domain logic unchanged; they only
//! get a different store, and every write goes through the server's store,
//! its change feed and its consumers as the server's own writes do.
//!
//! Only a holder of the server's admin token may call: `iisbulk serve`
//! writes it to a file in the data directory readable by its owner alone,
//! so the callers are exactly those who could read the store file itself.
//! The wire format is JSON, item payloads in base64; store errors travel
//! as values, so a lost race is still `ConditionFailed` at the caller.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod client;
mod server;
mod wire;

pub use client::RemoteStore;
pub use server::router;

/// Where the server answers store operations.
pub const STORE_PATH: &str = "/admin/store";
