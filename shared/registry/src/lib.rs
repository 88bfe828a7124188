//! The IIS's use cases, written once against the storage port so that the
//! same code runs in a Lambda over DynamoDB and in the local process over the
//! embedded store. No HTTP, no AWS SDK here: transports live in `functions/`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod attempts;
pub mod audit;
pub mod authorized_user;
pub mod bulk_match;
pub mod credentials;
pub mod export;
pub mod fhir_match;
pub mod fhir_members;
pub mod immds;
pub mod intake;
mod json;
pub mod keys;
pub mod membership;
pub mod message;
pub mod patients;
pub mod persons;
pub mod problem;
pub mod provenance;
pub mod queries;
pub mod resources;
mod retry;
pub mod smart;
pub mod staff;

pub use authorized_user::{
    AuEdit, AuError, AuKind, AuthorizedUser, AuthorizedUsers, NewAuthorizedUser,
};
pub use credentials::{AuthError, Credentials};
pub use intake::{Delivery, Intake, IntakeError, Transport};
pub use message::{AcceptedMessage, MessageRecord};
