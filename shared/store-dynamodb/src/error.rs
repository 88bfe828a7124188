//! SDK errors → [`StoreError`], by DynamoDB error code so every operation
//! maps the same way.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use store::StoreError;

/// Map a failed call of any operation.
pub fn from_sdk<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let text = || DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let message = err.message().unwrap_or_default().to_owned();
            from_code(err.code().unwrap_or_default(), message)
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(text())
        }
        _ => StoreError::Other(text()),
    }
}

fn from_code(code: &str, message: String) -> StoreError {
    match code {
        "ConditionalCheckFailedException" => StoreError::ConditionFailed { index: None },
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TransactionConflictException"
        | "TransactionInProgressException" => StoreError::Throttled(format!("{code}: {message}")),
        "InternalServerError" | "ServiceUnavailable" | "InternalFailure" => {
            StoreError::Unavailable(format!("{code}: {message}"))
        }
        "ValidationException" if message.contains("Item size") => StoreError::TooLarge {
            size: 0,
            limit: store::limits::MAX_ITEM_BYTES,
        },
        "ValidationException" => StoreError::Invalid(message),
        _ => StoreError::Other(format!("{code}: {message}")),
    }
}

/// A cancelled transaction names, per write, why: the first failed condition
/// becomes `ConditionFailed { index }`; conflicts and throttling are retryable.
pub fn from_transact<R: std::fmt::Debug>(e: SdkError<TransactWriteItemsError, R>) -> StoreError {
    let SdkError::ServiceError(service) = &e else {
        return from_sdk(e);
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
        return from_sdk(e);
    };
    let codes: Vec<&str> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None"))
        .collect();
    let message = cancelled.message().unwrap_or_default().to_owned();
    from_reasons(&codes, message)
}

fn from_reasons(codes: &[&str], message: String) -> StoreError {
    if let Some(index) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
        return StoreError::ConditionFailed { index: Some(index) };
    }
    match codes.iter().find(|c| **c != "None") {
        Some(&"TransactionConflict" | &"ThrottlingError" | &"ProvisionedThroughputExceeded") => {
            StoreError::Throttled(message)
        }
        Some(&"ValidationError") => StoreError::Invalid(message),
        Some(&"ItemCollectionSizeLimitExceeded") => StoreError::TooLarge {
            size: 0,
            limit: store::limits::MAX_ITEM_BYTES,
        },
        // No reasons at all: the message is all we have.
        None if message.contains("ConditionalCheckFailed") => {
            StoreError::ConditionFailed { index: None }
        }
        _ => StoreError::Other(format!("transaction cancelled: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failed_condition_is_named() {
        let e = from_reasons(&["None", "None", "ConditionalCheckFailed"], String::new());
        assert_eq!(e, StoreError::ConditionFailed { index: Some(2) });
    }

    #[test]
    fn conflicts_are_retryable() {
        assert!(from_reasons(&["None", "TransactionConflict"], String::new()).is_retryable());
        assert!(from_code("ProvisionedThroughputExceededException", String::new()).is_retryable());
        assert!(from_code("ConditionalCheckFailedException", String::new()).is_condition_failed());
    }
}
