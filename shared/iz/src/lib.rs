//! The CDC HL7 v2.5.1 Immunization Implementation Guide (R1.5) layer.

pub mod profile;
