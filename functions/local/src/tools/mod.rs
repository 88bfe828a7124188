//! Tools that need no server or store: checking HL7 message files as the
//! IIS would answer them ([`check`]), matching on files ([`matching_cli`]),
//! CDSi over CDC test cases ([`forecast_cli`]).

pub mod check;
pub mod forecast_cli;
pub mod matching_cli;
