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

use std::io::Write as _;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use store::{BlobStore, BlobUpload, StoreError};
use tokio::io::AsyncReadExt;

use super::elements::{subset, wanted};
use super::request::{ExportRequest, ResourceType};
use super::type_filter;
use crate::authorized_user::AuthorizedUser;
use crate::membership::{GroupRecord, Groups, Member};
use crate::persons::{PersonStatus, Persons};
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
    /// The CDSi release ImmunizationRecommendation lines use (`None`: built in).
    pub cdsi_data: Option<std::sync::Arc<cdsi::SupportingData>>,
}

impl ExportSpec {
    /// The supporting data the export's forecasts use.
    fn supporting_data(&self) -> Result<&cdsi::SupportingData, StoreError> {
        match &self.cdsi_data {
            Some(d) => Ok(d),
            None => {
                cdsi::builtin().map_err(|e| StoreError::Other(format!("CDSi supporting data: {e}")))
            }
        }
    }

    /// The day forecasts are made as of: the transaction time's (UTC) date.
    fn forecast_date(&self) -> Result<cdsi::Date, StoreError> {
        let day = iz::Clock::at(self.transaction_time_ms.div_euclid(1000)).today();
        cdsi::Date::new(i32::from(day.year), day.month, day.day)
            .ok_or_else(|| StoreError::Other("the export's transaction time has no date".into()))
    }
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputFile {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub key: String,
    pub count: u64,
    /// Stored gzip-compressed (files written before compression are not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gzip: bool,
}

/// A written file's NDJSON, inflated if it is stored compressed. Whole in
/// memory: for tests and small tools (the API streams instead).
pub async fn read_file(blobs: &dyn BlobStore, file: &OutputFile) -> Result<Vec<u8>, StoreError> {
    let Some((mut reader, _)) = blobs.get(&file.key).await? else {
        return Err(StoreError::Other(format!("{} is missing", file.key)));
    };
    let mut stored = Vec::new();
    reader
        .read_to_end(&mut stored)
        .await
        .map_err(|e| StoreError::Other(format!("reading {}: {e}", file.key)))?;
    if !file.gzip {
        return Ok(stored);
    }
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&stored[..]), &mut plain)
        .map_err(|e| StoreError::Other(format!("inflating {}: {e}", file.key)))?;
    Ok(plain)
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

/// Bytes gathered before they are handed to the upload: one blob write per
/// few hundred lines instead of two per line (each is a boxed future, and a
/// hop to a blocking thread for a file).
const BATCH_BYTES: usize = 256 * 1024;

/// One resource type's files: opened on the first line, rotated at the limit.
struct TypeWriter {
    resource_type: &'static str,
    prefix: String,
    limit: u64,
    current: Option<(Box<dyn BlobUpload>, String, u64)>,
    /// Lines of the current file not yet written to its upload.
    batch: Vec<u8>,
    done: Vec<OutputFile>,
    /// Files are stored gzip-compressed (every file a client downloads:
    /// NDJSON deflates about tenfold, so storage, S3 transfer and download
    /// shrink alike).
    gzip: bool,
    /// The current file's gzip stream, fed a batch at a time.
    encoder: Option<GzEncoder<Vec<u8>>>,
    /// Inside a block of lines that must stay in one file (a patient's,
    /// with `organizeOutputBy=Patient`): the file is not rotated mid-block.
    in_block: bool,
}

/// The internal type name of files organized by patient (several resource
/// types each; the manifest lists them without a `type`).
pub const BY_PATIENT: &str = "ByPatient";

/// Fast deflate: the export is CPU-bound already, and level 1 keeps most of
/// the gain on repetitive JSON.
const GZIP_LEVEL: u32 = 1;

impl TypeWriter {
    fn new(resource_type: &'static str, prefix: &str, limit: u64) -> Self {
        TypeWriter {
            resource_type,
            prefix: prefix.to_owned(),
            limit: limit.max(1),
            current: None,
            batch: Vec::new(),
            done: Vec::new(),
            gzip: true,
            encoder: None,
            in_block: false,
        }
    }

    /// Starts a block of lines kept in one file: the file may be rotated
    /// here, never until [`TypeWriter::end_block`].
    async fn begin_block(&mut self, blobs: &dyn BlobStore) -> Result<(), StoreError> {
        self.in_block = false;
        self.begin_line(blobs).await?;
        self.in_block = true;
        Ok(())
    }

    fn end_block(&mut self) {
        self.in_block = false;
    }

    /// Files kept uncompressed (internal parts read back by the export).
    fn plain(mut self) -> Self {
        self.gzip = false;
        self
    }

    async fn line(&mut self, blobs: &dyn BlobStore, json: &[u8]) -> Result<(), StoreError> {
        self.begin_line(blobs).await?;
        self.append(json).await?;
        self.end_line().await
    }

    /// One resource of type `t` as a line, rendered straight into the batch.
    async fn resource<T: serde::Serialize>(
        &mut self,
        blobs: &dyn BlobStore,
        t: ResourceType,
        resource: &T,
        req: &ExportRequest,
    ) -> Result<(), StoreError> {
        self.begin_line(blobs).await?;
        match wanted(t, &req.elements) {
            Some(keep) => {
                let v = serde_json::to_value(resource).map_err(json_err)?;
                serde_json::to_writer(&mut self.batch, &subset(t, v, &keep))
            }
            None => serde_json::to_writer(&mut self.batch, resource),
        }
        .map_err(json_err)?;
        self.end_line().await
    }

    /// Starts a line (a new file when the current one is full).
    async fn begin_line(&mut self, blobs: &dyn BlobStore) -> Result<(), StoreError> {
        if !self.in_block
            && self
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
            let upload = if self.gzip {
                self.encoder = Some(GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL)));
                blobs
                    .begin_encoded(&key, "application/fhir+ndjson", "gzip")
                    .await?
            } else {
                blobs.begin(&key, "application/fhir+ndjson").await?
            };
            self.current = Some((upload, key, 0));
        }
        Ok(())
    }

    async fn append(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if self.current.is_none() {
            return Err(StoreError::Other("no line started".into()));
        }
        self.batch.extend_from_slice(bytes);
        // A Group's one line is far bigger than a batch: written as it grows.
        if self.batch.len() >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands the batch to the upload (through the gzip stream, if any).
    async fn flush(&mut self) -> Result<(), StoreError> {
        if let Some((upload, _, _)) = &mut self.current {
            if !self.batch.is_empty() {
                match &mut self.encoder {
                    Some(gz) => {
                        gz.write_all(&self.batch).map_err(deflate_err)?;
                        let deflated = std::mem::take(gz.get_mut());
                        if !deflated.is_empty() {
                            upload.write(&deflated).await?;
                        }
                    }
                    None => upload.write(&self.batch).await?,
                }
            }
        }
        self.batch.clear();
        Ok(())
    }

    async fn end_line(&mut self) -> Result<(), StoreError> {
        self.append(b"\n").await?;
        self.counted();
        Ok(())
    }

    /// Counts the line just written.
    fn counted(&mut self) {
        if let Some((_, _, n)) = &mut self.current {
            *n += 1;
        }
    }

    async fn finish_file(&mut self) -> Result<(), StoreError> {
        self.flush().await?;
        if let Some((mut upload, key, count)) = self.current.take() {
            if let Some(gz) = self.encoder.take() {
                let tail = gz.finish().map_err(deflate_err)?;
                upload.write(&tail).await?;
            }
            upload.complete().await?;
            self.done.push(OutputFile {
                resource_type: self.resource_type.to_owned(),
                key,
                count,
                gzip: self.gzip,
            });
        }
        Ok(())
    }

    async fn abort(&mut self) {
        self.batch = Vec::new();
        self.encoder = None;
        if let Some((upload, _, _)) = self.current.take() {
            let _ = upload.abort().await;
        }
    }
}

fn encode(v: &Value) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Other(e.to_string()))
}

fn wants(req: &ExportRequest, t: ResourceType) -> bool {
    if req.types.is_empty() {
        ResourceType::DEFAULT.contains(&t)
    } else {
        req.types.contains(&t)
    }
}

fn deflate_err(e: std::io::Error) -> StoreError {
    StoreError::Other(format!("gzip: {e}"))
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Other(e.to_string())
}

/// What one shard wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardFiles {
    pub output: Vec<OutputFile>,
    pub deleted: Vec<OutputFile>,
    /// The shard's slice of the Group's `member` array (comma-separated
    /// entries, no brackets), joined into the Group line when all are done.
    pub members: Option<OutputFile>,
}

/// Writes one shard's files: the Patients, Immunizations, forecasts and deletions of
/// the members it is given, plus its slice of the Group's member list.
/// Files live under `<job prefix>/s<NNN>/`, so a retried shard replaces its
/// own files and never duplicates a line.
pub struct ShardWriter {
    /// `organizeOutputBy=Patient`: every patient's resources, in blocks.
    by_patient: TypeWriter,
    patient: TypeWriter,
    immunization: TypeWriter,
    recommendation: TypeWriter,
    provenance: TypeWriter,
    deleted: TypeWriter,
    members: TypeWriter,
    write_group: bool,
}

impl std::fmt::Debug for ShardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardWriter")
    }
}

/// The Provenance of an exported Immunization, when the export asks for
/// Provenance.
fn immunization_provenance(
    req: &ExportRequest,
    imm: &crate::persons::Immunization,
    data: &MemberData,
    base: &str,
) -> Option<fhir::Provenance> {
    if !req.wants_provenance() {
        return None;
    }
    crate::provenance::immunization_provenance(imm, data.person.updated_at, base)
}

/// The blob prefix of one shard's files.
pub fn shard_prefix(job_prefix: &str, shard: u32) -> String {
    format!("{job_prefix}/s{shard:03}")
}

/// What the export owes for one member item, read before it is written
/// (a shard reads a page of members concurrently, then writes in order).
#[derive(Debug)]
pub enum Owed {
    Nothing,
    /// Left the Group within the `_since` window: a DELETE Bundle.
    Deleted(String),
    /// Listed in the Group; `data` when its resources are due too.
    Member {
        member: Box<Member>,
        data: Option<Box<MemberData>>,
    },
}

#[derive(Debug)]
pub struct MemberData {
    pub person: crate::persons::Person,
    /// The reading Authorized User's identifiers, when Patient is exported.
    pub identifiers: Option<Vec<iz::view::Identifier>>,
    /// Sorted by date; empty when Immunization is not exported.
    pub history: Vec<crate::persons::Immunization>,
    /// The forecast, when ImmunizationRecommendation is exported and the
    /// registry holds the birth date it needs.
    pub recommendation: Option<fhir::ImmunizationRecommendation>,
    /// Where the Patient came from, when Provenance and Patient are
    /// exported (its charts are read here, in the read phase).
    pub patient_provenance: Option<fhir::Provenance>,
}

/// Reads what the export owes for member `m` (no writing).
pub async fn owed(patients: &Persons, spec: &ExportSpec, m: &Member) -> Result<Owed, StoreError> {
    let req = &spec.request;
    let t = spec.transaction_time_ms;
    let since = req.since_ms;
    if !m.active {
        if let (Some(since), Some(removed)) = (since, m.removed_at) {
            if removed > since && removed <= t && wants(req, ResourceType::Patient) {
                return Ok(Owed::Deleted(m.person.clone()));
            }
        }
        return Ok(Owed::Nothing);
    }
    if m.added_at > t || (!req.patients.is_empty() && !req.patients.contains(&m.person)) {
        return Ok(Owed::Nothing);
    }
    // One query for the whole partition: profile, source links, history.
    let with_recommendation = wants(req, ResourceType::ImmunizationRecommendation);
    let with_history = wants(req, ResourceType::Immunization) || with_recommendation;
    let Some(record) = patients.person_record(&m.person, with_history).await? else {
        return Ok(Owed::Nothing);
    };
    let person = &record.person;
    if person.status == PersonStatus::Merged || person.updated_at > t {
        return Ok(Owed::Nothing);
    }
    if person.demographics.protected.value == Some(true)
        && !patients
            .reported_among(&record.sources, &spec.au.id)
            .await?
    {
        return Ok(Owed::Nothing);
    }
    let changed = since.is_none_or(|s| person.updated_at > s || m.added_at > s);
    if !changed {
        return Ok(Owed::Member {
            member: Box::new(m.clone()),
            data: None,
        });
    }
    let identifiers = if wants(req, ResourceType::Patient) {
        Some(
            patients
                .identifiers_among(&record.sources, &spec.au.id)
                .await?,
        )
    } else {
        None
    };
    let mut history = record.history()?;
    history.sort_by_key(|i| (i.order.administered, i.id.clone()));
    // Forecast here, in the concurrent read phase (about 0.1 ms a child),
    // so a shard writes in member order without waiting on the engine.
    let recommendation = if with_recommendation {
        crate::immds::person_recommendation(
            spec.supporting_data()?,
            &record.person,
            &history,
            spec.forecast_date()?,
        )
    } else {
        None
    };
    if !wants(req, ResourceType::Immunization) {
        history.clear();
    }
    let patient_provenance = if req.wants_provenance() && identifiers.is_some() {
        let mut sources = Vec::with_capacity(record.sources.len());
        for sid in &record.sources {
            if let Some(s) = patients.source(sid).await? {
                sources.push(s);
            }
        }
        crate::provenance::patient_provenance(&record.person, &sources, &spec.identifier_base)
    } else {
        None
    };
    Ok(Owed::Member {
        member: Box::new(m.clone()),
        data: Some(Box::new(MemberData {
            person: record.person,
            identifiers,
            history,
            recommendation,
            patient_provenance,
        })),
    })
}

impl ShardWriter {
    pub fn new(spec: &ExportSpec, shard: u32) -> Self {
        let prefix = shard_prefix(&spec.prefix, shard);
        let lines = spec.max_lines_per_file;
        ShardWriter {
            by_patient: TypeWriter::new(BY_PATIENT, &prefix, lines),
            patient: TypeWriter::new("Patient", &prefix, lines),
            immunization: TypeWriter::new("Immunization", &prefix, lines),
            recommendation: TypeWriter::new("ImmunizationRecommendation", &prefix, lines),
            provenance: TypeWriter::new("Provenance", &prefix, lines),
            deleted: TypeWriter::new("Bundle", &format!("{prefix}/deleted"), lines),
            // One part file whatever its length: it is joined, not served.
            members: TypeWriter::new("GroupMembers", &prefix, u64::MAX).plain(),
            write_group: wants(&spec.request, ResourceType::Group),
        }
    }

    /// Writes what the export owes for one member item.
    pub async fn member(
        &mut self,
        patients: &Persons,
        blobs: &dyn BlobStore,
        spec: &ExportSpec,
        m: &Member,
    ) -> Result<(), StoreError> {
        let owed = owed(patients, spec, m).await?;
        self.write(blobs, spec, owed).await
    }

    /// Writes what [`owed`] found for one member, in member order.
    pub async fn write(
        &mut self,
        blobs: &dyn BlobStore,
        spec: &ExportSpec,
        owed: Owed,
    ) -> Result<(), StoreError> {
        let req = &spec.request;
        let (member, data) = match owed {
            Owed::Nothing => return Ok(()),
            Owed::Deleted(person) => {
                let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"request": {"method": "DELETE", "url": format!("Patient/{}", resources::fhir_id(&person))}}
                ]});
                return self.deleted.line(blobs, &encode(&bundle)?).await;
            }
            Owed::Member { member, data } => (member, data),
        };
        if self.write_group {
            let entry = serde_json::to_vec(&resources::group_member(&member)).map_err(json_err)?;
            let first = self.members.current.is_none();
            self.members.begin_line(blobs).await?;
            if !first {
                self.members.append(b",").await?;
            }
            self.members.append(&entry).await?;
            // Counted, but no newline: the part is spliced into one line.
            self.members.counted();
        }
        let Some(data) = data else {
            return Ok(());
        };
        if req.organize_by_patient {
            return self.by_patient(blobs, spec, &data).await;
        }
        let filters = &req.type_filters;
        if let Some(theirs) = data
            .identifiers
            .as_ref()
            .filter(|_| type_filter::admits_patient(filters, data.person.updated_at))
        {
            let p = resources::patient(&data.person, theirs, &spec.identifier_base);
            self.patient
                .resource(blobs, ResourceType::Patient, &p, req)
                .await?;
            if let Some(prov) = &data.patient_provenance {
                self.provenance
                    .resource(blobs, ResourceType::Provenance, prov, req)
                    .await?;
            }
        }
        for imm in &data.history {
            let r = resources::immunization(&data.person.id, imm, &spec.identifier_base);
            // Matched on the resource as exported, so a filter sees exactly
            // the codes and dates the client will read.
            if !type_filter::admits_immunization(filters, &r) {
                continue;
            }
            self.immunization
                .resource(blobs, ResourceType::Immunization, &r, req)
                .await?;
            if let Some(prov) = immunization_provenance(req, imm, &data, &spec.identifier_base) {
                self.provenance
                    .resource(blobs, ResourceType::Provenance, &prov, req)
                    .await?;
            }
        }
        if let Some(r) = &data.recommendation {
            self.recommendation
                .resource(blobs, ResourceType::ImmunizationRecommendation, r, req)
                .await?;
        }
        Ok(())
    }

    /// One member's block (`organizeOutputBy=Patient`): a header naming the
    /// patient (a Parameters resource whose `header` parameter references
    /// it), then the Patient, its Immunizations and its forecast, all in
    /// one file. A member with nothing to export gets no block.
    async fn by_patient(
        &mut self,
        blobs: &dyn BlobStore,
        spec: &ExportSpec,
        data: &MemberData,
    ) -> Result<(), StoreError> {
        let req = &spec.request;
        let filters = &req.type_filters;
        let base = &spec.identifier_base;
        let patient = data
            .identifiers
            .as_ref()
            .filter(|_| type_filter::admits_patient(filters, data.person.updated_at))
            .map(|theirs| resources::patient(&data.person, theirs, base));
        let mut provenances: Vec<fhir::Provenance> = Vec::new();
        if patient.is_some() {
            provenances.extend(data.patient_provenance.clone());
        }
        let mut immunizations: Vec<fhir::Immunization> = Vec::new();
        for imm in &data.history {
            let r = resources::immunization(&data.person.id, imm, base);
            if type_filter::admits_immunization(filters, &r) {
                provenances.extend(immunization_provenance(req, imm, data, base));
                immunizations.push(r);
            }
        }
        if patient.is_none() && immunizations.is_empty() && data.recommendation.is_none() {
            return Ok(());
        }
        let w = &mut self.by_patient;
        w.begin_block(blobs).await?;
        let header = json!({"resourceType": "Parameters", "parameter": [{
            "name": "header",
            "valueReference": {"reference": format!("Patient/{}", resources::fhir_id(&data.person.id))},
        }]});
        w.line(blobs, &encode(&header)?).await?;
        if let Some(p) = &patient {
            w.resource(blobs, ResourceType::Patient, p, req).await?;
        }
        for r in &immunizations {
            w.resource(blobs, ResourceType::Immunization, r, req)
                .await?;
        }
        if let Some(r) = &data.recommendation {
            w.resource(blobs, ResourceType::ImmunizationRecommendation, r, req)
                .await?;
        }
        for p in &provenances {
            w.resource(blobs, ResourceType::Provenance, p, req).await?;
        }
        w.end_block();
        Ok(())
    }

    /// Completes the shard's files.
    pub async fn finish(mut self) -> Result<ShardFiles, StoreError> {
        let mut out = ShardFiles::default();
        for t in [
            &mut self.by_patient,
            &mut self.patient,
            &mut self.immunization,
            &mut self.recommendation,
            &mut self.provenance,
        ] {
            t.finish_file().await?;
            out.output.append(&mut t.done);
        }
        self.deleted.finish_file().await?;
        out.deleted.append(&mut self.deleted.done);
        self.members.finish_file().await?;
        out.members = self.members.done.pop();
        Ok(out)
    }

    /// Discards the files in progress (completed ones go with the prefix).
    pub async fn abort(mut self) {
        for t in [
            &mut self.by_patient,
            &mut self.patient,
            &mut self.immunization,
            &mut self.recommendation,
            &mut self.provenance,
            &mut self.deleted,
            &mut self.members,
        ] {
            t.abort().await;
        }
    }
}

/// Writes the job-wide files once every shard is done: the Organization and
/// the Group (its member array spliced from the shards' parts, streamed).
/// Rerunnable: every key is fixed, so a rerun replaces what it wrote.
pub async fn write_summary(
    blobs: &dyn BlobStore,
    spec: &ExportSpec,
    parts: &[OutputFile],
) -> Result<ExportFiles, StoreError> {
    let req = &spec.request;
    let base = &spec.identifier_base;
    let mut files = ExportFiles::default();
    // Organized by patient, every output file is made of patient blocks
    // and a manifest item has no `type` (Bulk Data 3.0): the Group and the
    // Organization belong to no patient's block, and the IG lets a server
    // omit such resources rather than repeat them in every block.
    if req.organize_by_patient {
        return Ok(files);
    }
    if wants(req, ResourceType::Organization) {
        let mut w = TypeWriter::new("Organization", &spec.prefix, spec.max_lines_per_file);
        let org = resources::organization(&spec.au, base);
        w.resource(blobs, ResourceType::Organization, &org, req)
            .await?;
        w.finish_file().await?;
        files.output.append(&mut w.done);
    }
    if wants(req, ResourceType::Group) {
        let mut w = TypeWriter::new("Group", &spec.prefix, spec.max_lines_per_file);
        match write_group(blobs, spec, parts, &mut w).await {
            Ok(()) => {}
            Err(e) => {
                w.abort().await;
                return Err(e);
            }
        }
        w.finish_file().await?;
        files.output.append(&mut w.done);
    }
    Ok(files)
}

/// The Group's one line: its head, then each shard's slice of members in
/// shard order, then `quantity` (the members listed). Never in memory whole.
async fn write_group(
    blobs: &dyn BlobStore,
    spec: &ExportSpec,
    parts: &[OutputFile],
    w: &mut TypeWriter,
) -> Result<(), StoreError> {
    let base = &spec.identifier_base;
    w.begin_line(blobs).await?;
    let mut head =
        serde_json::to_value(resources::group(&spec.group, &spec.au, 0, &[], false, base))
            .map_err(json_err)?;
    if let Some(o) = head.as_object_mut() {
        o.remove("quantity");
        o.remove("member");
    }
    let head = encode(&head)?;
    // Reopen the object to append members (the array opens with the first
    // one: FHIR JSON has no empty arrays).
    w.append(&head[..head.len().saturating_sub(1)]).await?;
    let mut listed = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for part in parts.iter().filter(|p| p.count > 0) {
        let Some((mut reader, _)) = blobs.get(&part.key).await? else {
            return Err(StoreError::Other(format!(
                "the Group member part {} is missing",
                part.key
            )));
        };
        w.append(if listed == 0 {
            b",\"member\":[" as &[u8]
        } else {
            b","
        })
        .await?;
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| StoreError::Other(format!("reading {}: {e}", part.key)))?;
            if n == 0 {
                break;
            }
            w.append(&buf[..n]).await?;
        }
        listed += part.count;
    }
    if listed > 0 {
        w.append(b"]").await?;
    }
    w.append(format!(",\"quantity\":{listed}}}").as_bytes())
        .await?;
    w.end_line().await
}

/// Writes a whole export in one go (one shard over every member, then the
/// summary): what tests and small tools use; jobs shard the same work.
pub async fn write_export(
    patients: &Persons,
    groups: &Groups,
    blobs: &dyn BlobStore,
    spec: &ExportSpec,
) -> Result<ExportFiles, StoreError> {
    let mut shard = ShardWriter::new(spec, 1);
    let mut cursor = None;
    loop {
        let (page, next) = match groups.members(&spec.group.id, cursor, PAGE).await {
            Ok(p) => p,
            Err(e) => {
                shard.abort().await;
                return Err(e);
            }
        };
        for m in &page {
            if let Err(e) = shard.member(patients, blobs, spec, m).await {
                shard.abort().await;
                return Err(e);
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let written = shard.finish().await?;
    let mut files = write_summary(blobs, spec, written.members.as_slice()).await?;
    let mut output = written.output;
    output.append(&mut files.output);
    files.output = output;
    files.deleted = written.deleted;
    files.error = write_ignored(blobs, spec).await?;
    Ok(files)
}
/// Parameters ignored under `Prefer: handling=lenient`, as the manifest's
/// `error` file of OperationOutcomes. Known at kick-off, so a job writes it
/// when it is planned: every (partial) manifest then lists the same errors.
pub async fn write_ignored(
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
