//! Authorized User Groups as items: one `GROUP` item per Group, one item per
//! member, 128 size counters and, on the person's side, one item per Group
//! the person is or was in. No item grows with membership, so a Group of any
//! size stays within DynamoDB's 400 KB item limit.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use store::{Condition, Cursor, Index, Item, ItemStore, QueryOpts, SkRange, StoreError, Write};

use super::policy::{Association, Certainty};
use crate::json::{decode, encode};
use crate::keys;
use crate::retry::on_conflict;

/// Size counters per Group: adds for different patients rarely touch the
/// same counter, so concurrent adds seldom conflict.
const COUNTER_SHARDS: u8 = 128;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: String,
    /// The Authorized User whose Group this is.
    pub au: String,
    pub name: String,
    pub created_at: i64,
}

/// What established a relationship.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A VXU from the Authorized User about the patient.
    Vxu,
    /// A QBP the IIS answered with this patient's record (Z32).
    Qbp,
    /// The patient's records were merged: memberships follow the survivor.
    Merge,
    /// A reviewer moved the Authorized User's record to this patient.
    Relink,
    /// A FHIR `Patient/$match` the IIS answered with this patient as the
    /// one certain match.
    FhirMatch,
    /// The Authorized User added the patient itself (`Group/$member-add`),
    /// on the relationship named in [`Evidence::basis`].
    MemberAdd,
}

/// Why a patient is in a Group: the message, the certainty, the time and
/// the rules that applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// Our id of the message (VXU) or the query's MSH-10 (QBP); for merges
    /// and relinks, the source record that moved.
    pub message: String,
    pub certainty: Certainty,
    /// When the relationship was established (the message's processing).
    pub at: i64,
    /// The jurisdiction policy version that admitted it.
    pub policy: String,
    /// For merges: the person whose memberships moved here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_person: Option<String>,
    /// For a client's own add: the relationship the registry found for it
    /// (a VXU, a query) or the client's attestation, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub person: String,
    pub active: bool,
    /// When the current (or last) membership began.
    pub added_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_because: Option<String>,
    /// The evidence that first added the patient, and the newest.
    pub first: Evidence,
    pub latest: Evidence,
}

/// The person's side: which Groups the person is (or was) in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonGroup {
    pub group: String,
    pub active: bool,
    pub at: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Counter {
    active: i64,
}

/// What [`Groups::add`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// Newly a member (or a member again), and, under single association,
    /// removed from these Groups.
    Joined { left: Vec<String> },
    /// Already a member: at most the newest evidence was recorded.
    AlreadyMember,
    /// The evidence predates the patient's removal from this Group, or a
    /// newer relationship with another Group stands (single association):
    /// nothing changed.
    Stale,
}

#[derive(Clone)]
pub struct Groups {
    pub(super) store: Arc<dyn ItemStore>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Groups")
    }
}

fn shard_of(person: &str) -> u8 {
    let h = keys::short_hash(person.as_bytes());
    u8::from_str_radix(&h[..2], 16).unwrap_or(0) % COUNTER_SHARDS
}

/// The write that creates a new Group (for an Authorized User's onboarding
/// transaction).
pub fn create_group(group: &GroupRecord) -> Result<Write, StoreError> {
    Ok(Write::Put {
        item: Item::new(keys::group(&group.id), encode(group)?),
        cond: Condition::Absent,
    })
}

impl Groups {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Groups { store }
    }

    pub async fn get(&self, id: &str) -> Result<Option<GroupRecord>, StoreError> {
        match self.store.get(&keys::group(id)).await? {
            Some(item) => decode(&item, "group").map(Some),
            None => Ok(None),
        }
    }

    /// Active members, from the counters (a few reads, whatever the size).
    pub async fn quantity(&self, id: &str) -> Result<u64, StoreError> {
        let page = self
            .store
            .query(
                &keys::group_pk(id),
                QueryOpts::new(Index::Table, SkRange::Prefix(keys::COUNTER_PREFIX.into()))
                    .limit(u32::from(COUNTER_SHARDS)),
            )
            .await?;
        let mut total = 0i64;
        for item in &page.items {
            total += decode::<Counter>(item, "group counter")?.active;
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// One page of members (active and removed), in person id order.
    pub async fn members(
        &self,
        id: &str,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<Member>, Option<Cursor>), StoreError> {
        let page = self
            .store
            .query(
                &keys::group_pk(id),
                QueryOpts::new(Index::Table, SkRange::Prefix(keys::MEMBER_PREFIX.into()))
                    .limit(limit.max(1))
                    .after(after),
            )
            .await?;
        let members = page
            .items
            .iter()
            .map(|i| decode(i, "group member"))
            .collect::<Result<Vec<Member>, _>>()?;
        Ok((members, page.next))
    }

    pub async fn member(&self, id: &str, person: &str) -> Result<Option<Member>, StoreError> {
        match self.store.get(&keys::group_member(id, person)).await? {
            Some(item) => decode(&item, "group member").map(Some),
            None => Ok(None),
        }
    }

    /// The Groups a person is or was in.
    pub async fn of_person(&self, person: &str) -> Result<Vec<PersonGroup>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .query(
                    &keys::person_pk(person),
                    QueryOpts::new(
                        Index::Table,
                        SkRange::Prefix(keys::PERSON_GROUP_PREFIX.into()),
                    )
                    .limit(100)
                    .after(cursor),
                )
                .await?;
            for item in &page.items {
                out.push(decode(item, "person group")?);
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Adds the person to the Group on this evidence. Idempotent: the same
    /// evidence again changes nothing. Under single association the person
    /// leaves every other Group in the same transaction.
    pub async fn add(
        &self,
        group: &str,
        person: &str,
        evidence: &Evidence,
        association: Association,
    ) -> Result<Added, StoreError> {
        on_conflict(|| self.try_add(group, person, evidence, association)).await
    }

    async fn try_add(
        &self,
        group: &str,
        person: &str,
        evidence: &Evidence,
        association: Association,
    ) -> Result<Added, StoreError> {
        let key = keys::group_member(group, person);
        let stored = self.store.get(&key).await?;
        let mut writes = Vec::new();
        let member = match &stored {
            Some(item) => {
                let mut m: Member = decode(item, "group member")?;
                if m.active {
                    if evidence.at > m.latest.at && evidence.message != m.latest.message {
                        m.latest = evidence.clone();
                        self.store
                            .put(
                                Item::new(key, encode(&m)?),
                                Condition::Version(item.version),
                            )
                            .await?;
                    }
                    return Ok(Added::AlreadyMember);
                }
                if evidence.at <= m.removed_at.unwrap_or(i64::MIN) {
                    return Ok(Added::Stale);
                }
                m.active = true;
                m.added_at = evidence.at;
                m.removed_at = None;
                m.removed_because = None;
                m.latest = evidence.clone();
                m
            }
            None => Member {
                person: person.to_owned(),
                active: true,
                added_at: evidence.at,
                removed_at: None,
                removed_because: None,
                first: evidence.clone(),
                latest: evidence.clone(),
            },
        };
        let mut left = Vec::new();
        if association == Association::Single {
            for other in self.of_person(person).await? {
                if !other.active || other.group == group {
                    continue;
                }
                let Some(item) = self
                    .store
                    .get(&keys::group_member(&other.group, person))
                    .await?
                else {
                    continue;
                };
                let mut m: Member = decode(&item, "group member")?;
                if m.latest.at > evidence.at {
                    // The other relationship is newer: it wins.
                    return Ok(Added::Stale);
                }
                m.active = false;
                m.removed_at = Some(evidence.at);
                m.removed_because = Some(format!(
                    "single association: the patient joined Group {group}"
                ));
                writes.push(Write::Put {
                    item: Item::new(keys::group_member(&other.group, person), encode(&m)?),
                    cond: Condition::Version(item.version),
                });
                writes.push(self.person_group(person, &other.group, false, evidence.at)?);
                writes.push(self.count(&other.group, person, -1).await?);
                left.push(other.group);
            }
        }
        writes.push(Write::Put {
            item: Item::new(key, encode(&member)?),
            cond: stored
                .as_ref()
                .map_or(Condition::Absent, |i| Condition::Version(i.version)),
        });
        writes.push(self.person_group(person, group, true, evidence.at)?);
        writes.push(self.count(group, person, 1).await?);
        self.store.transact(writes).await?;
        Ok(Added::Joined { left })
    }

    /// Ends every active membership of the Group (the Bulk Retrieval of
    /// Public Health Data guide's reset, for Authorized Users that
    /// re-establish their panel each cycle), in pages. Returns how many
    /// left; on a store failure, how many had left before it, with it (the
    /// reset can be run again to finish).
    pub async fn reset(
        &self,
        group: &str,
        at: i64,
        because: &str,
    ) -> Result<u64, (u64, StoreError)> {
        const PAGE: u32 = 500;
        let mut removed = 0u64;
        let mut cursor = None;
        loop {
            let (page, next) = self
                .members(group, cursor, PAGE)
                .await
                .map_err(|e| (removed, e))?;
            for m in page.iter().filter(|m| m.active) {
                if self
                    .remove(group, &m.person, at, because)
                    .await
                    .map_err(|e| (removed, e))?
                {
                    removed += 1;
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(removed),
            }
        }
    }

    /// Ends a membership (merge, moved evidence). Returns whether it was
    /// active.
    pub async fn remove(
        &self,
        group: &str,
        person: &str,
        at: i64,
        because: &str,
    ) -> Result<bool, StoreError> {
        on_conflict(|| async move {
            let key = keys::group_member(group, person);
            let Some(item) = self.store.get(&key).await? else {
                return Ok(false);
            };
            let mut m: Member = decode(&item, "group member")?;
            if !m.active {
                return Ok(false);
            }
            m.active = false;
            m.removed_at = Some(at.max(m.added_at));
            m.removed_because = Some(because.to_owned());
            let writes = vec![
                Write::Put {
                    item: Item::new(key, encode(&m)?),
                    cond: Condition::Version(item.version),
                },
                self.person_group(person, group, false, at)?,
                self.count(group, person, -1).await?,
            ];
            self.store.transact(writes).await?;
            Ok(true)
        })
        .await
    }

    fn person_group(
        &self,
        person: &str,
        group: &str,
        active: bool,
        at: i64,
    ) -> Result<Write, StoreError> {
        Ok(Write::Put {
            item: Item::new(
                keys::person_group(person, group),
                encode(&PersonGroup {
                    group: group.to_owned(),
                    active,
                    at,
                })?,
            ),
            cond: Condition::None,
        })
    }

    async fn count(&self, group: &str, person: &str, delta: i64) -> Result<Write, StoreError> {
        let key = keys::group_counter(group, shard_of(person));
        let stored = self.store.get(&key).await?;
        let mut c: Counter = match &stored {
            Some(item) => decode(item, "group counter")?,
            None => Counter::default(),
        };
        c.active += delta;
        Ok(Write::Put {
            item: Item::new(key, encode(&c)?),
            cond: stored
                .as_ref()
                .map_or(Condition::Absent, |i| Condition::Version(i.version)),
        })
    }
}
