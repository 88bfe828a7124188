//! An Authorized User's Group comes into being with the user: at onboarding,
//! in the user's own transaction, when the policy gives its kind a Group (so
//! its id can be shared then), or on the first eligible message of a user
//! onboarded before the policy gave its kind one.

use store::{StoreError, Write};

use super::groups::{create_group, GroupRecord, Groups};
use super::policy::JurisdictionPolicy;
use crate::authorized_user::{AuError, AuthorizedUser, AuthorizedUsers, NewAuthorizedUser};

/// Group ids are shared out of band and typed by people: random, so they
/// say nothing about the Authorized User or the order of onboarding.
fn new_group_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn group_of(au: &AuthorizedUser, group: &str, now_ms: i64) -> GroupRecord {
    GroupRecord {
        id: group.to_owned(),
        au: au.id.clone(),
        name: format!("Patients of {}", au.name),
        created_at: now_ms,
    }
}

/// Creates an Authorized User and, when the policy gives its kind a Group,
/// its Group in the same transaction, so the Group id can be shared at
/// onboarding.
pub async fn onboard(
    users: &AuthorizedUsers,
    new: NewAuthorizedUser,
    now: i64,
    policy: &JurisdictionPolicy,
) -> Result<AuthorizedUser, AuError> {
    if !policy.gives_group(new.kind) {
        return users.add(new, now).await;
    }
    let group = new_group_id();
    users
        .add_with(new, now, Some(&group), |au| {
            Ok(vec![create_group(&group_of(au, &group, now * 1000))?])
        })
        .await
}

impl Groups {
    /// The Authorized User's Group id, creating the Group if the user has
    /// none yet (a user onboarded before the policy gave its kind a Group).
    pub async fn ensure_group(
        &self,
        users: &AuthorizedUsers,
        id: &str,
        now_ms: i64,
    ) -> Result<String, AuError> {
        let mut last = None;
        for _ in 0..crate::retry::MAX_ATTEMPTS {
            let au = users
                .get(id)
                .await?
                .ok_or_else(|| AuError::NotFound(id.to_owned()))?;
            if let Some(g) = &au.group {
                return Ok(g.clone());
            }
            let group = new_group_id();
            let writes: Vec<Write> = vec![
                users.group_assignment(&au, &group)?,
                create_group(&group_of(&au, &group, now_ms))?,
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(group),
                Err(e) if crate::retry::is_conflict(&e) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuError::Store(
            last.unwrap_or(StoreError::Other("retries exhausted".into())),
        ))
    }
}
