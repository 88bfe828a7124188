//! SDK errors → [`StoreError`]. Messages name the operation and the object
//! (`s3://bucket/key`), never a body: request bodies are export data.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use store::StoreError;

/// Map a failed call of any S3 operation on `target` (`s3://bucket/key`).
pub fn from_sdk<E, R>(op: &str, target: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            from_code(
                op,
                target,
                err.code().unwrap_or("unknown error"),
                err.message().unwrap_or_default(),
            )
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("S3 {op} {target}: {}", DisplayErrorContext(&e)))
        }
        _ => StoreError::Other(format!("S3 {op} {target}: {}", DisplayErrorContext(&e))),
    }
}

pub(crate) fn from_code(op: &str, target: &str, code: &str, message: &str) -> StoreError {
    let text = if message.is_empty() {
        format!("S3 {op} {target}: {code}")
    } else {
        format!("S3 {op} {target}: {code}: {message}")
    };
    match code {
        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            StoreError::Throttled(text)
        }
        "InternalError" | "ServiceUnavailable" | "RequestTimeout" | "RequestTimeTooSkewed" => {
            StoreError::Unavailable(text)
        }
        "InvalidArgument" | "KeyTooLongError" => StoreError::Invalid(text),
        _ => StoreError::Other(text),
    }
}

/// A request that could not be built (a missing required field: our bug).
pub(crate) fn build_error(op: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("S3 {op}: request build: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_outages_are_retryable() {
        assert!(from_code("PutObject", "s3://b/k", "SlowDown", "").is_retryable());
        assert!(from_code("UploadPart", "s3://b/k", "InternalError", "x").is_retryable());
        assert!(!from_code("GetObject", "s3://b/k", "AccessDenied", "x").is_retryable());
        assert!(!from_code("GetObject", "s3://b/k", "NoSuchBucket", "x").is_retryable());
    }

    #[test]
    fn messages_name_operation_and_object() {
        let e = from_code("PutObject", "s3://b/k", "AccessDenied", "Access Denied");
        assert_eq!(
            e.to_string(),
            "store error: S3 PutObject s3://b/k: AccessDenied: Access Denied"
        );
    }
}
