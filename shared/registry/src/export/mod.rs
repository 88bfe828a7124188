//! FHIR Bulk Data export of an Authorized User's Group (Bulk Data Access
//! IG v2.0.0). This first part reads and checks a kick-off request.

pub mod request;

pub use request::{ExportRequest, KickOff, Problem, ResourceType};
