//! Reading request bodies with a size limit that still lets the client hear
//! the answer.
//!
//! Stopping at the limit and closing makes most clients fail with "broken
//! pipe" while still uploading, so the sender never sees why. Instead an
//! oversized body is read on and discarded up to a drain bound, then the
//! specific refusal (413 or MessageTooLargeFault) is sent.

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// Past this, the connection is dropped without reading further.
const DRAIN_BOUND: usize = 64 * 1024 * 1024;

pub(crate) enum BodyError {
    /// Larger than the limit; `seen` bytes were read (at least).
    TooLarge { seen: usize },
    /// The client went away or sent a broken body.
    Broken,
}

pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            buf.extend_from_slice(&data);
        } else {
            buf = Vec::new();
            if seen > DRAIN_BOUND {
                return Err(BodyError::TooLarge { seen });
            }
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge { seen });
    }
    Ok(Bytes::from(buf))
}
