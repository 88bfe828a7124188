//! The tools an Authorized User's side runs against a running IIS, local or
//! deployed, over HTTP only: sending HL7 messages ([`send`]), getting a
//! token ([`token`]) and bulk-exporting its Group ([`export_cli`]).

pub mod export_cli;
pub mod send;
pub mod token;
