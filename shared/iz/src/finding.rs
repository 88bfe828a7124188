use hl7::Location;

/// ERR-4 severity (HL7 table 0516).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Information,
    Warning,
    Error,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Severity::Information => "I",
            Severity::Warning => "W",
            Severity::Error => "E",
        }
    }
}

/// ERR-3 HL7 error code (HL7 table 0357).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hl7Error {
    MessageAccepted,
    SegmentSequence,
    RequiredFieldMissing,
    DataType,
    TableValueNotFound,
    UnsupportedMessageType,
    UnsupportedEventCode,
    UnsupportedProcessingId,
    UnsupportedVersionId,
    UnknownKeyIdentifier,
    DuplicateKeyIdentifier,
    ApplicationRecordLocked,
    ApplicationInternalError,
    ApplicationError,
}

impl Hl7Error {
    pub fn code(self) -> &'static str {
        match self {
            Hl7Error::MessageAccepted => "0",
            Hl7Error::SegmentSequence => "100",
            Hl7Error::RequiredFieldMissing => "101",
            Hl7Error::DataType => "102",
            Hl7Error::TableValueNotFound => "103",
            Hl7Error::UnsupportedMessageType => "200",
            Hl7Error::UnsupportedEventCode => "201",
            Hl7Error::UnsupportedProcessingId => "202",
            Hl7Error::UnsupportedVersionId => "203",
            Hl7Error::UnknownKeyIdentifier => "204",
            Hl7Error::DuplicateKeyIdentifier => "205",
            Hl7Error::ApplicationRecordLocked => "206",
            Hl7Error::ApplicationInternalError => "207",
            Hl7Error::ApplicationError => "999",
        }
    }
    pub fn text(self) -> &'static str {
        match self {
            Hl7Error::MessageAccepted => "Message accepted",
            Hl7Error::SegmentSequence => "Segment sequence error",
            Hl7Error::RequiredFieldMissing => "Required field missing",
            Hl7Error::DataType => "Data type error",
            Hl7Error::TableValueNotFound => "Table value not found",
            Hl7Error::UnsupportedMessageType => "Unsupported message type",
            Hl7Error::UnsupportedEventCode => "Unsupported event code",
            Hl7Error::UnsupportedProcessingId => "Unsupported processing ID",
            Hl7Error::UnsupportedVersionId => "Unsupported version ID",
            Hl7Error::UnknownKeyIdentifier => "Unknown key identifier",
            Hl7Error::DuplicateKeyIdentifier => "Duplicate key identifier",
            Hl7Error::ApplicationRecordLocked => "Application record locked",
            Hl7Error::ApplicationInternalError => "Application internal error",
            Hl7Error::ApplicationError => "Application error",
        }
    }
    /// 200-series codes reject the whole message (MSA-1 AR).
    pub fn rejects_message(self) -> bool {
        matches!(
            self,
            Hl7Error::UnsupportedMessageType
                | Hl7Error::UnsupportedEventCode
                | Hl7Error::UnsupportedProcessingId
                | Hl7Error::UnsupportedVersionId
                | Hl7Error::ApplicationInternalError
        )
    }
}

/// ERR-5 application error code (CDC table 0533).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppError {
    IllogicalDate,
    InvalidDate,
    IllogicalValue,
    InvalidValue,
    TableValueNotFound,
    RequiredObservationMissing,
    RequiredDataMissing,
    DataIgnored,
}

impl AppError {
    pub fn code(self) -> &'static str {
        match self {
            AppError::IllogicalDate => "1",
            AppError::InvalidDate => "2",
            AppError::IllogicalValue => "3",
            AppError::InvalidValue => "4",
            AppError::TableValueNotFound => "5",
            AppError::RequiredObservationMissing => "6",
            AppError::RequiredDataMissing => "7",
            AppError::DataIgnored => "8",
        }
    }
    pub fn text(self) -> &'static str {
        match self {
            AppError::IllogicalDate => "Illogical Date error",
            AppError::InvalidDate => "Invalid Date",
            AppError::IllogicalValue => "Illogical Value error",
            AppError::InvalidValue => "Invalid value",
            AppError::TableValueNotFound => "Table value not found",
            AppError::RequiredObservationMissing => "Required observation missing",
            AppError::RequiredDataMissing => "Required data missing",
            AppError::DataIgnored => "Data was ignored",
        }
    }
}

/// One problem found in a message: what becomes one ERR segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub location: Location,
    pub hl7_code: Hl7Error,
    pub severity: Severity,
    pub app_code: Option<AppError>,
    /// Human explanation for ERR-8 (kept under 250 characters when written).
    pub message: String,
    /// The rule behind it: `usage`, `length`, `value-set:CVX`, `IZ-47`, ...
    pub rule: String,
}

impl Finding {
    pub fn new(
        location: Location,
        hl7_code: Hl7Error,
        severity: Severity,
        app_code: Option<AppError>,
        rule: &str,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            location,
            hl7_code,
            severity,
            app_code,
            message: message.into(),
            rule: rule.to_string(),
        }
    }
}
