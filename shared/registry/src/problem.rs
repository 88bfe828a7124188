//! Why a FHIR operation's request cannot be answered, before any HTTP:
//! the status, the FHIR IssueType code, what to tell the client and the
//! parameter at fault. The FHIR side turns it into an OperationOutcome.

/// Why a request cannot be answered: the HTTP status, the FHIR IssueType
/// code, what to tell the client, and the parameter at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 400 (malformed), 422 (well formed, but cannot be evaluated).
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub expression: String,
}

pub fn bad(expression: &str, message: impl Into<String>) -> Problem {
    Problem {
        status: 400,
        code: "invalid",
        message: message.into(),
        expression: expression.to_owned(),
    }
}

pub fn unprocessable(expression: &str, message: impl Into<String>) -> Problem {
    Problem {
        status: 422,
        code: "processing",
        message: message.into(),
        expression: expression.to_owned(),
    }
}
