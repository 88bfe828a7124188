//! Writing a Group export: pages through the Group's member items (never a
//! scan), renders each member's Patient and Immunizations as the exporting
//! Authorized User may see them, and streams NDJSON files through the blob
//! port, one resource type per file, rotated at a line limit. Nothing holds
//! a whole file or a whole Group in memory.
//!
//! Time semantics (documented for clients): `transactionTime` is when the
//! export started. A patient is exported if its record last changed at or
//! before it (a record changed later is left for the next `_since` export,
//! which will include it, so chained exports never repeat nor miss a
//! change). With `_since`, a member is exported if its record changed after
//! `_since` or it joined the Group after `_since` (then with all its data);
//! members who left the Group in that interval are reported as deleted.

use serde_json::{json, Value};
use store::{BlobStore, BlobUpload, StoreError};

use super::elements::{subset, wanted};
use super::request::{ExportRequest, ResourceType};
use crate::authorized_user::AuthorizedUser;
use crate::membership::{GroupRecord, Groups, Member};
use crate::patients::{PatientMatching, PersonStatus};
use crate::resources;

/// Members read per page.
const PAGE: u32 = 500;

/// What to export and where.
#[derive(Clone, Debug)]
pub struct ExportSpec {
    /// Blob key prefix of this export's files (`exports/<job id>`).
    pub prefix: String,
    pub au: AuthorizedUser,
    pub group: GroupRecord,
    pub request: ExportRequest,
    /// Epoch ms: the export's `transactionTime`.
    pub transaction_time_ms: i64,
    pub identifier_base: String,
    /// Lines per file before a new file is started.
    pub max_lines_per_file: u64,
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputFile {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub key: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportFiles {
    pub output: Vec<OutputFile>,
    /// Bundles of DELETE entries for members who left the Group.
    pub deleted: Vec<OutputFile>,
    /// OperationOutcomes: parameters ignored under lenient handling.
    #[serde(default)]
    pub error: Vec<OutputFile>,
}

/// One resource type's files: opened on the first line, rotated at the limit.
struct TypeWriter {
    resource_type: &'static str,
    prefix: String,
    limit: u64,
    current: Option<(Box<dyn BlobUpload>, String, u64)>,
    done: Vec<OutputFile>,
}

impl TypeWriter {
    fn new(resource_type: &'static str, prefix: &str, limit: u64) -> Self {
        TypeWriter {
            resource_type,
            prefix: prefix.to_owned(),
            limit: limit.max(1),
            current: None,
            done: Vec::new(),
        }
    }

    async fn line(&mut self, blobs: &dyn BlobStore, json: &[u8]) -> Result<(), StoreError> {
        self.begin_line(blobs).await?;
        self.append(json).await?;
        self.end_line().await
    }

    /// Starts a line (a new file when the current one is full).
    async fn begin_line(&mut self, blobs: &dyn BlobStore) -> Result<(), StoreError> {
        if self
            .current
            .as_ref()
            .is_some_and(|(_, _, n)| *n >= self.limit)
        {
            self.finish_file().await?;
        }
        if self.current.is_none() {
            let key = format!(
                "{}/{}.{:03}.ndjson",
                self.prefix,
                self.resource_type,
                self.done.len() + 1
            );
            let upload = blobs.begin(&key, "application/fhir+ndjson").await?;
            self.current = Some((upload, key, 0));
        }
        Ok(())
    }

    async fn append(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        match &mut self.current {
            Some((upload, _, _)) => upload.write(bytes).await,
            None => Err(StoreError::Other("no line started".into())),
        }
    }

    async fn end_line(&mut self) -> Result<(), StoreError> {
        self.append(b"\n").await?;
        if let Some((_, _, n)) = &mut self.current {
            *n += 1;
        }
        Ok(())
    }

    async fn finish_file(&mut self) -> Result<(), StoreError> {
        if let Some((upload, key, count)) = self.current.take() {
            upload.complete().await?;
            self.done.push(OutputFile {
                resource_type: self.resource_type.to_owned(),
                key,
                count,
            });
        }
        Ok(())
    }

    async fn abort(&mut self) {
        if let Some((upload, _, _)) = self.current.take() {
            let _ = upload.abort().await;
        }
    }
}

fn encode(v: &Value) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Other(e.to_string()))
}

/// Renders `resource` (of type `t`) as one NDJSON line, cut to `_elements`.
fn render<T: serde::Serialize>(
    t: ResourceType,
    r: &T,
    req: &ExportRequest,
) -> Result<Vec<u8>, StoreError> {
    let v = serde_json::to_value(r).map_err(|e| StoreError::Other(e.to_string()))?;
    let v = match wanted(t, &req.elements) {
        Some(keep) => subset(t, v, &keep),
        None => v,
    };
    encode(&v)
}

fn wants(req: &ExportRequest, t: ResourceType) -> bool {
    req.types.is_empty() || req.types.contains(&t)
}

/// Writes every file of the export. On error, files in progress are aborted
/// and files already written are left for the caller to delete by prefix.
pub async fn write_export(
    patients: &PatientMatching,
    groups: &Groups,
    blobs: &dyn BlobStore,
    spec: &ExportSpec,
) -> Result<ExportFiles, StoreError> {
    let mut w = Writers {
        patient: TypeWriter::new("Patient", &spec.prefix, spec.max_lines_per_file),
        immunization: TypeWriter::new("Immunization", &spec.prefix, spec.max_lines_per_file),
        group: TypeWriter::new("Group", &spec.prefix, spec.max_lines_per_file),
        organization: TypeWriter::new("Organization", &spec.prefix, spec.max_lines_per_file),
        deleted: TypeWriter::new(
            "Bundle",
            &format!("{}/deleted", spec.prefix),
            spec.max_lines_per_file,
        ),
    };
    match write_all(patients, groups, blobs, spec, &mut w).await {
        Ok(()) => {
            let mut files = ExportFiles::default();
            for t in [
                &mut w.patient,
                &mut w.immunization,
                &mut w.group,
                &mut w.organization,
            ] {
                t.finish_file().await?;
                files.output.append(&mut t.done);
            }
            w.deleted.finish_file().await?;
            files.deleted.append(&mut w.deleted.done);
            files.error = write_ignored(blobs, spec).await?;
            Ok(files)
        }
        Err(e) => {
            for t in [
                &mut w.patient,
                &mut w.immunization,
                &mut w.group,
                &mut w.organization,
                &mut w.deleted,
            ] {
                t.abort().await;
            }
            Err(e)
        }
    }
}

/// Parameters ignored under `Prefer: handling=lenient`, as the manifest's
/// `error` file of OperationOutcomes.
async fn write_ignored(
    blobs: &dyn BlobStore,
    spec: &ExportSpec,
) -> Result<Vec<OutputFile>, StoreError> {
    if spec.request.ignored.is_empty() {
        return Ok(Vec::new());
    }
    let mut w = TypeWriter::new(
        "OperationOutcome",
        &format!("{}/error", spec.prefix),
        spec.max_lines_per_file,
    );
    for p in &spec.request.ignored {
        let outcome = fhir::OperationOutcome::single(
            "warning",
            "not-supported",
            format!("ignored (Prefer: handling=lenient): {}", p.message),
        );
        let line = serde_json::to_vec(&outcome).map_err(|e| StoreError::Other(e.to_string()))?;
        w.line(blobs, &line).await?;
    }
    w.finish_file().await?;
    Ok(w.done)
}

struct Writers {
    patient: TypeWriter,
    immunization: TypeWriter,
    group: TypeWriter,
    organization: TypeWriter,
    deleted: TypeWriter,
}

async fn write_all(
    patients: &PatientMatching,
    groups: &Groups,
    blobs: &dyn BlobStore,
    spec: &ExportSpec,
    w: &mut Writers,
) -> Result<(), StoreError> {
    let req = &spec.request;
    let t = spec.transaction_time_ms;
    let since = req.since_ms;
    let base = &spec.identifier_base;
    if wants(req, ResourceType::Organization) {
        let org = resources::organization(&spec.au, base);
        w.organization
            .line(blobs, &render(ResourceType::Organization, &org, req)?)
            .await?;
    }
    let write_group = wants(req, ResourceType::Group);
    let mut group_members = 0u64;
    if write_group {
        // The Group's line is streamed member by member: a Group of any
        // size is never held in memory. Its `quantity` is the members listed.
        w.group.begin_line(blobs).await?;
        let mut head =
            serde_json::to_value(resources::group(&spec.group, &spec.au, 0, &[], false, base))
                .map_err(|e| StoreError::Other(e.to_string()))?;
        if let Some(o) = head.as_object_mut() {
            o.remove("quantity");
            o.remove("member");
        }
        let head = encode(&head)?;
        // Reopen the object to append members (the array opens with the
        // first one: FHIR JSON has no empty arrays).
        w.group.append(&head[..head.len() - 1]).await?;
    }
    let mut cursor = None;
    loop {
        let (page, next) = groups.members(&spec.group.id, cursor, PAGE).await?;
        for m in &page {
            member(
                patients,
                blobs,
                spec,
                w,
                m,
                since,
                t,
                write_group,
                &mut group_members,
            )
            .await?;
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if write_group {
        if group_members > 0 {
            w.group.append(b"]").await?;
        }
        w.group
            .append(format!(",\"quantity\":{group_members}}}").as_bytes())
            .await?;
        w.group.end_line().await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn member(
    patients: &PatientMatching,
    blobs: &dyn BlobStore,
    spec: &ExportSpec,
    w: &mut Writers,
    m: &Member,
    since: Option<i64>,
    t: i64,
    write_group: bool,
    group_members: &mut u64,
) -> Result<(), StoreError> {
    let req = &spec.request;
    if !m.active {
        // Left the Group: reported as deleted when it happened in the window.
        if let (Some(since), Some(removed)) = (since, m.removed_at) {
            if removed > since && removed <= t && wants(req, ResourceType::Patient) {
                let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"request": {"method": "DELETE", "url": format!("Patient/{}", resources::fhir_id(&m.person))}}
                ]});
                w.deleted.line(blobs, &encode(&bundle)?).await?;
            }
        }
        return Ok(());
    }
    if m.added_at > t {
        return Ok(());
    }
    if !req.patients.is_empty() && !req.patients.contains(&m.person) {
        return Ok(());
    }
    let Some(person) = patients.person(&m.person).await? else {
        return Ok(());
    };
    if person.status == PersonStatus::Merged || person.updated_at > t {
        return Ok(());
    }
    if person.demographics.protected.value == Some(true)
        && !patients.reported_by(&person.id, &spec.au.id).await?
    {
        return Ok(());
    }
    if write_group {
        let entry = serde_json::to_vec(&resources::group_member(m))
            .map_err(|e| StoreError::Other(e.to_string()))?;
        w.group
            .append(if *group_members == 0 {
                b",\"member\":[" as &[u8]
            } else {
                b","
            })
            .await?;
        w.group.append(&entry).await?;
        *group_members += 1;
    }
    let changed = since.is_none_or(|s| person.updated_at > s || m.added_at > s);
    if !changed {
        return Ok(());
    }
    if wants(req, ResourceType::Patient) {
        let theirs = patients.identifiers_from(&person.id, &spec.au.id).await?;
        let p = resources::patient(&person, &theirs, &spec.identifier_base);
        w.patient
            .line(blobs, &render(ResourceType::Patient, &p, req)?)
            .await?;
    }
    if wants(req, ResourceType::Immunization) {
        let mut history = patients.history(&person.id).await?;
        history.sort_by_key(|i| (i.order.administered, i.id.clone()));
        for imm in &history {
            let r = resources::immunization(&person.id, imm, &spec.identifier_base);
            w.immunization
                .line(blobs, &render(ResourceType::Immunization, &r, req)?)
                .await?;
        }
    }
    Ok(())
}
