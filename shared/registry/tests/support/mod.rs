//! The registry the patient and query tests share: an embedded store in a
//! temporary directory and two clinics, FACA and FACB.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use registry::{AuKind, AuthorizedUser, AuthorizedUsers, NewAuthorizedUser};
use store::embedded::EmbeddedStore;
use store::ItemStore;

pub struct TwoClinics {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn ItemStore>,
    pub clinic_a: AuthorizedUser,
    pub clinic_b: AuthorizedUser,
}

pub async fn two_clinics() -> TwoClinics {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ItemStore> =
        Arc::new(EmbeddedStore::open(dir.path().join("iis.redb")).unwrap());
    let users = AuthorizedUsers::new(store.clone());
    let clinic = |id: &str, facility: &str| {
        users.add(
            NewAuthorizedUser {
                id: id.into(),
                kind: AuKind::Clinic,
                name: id.into(),
                facilities: vec![facility.into()],
                username: id.into(),
                password: "a long enough password".into(),
            },
            0,
        )
    };
    let clinic_a = clinic("clinic-a", "FACA").await.unwrap();
    let clinic_b = clinic("clinic-b", "FACB").await.unwrap();
    TwoClinics {
        dir,
        store,
        clinic_a,
        clinic_b,
    }
}
