//! FHIR Bulk Data export of an Authorized User's Group (Bulk Data Access
//! IG v2.0.0). So far: reading and checking a kick-off request, and cutting
//! resources to `_elements`.

pub mod elements;
pub mod request;

pub use request::{ExportRequest, KickOff, Problem, ResourceType};
