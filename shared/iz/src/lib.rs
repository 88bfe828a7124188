//! The CDC HL7 v2.5.1 Immunization Implementation Guide (R1.5) layer.

pub mod ack;
pub mod datetime;
pub mod finding;
pub mod intake;
pub mod profile;
pub mod respond;
pub mod rsp;
pub mod rsp_z42;
pub mod structure;
pub mod validate;
pub mod view;

pub use ack::{build_ack, build_rsp_z33, new_control_id, IisIdentity, QueryStatus, Received};
pub use datetime::{Clock, Date};
pub use finding::{AppError, Finding, Hl7Error, Severity};
pub use intake::{judge, validate_declared, AckCode, Intake, RequestKind};
pub use profile::{profile, ProfileId};
pub use respond::{answer_refusal, respond, respond_parsed, Response};
pub use rsp::{build_rsp_z31, build_rsp_z32, RspDose, RspPatient};
pub use rsp_z42::{assessment_request, build_rsp_z42, evaluable};
pub use validate::{validate, Loc, Validation};
pub use view::{query, vxu, Query, Value, Vxu};
