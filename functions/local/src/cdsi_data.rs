//! A CDC CDSi supporting-data release from a folder (`--cdsi-data DIR`),
//! as `iisbulk serve` and `iisbulk forecast` load it.

use std::path::Path;

use cdsi::SupportingData;

/// Loads CDC's XML folder (ScheduleSupportingData.xml and
/// AntigenSupportingData*.xml). The release is `version`, else named from
/// the folder ("Version 4.65 - 508/XML" is "4.65"). The error names the
/// option and the folder.
pub fn load(dir: &Path, version: Option<&str>) -> Result<SupportingData, String> {
    let named = |message: String| format!("--cdsi-data {}: {message}", dir.display());
    if !dir.is_dir() {
        return Err(named("not a directory".into()));
    }
    let version = match version {
        Some(v) => v.to_owned(),
        None => cdsi::data::release_name(dir).ok_or_else(|| {
            named("cannot name the release from the directory; give --cdsi-version".into())
        })?,
    };
    cdsi::load_dir(&version, dir).map_err(|e| named(e.to_string()))
}
