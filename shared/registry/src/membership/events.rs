//! Which store changes concern membership. Works on a key and the raw old
//! and new item data, so the local change feed and a DynamoDB stream record
//! (keys plus old and new images) share one decision.

use serde::{Deserialize, Serialize};
use store::{Change, Key};

/// Serializable so a local consumer can park one it could not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MembershipEvent {
    /// A VXU was applied to the registry (`IN#<id>` / `MATCHED` created).
    Matched { message_id: String },
    /// A query was answered and recorded (`QRY#<au>` item created).
    Queried { key: Key },
    /// A reviewer moved a source record to another person (its `person`
    /// changed): a merge or an unmerge.
    SourceMoved { source: String },
    /// A reviewer confirmed a provisional person as nobody else.
    PersonConfirmed { person: String },
}

#[derive(Deserialize)]
struct PersonField {
    person: Option<String>,
}

#[derive(Deserialize)]
struct StatusField {
    status: Option<String>,
}

/// The membership event of a local change-feed entry, if any.
pub fn change_event(change: &Change) -> Option<MembershipEvent> {
    membership_event(
        &change.key,
        change.old.as_ref().map(|i| i.data.as_slice()),
        change.new.as_ref().map(|i| i.data.as_slice()),
    )
}

/// The membership event a change announces, if any.
pub fn membership_event(
    key: &Key,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Option<MembershipEvent> {
    let new = new?;
    if let Some(id) = key.pk.strip_prefix("IN#") {
        return (key.sk == "MATCHED" && old.is_none() && !id.is_empty()).then(|| {
            MembershipEvent::Matched {
                message_id: id.to_owned(),
            }
        });
    }
    if key.pk.starts_with("QRY#") {
        return old
            .is_none()
            .then(|| MembershipEvent::Queried { key: key.clone() });
    }
    if let Some(sid) = key.pk.strip_prefix("SRC#") {
        if key.sk != "SRC" {
            return None;
        }
        let person = |d: &[u8]| {
            serde_json::from_slice::<PersonField>(d)
                .ok()
                .and_then(|p| p.person)
        };
        let moved = person(old?) != person(new) || person(new).is_none();
        return moved.then(|| MembershipEvent::SourceMoved {
            source: sid.to_owned(),
        });
    }
    if let Some(pid) = key.pk.strip_prefix("PAT#") {
        if key.sk != "PROFILE" {
            return None;
        }
        let status = |d: &[u8]| {
            serde_json::from_slice::<StatusField>(d)
                .ok()
                .and_then(|s| s.status)
        };
        let confirmed = status(old?).as_deref() == Some("provisional")
            && status(new).as_deref() == Some("active");
        return confirmed.then(|| MembershipEvent::PersonConfirmed {
            person: pid.to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_from_the_facts_that_matter() {
        let k = |pk: &str, sk: &str| Key::new(pk, sk);
        let matched = k("IN#m1", "MATCHED");
        assert_eq!(
            membership_event(&matched, None, Some(b"{}")),
            Some(MembershipEvent::Matched {
                message_id: "m1".into()
            })
        );
        // A rewrite of the mark, a head, a delete: nothing.
        assert_eq!(membership_event(&matched, Some(b"{}"), Some(b"{}")), None);
        assert_eq!(
            membership_event(&k("IN#m1", "HEAD"), None, Some(b"{}")),
            None
        );
        assert_eq!(membership_event(&matched, Some(b"{}"), None), None);

        let q = k("QRY#clinic", "0001#x");
        assert!(matches!(
            membership_event(&q, None, Some(b"{}")),
            Some(MembershipEvent::Queried { .. })
        ));

        let src = k("SRC#s1", "SRC");
        let a = br#"{"person":"p1","au":"x"}"#;
        let b = br#"{"person":"p2","au":"x"}"#;
        assert_eq!(membership_event(&src, Some(a), Some(a)), None);
        assert_eq!(membership_event(&src, None, Some(a)), None);
        assert_eq!(
            membership_event(&src, Some(a), Some(b)),
            Some(MembershipEvent::SourceMoved {
                source: "s1".into()
            })
        );
        assert_eq!(
            membership_event(&k("SRC#s1", "DOSE#d"), Some(a), Some(b)),
            None
        );

        let prof = k("PAT#p1", "PROFILE");
        let prov = br#"{"status":"provisional"}"#;
        let act = br#"{"status":"active"}"#;
        assert_eq!(
            membership_event(&prof, Some(prov), Some(act)),
            Some(MembershipEvent::PersonConfirmed {
                person: "p1".into()
            })
        );
        assert_eq!(membership_event(&prof, Some(act), Some(act)), None);
        assert_eq!(membership_event(&prof, None, Some(act)), None);
    }
}
