//! The audit trail for auditors: search by staff member or other actor, by
//! subject (a person, an Authorized User), and by day.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::audit::{Actor, AuditEvent, AuditSearch, Outcome, MAX_SEARCH_DAYS};

use crate::session::{staff_in, Access, AUDITORS};
use crate::{json, now_ms, ConsoleDeps, Problem};

const DAY_MS: i64 = 86_400_000;
const DEFAULT_DAYS: i64 = 7;

/// The event with the current request's caller address, unless it names
/// one already.
fn with_source(event: AuditEvent) -> AuditEvent {
    if event.source.is_some() {
        return event;
    }
    let source = crate::peer::source();
    event.from_source(source.as_deref())
}

/// Records an action already done: a failure to record is logged, not
/// turned into a failed answer for something that happened.
pub(crate) async fn record(deps: &ConsoleDeps, event: AuditEvent) {
    let event = with_source(event);
    if let Err(e) = deps.audit.record(&event).await {
        tracing::warn!(error = %e, action = %event.action, "audit event not recorded");
    }
}

/// Records a read before the data is shown: no audit, no data.
pub(crate) async fn record_before_showing(
    deps: &ConsoleDeps,
    event: AuditEvent,
) -> Result<(), Problem> {
    let event = with_source(event);
    deps.audit
        .record(&event)
        .await
        .map_err(Problem::unavailable)
}

/// `YYYY-MM-DD` as the epoch milliseconds of that UTC day's start.
fn day_start(text: &str) -> Option<i64> {
    let compact: String = text.split('-').collect();
    if text.len() != 10 || compact.len() != 8 {
        return None;
    }
    let date = iz::datetime::parse_dt(&compact).ok()?.date()?;
    Some(date.day_number() * DAY_MS)
}

/// Most events one search answers, and one export file holds (an auditor
/// exports a longer span in several files, by day).
const MAX_SEARCH_EVENTS: u32 = 1000;
const MAX_EXPORT_EVENTS: u32 = 10_000;

fn search_of(
    query: Option<&str>,
    default_limit: u32,
    max_limit: u32,
) -> Result<AuditSearch, Problem> {
    let today = now_ms();
    let mut search = AuditSearch {
        from_ms: (today.div_euclid(DAY_MS) - DEFAULT_DAYS + 1) * DAY_MS,
        to_ms: today,
        limit: default_limit,
        ..AuditSearch::default()
    };
    let mut to_day = None;
    for (name, value) in query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        let value = value.replace("%2F", "/").replace("%2f", "/");
        let bad = |what: &str| Problem::bad_request(format!("{name} '{value}' {what}"));
        match name {
            "actor" => search.actor = Some(value.clone()),
            "subject" => search.subject = Some(value.clone()),
            "from" => {
                search.from_ms = day_start(&value).ok_or_else(|| bad("is not a date YYYY-MM-DD"))?
            }
            "to" => {
                to_day = Some(day_start(&value).ok_or_else(|| bad("is not a date YYYY-MM-DD"))?)
            }
            "limit" => {
                search.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=max_limit).contains(n))
                    .ok_or_else(|| bad(&format!("must be a number from 1 to {max_limit}")))?
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown parameter '{other}' (actor, subject, from, to, limit)"
                )))
            }
        }
    }
    if let Some(to) = to_day {
        search.to_ms = to + DAY_MS - 1;
    }
    if search.to_ms < search.from_ms {
        return Err(Problem::bad_request("to is before from"));
    }
    if search.actor.is_none()
        && search.subject.is_none()
        && (search.to_ms - search.from_ms) / DAY_MS >= MAX_SEARCH_DAYS
    {
        return Err(Problem::bad_request(format!(
            "a search by time alone spans at most {MAX_SEARCH_DAYS} days; name an actor or a subject for longer"
        )));
    }
    Ok(search)
}

/// `GET /console/api/audit?actor=staff/rita&subject=Person/…&from=YYYY-MM-DD&to=YYYY-MM-DD&limit=N`
/// (auditors): events newest first; the last seven days by default.
pub(crate) async fn search(
    State(deps): State<Arc<ConsoleDeps>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match staff_in(&deps, &headers, AUDITORS, Access::Read).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let search = match search_of(query.as_deref(), 100, MAX_SEARCH_EVENTS) {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    // Reading the trail is itself in the trail (what was asked, not what
    // was answered).
    let event = AuditEvent::new(
        Actor::staff(&session.username),
        "console.audit.search",
        Outcome::Success,
        now_ms(),
    )
    .detail(described(&search));
    if let Err(p) = record_before_showing(&deps, event).await {
        return p.into_response();
    }
    match deps.audit.search(&search).await {
        Ok(events) => json(StatusCode::OK, &serde_json::json!({ "events": events })),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

fn described(search: &AuditSearch) -> String {
    format!(
        "actor {}, subject {}, from {} to {} (ms), at most {}",
        search.actor.as_deref().unwrap_or("any"),
        search.subject.as_deref().unwrap_or("any"),
        search.from_ms,
        search.to_ms,
        search.limit
    )
}

/// `GET /console/api/audit/export?…` (auditors, the same parameters as the
/// search; at most 10,000 events, default all up to that): the events as
/// FHIR AuditEvent resources, one per line (`application/fhir+ndjson`),
/// newest first, as a file to keep.
pub(crate) async fn export(
    State(deps): State<Arc<ConsoleDeps>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match staff_in(&deps, &headers, AUDITORS, Access::Read).await {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let search = match search_of(query.as_deref(), MAX_EXPORT_EVENTS, MAX_EXPORT_EVENTS) {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let event = AuditEvent::new(
        Actor::staff(&session.username),
        "console.audit.export",
        Outcome::Success,
        now_ms(),
    )
    .detail(described(&search));
    if let Err(p) = record_before_showing(&deps, event).await {
        return p.into_response();
    }
    let events = match deps.audit.search(&search).await {
        Ok(events) => events,
        Err(e) => return Problem::unavailable(e).into_response(),
    };
    let mut body = Vec::new();
    for e in &events {
        let resource = registry::audit::to_fhir(e, &deps.policy.identifier_base);
        match serde_json::to_writer(&mut body, &resource) {
            Ok(()) => body.push(b'\n'),
            Err(e) => return Problem::unavailable(e).into_response(),
        }
    }
    let day = iz::Clock::at(search.to_ms.div_euclid(1000)).instant();
    let filename = format!("audit-{}.ndjson", day.get(..10).unwrap_or("export"));
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+ndjson"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_of_default(query: Option<&str>) -> Result<AuditSearch, Problem> {
        search_of(query, 100, MAX_SEARCH_EVENTS)
    }

    #[test]
    fn days_and_parameters_are_read_or_refused_with_reasons() {
        assert_eq!(day_start("1970-01-02"), Some(DAY_MS));
        assert_eq!(day_start("2026-02-30"), None);
        assert_eq!(day_start("20260101"), None);
        let s = search_of_default(Some(
            "actor=staff%2Frita&from=2026-12-01&to=2026-12-03&limit=5",
        ))
        .unwrap();
        assert_eq!(s.actor.as_deref(), Some("staff/rita"));
        assert_eq!(s.limit, 5);
        assert_eq!(s.to_ms - s.from_ms, 3 * DAY_MS - 1);
        for bad in [
            "from=yesterday",
            "limit=0",
            "color=red",
            "from=2026-12-03&to=2026-12-01",
            "from=2020-01-01&to=2026-01-01",
        ] {
            assert!(search_of_default(Some(bad)).is_err(), "{bad}");
        }
        assert!(search_of_default(Some("subject=Person/p1&from=2020-01-01&to=2026-01-01")).is_ok());
    }
}
