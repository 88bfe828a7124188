//! Reads CDC's supporting data XML (ScheduleSupportingData.xml and the
//! AntigenSupportingData-*.xml files) into [`SupportingData`].
//!
//! The loader works on strings so that the engine stays free of I/O; the
//! small [`load_dir`] helper reads a directory for callers that pin another
//! release. A malformed file is a [`LoadError`] naming the file and the
//! element, never a panic.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use roxmltree::{Document, Node};

use super::*;

/// What is wrong with a supporting data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for LoadError {}

type R<T> = Result<T, String>;

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of a child element; "" when absent or empty.
fn text<'a>(node: Node<'a, '_>, name: &str) -> &'a str {
    child(node, name)
        .and_then(|c| c.text())
        .unwrap_or("")
        .trim()
}

fn is_blank(t: &str) -> bool {
    t.is_empty() || t.eq_ignore_ascii_case("n/a")
}

fn duration(node: Node, name: &str) -> R<Option<Duration>> {
    Duration::parse(text(node, name)).map_err(|e| format!("<{name}>: {e}"))
}

fn date(node: Node, name: &str) -> R<Option<Date>> {
    let t = text(node, name);
    if is_blank(t) {
        return Ok(None);
    }
    Date::parse(t)
        .map(Some)
        .ok_or_else(|| format!("<{name}>: {t:?} is not a date"))
}

fn yes(t: &str) -> bool {
    matches!(t.to_ascii_lowercase().as_str(), "yes" | "y" | "true")
}

fn cvx(t: &str) -> R<Cvx> {
    t.trim()
        .parse()
        .map_err(|_| format!("{t:?} is not a CVX code"))
}

fn cvx_list(t: &str) -> R<Vec<Cvx>> {
    t.split([';', ','])
        .map(str::trim)
        .filter(|s| !is_blank(s))
        .map(cvx)
        .collect()
}

fn observation_code(t: &str) -> R<ObservationCode> {
    t.trim()
        .parse()
        .map_err(|_| format!("{t:?} is not an observation code"))
}

fn effective(node: Node) -> R<Effective> {
    Ok(Effective {
        effective: date(node, "effectiveDate")?,
        cessation: date(node, "cessationDate")?,
    })
}

/// Loads a release from its XML texts: the schedule file and every antigen
/// file, each given as (file name, content). `version` is the release name
/// ("4.64"), which the XML itself does not carry.
pub fn load<'a>(
    version: &str,
    schedule: (&str, &str),
    antigens: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<SupportingData, LoadError> {
    let err = |file: &str| {
        let file = file.to_string();
        move |message: String| LoadError {
            file: file.clone(),
            message,
        }
    };
    let mut data = parse_schedule(version, schedule.1).map_err(err(schedule.0))?;
    for (name, content) in antigens {
        let antigen = parse_antigen(content).map_err(err(name))?;
        if data.antigens.iter().any(|a| a.name == antigen.name) {
            return Err(err(name)(format!("antigen {} loaded twice", antigen.name)));
        }
        data.antigens.push(antigen);
    }
    data.antigens.sort_by(|a, b| a.name.cmp(&b.name));
    // Every antigen the vaccine groups name must have its series.
    for group in &data.vaccine_groups {
        for antigen in &group.antigens {
            if data.antigen(antigen).is_none() {
                return Err(LoadError {
                    file: schedule.0.to_string(),
                    message: format!(
                        "vaccine group {} names antigen {antigen}, which no antigen file defines",
                        group.name
                    ),
                });
            }
        }
    }
    Ok(data)
}

/// The release a supporting-data directory holds, from its name: CDC
/// publishes each release as "Version 4.64 - 508/XML", so an "XML" folder
/// is named by its parent, and "Version 4.64 - 508" gives "4.64"; any other
/// name is taken as it is ("4.64" stays "4.64"). `None` for a path with no
/// usable name (e.g. "/").
pub fn release_name(dir: &Path) -> Option<String> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().trim().to_string())
    };
    let mut release = name(dir)?;
    if release.eq_ignore_ascii_case("xml") {
        release = dir.parent().and_then(name)?;
    }
    if let Some(rest) = release.strip_prefix("Version ") {
        release = rest.split(" - ").next().unwrap_or(rest).trim().to_string();
    }
    (!release.is_empty()).then_some(release)
}

/// Loads a release directory named by its folder ([`release_name`]): what
/// the Lambdas' `IISBULK_CDSI_DATA` setting points at (e.g.
/// `/opt/cdsi/Version 4.65 - 508/XML` or `/opt/cdsi/4.65`).
pub fn load_release_dir(dir: &Path) -> Result<SupportingData, LoadError> {
    let version = release_name(dir).ok_or_else(|| LoadError {
        file: dir.display().to_string(),
        message: "cannot name the release from the directory's name (e.g. 4.65)".into(),
    })?;
    load_dir(&version, dir)
}

/// Reads `ScheduleSupportingData.xml` and every `AntigenSupportingData*.xml`
/// of a directory (a jurisdiction's pinned release) and loads them.
pub fn load_dir(version: &str, dir: &Path) -> Result<SupportingData, LoadError> {
    let io = |file: &Path, e: std::io::Error| LoadError {
        file: file.display().to_string(),
        message: e.to_string(),
    };
    let schedule_path = dir.join("ScheduleSupportingData.xml");
    let schedule = std::fs::read_to_string(&schedule_path).map_err(|e| io(&schedule_path, e))?;
    let mut antigen_files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("AntigenSupportingData") && name.ends_with(".xml") {
            let content =
                std::fs::read_to_string(entry.path()).map_err(|e| io(&entry.path(), e))?;
            antigen_files.push((name, content));
        }
    }
    if antigen_files.is_empty() {
        return Err(LoadError {
            file: dir.display().to_string(),
            message: "no AntigenSupportingData*.xml file".into(),
        });
    }
    antigen_files.sort();
    load(
        version,
        ("ScheduleSupportingData.xml", &schedule),
        antigen_files.iter().map(|(n, c)| (n.as_str(), c.as_str())),
    )
}

fn parse_doc(content: &str) -> R<Document<'_>> {
    Document::parse(content).map_err(|e| format!("not well-formed XML: {e}"))
}

fn parse_schedule(version: &str, content: &str) -> R<SupportingData> {
    let doc = parse_doc(content)?;
    let root = doc.root_element();
    if root.tag_name().name() != "scheduleSupportingData" {
        return Err(format!(
            "root element is <{}>, expected <scheduleSupportingData>",
            root.tag_name().name()
        ));
    }
    let section = |name: &str| child(root, name).ok_or_else(|| format!("no <{name}>"));

    let mut live_virus_conflicts = Vec::new();
    for c in children(section("liveVirusConflicts")?, "liveVirusConflict") {
        let prev = child(c, "previous").ok_or("<liveVirusConflict> without <previous>")?;
        let cur = child(c, "current").ok_or("<liveVirusConflict> without <current>")?;
        let need = |name: &str| -> R<Duration> {
            duration(c, name)?.ok_or_else(|| format!("<liveVirusConflict> without <{name}>"))
        };
        live_virus_conflicts.push(LiveVirusConflict {
            previous_vaccine_type: text(prev, "vaccineType").to_string(),
            previous_cvx: cvx(text(prev, "cvx"))?,
            current_vaccine_type: text(cur, "vaccineType").to_string(),
            current_cvx: cvx(text(cur, "cvx"))?,
            conflict_begin_interval: need("conflictBeginInterval")?,
            min_conflict_end_interval: need("minConflictEndInterval")?,
            conflict_end_interval: need("conflictEndInterval")?,
        });
    }

    let mut vaccine_groups = Vec::new();
    for g in children(section("vaccineGroups")?, "vaccineGroup") {
        vaccine_groups.push(VaccineGroup {
            name: text(g, "name").to_string(),
            administer_full_vaccine_group: yes(text(g, "administerFullVaccineGroup")),
            antigens: Vec::new(),
            vaccine_type: None,
        });
    }
    for m in children(section("vaccineGroupToAntigenMap")?, "vaccineGroupMap") {
        let name = text(m, "name");
        let group = vaccine_groups
            .iter_mut()
            .find(|g| g.name == name)
            .ok_or_else(|| format!("<vaccineGroupMap> names unknown vaccine group {name:?}"))?;
        group.antigens = children(m, "antigen")
            .filter_map(|a| a.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }

    let mut cvx_map = HashMap::new();
    for m in children(section("cvxToAntigenMap")?, "cvxMap") {
        let code = cvx(text(m, "cvx"))?;
        let mut associations = Vec::new();
        for a in children(m, "association") {
            associations.push(AntigenAssociation {
                antigen: text(a, "antigen").to_string(),
                begin_age: duration(a, "associationBeginAge")?,
                end_age: duration(a, "associationEndAge")?,
            });
        }
        cvx_map.insert(
            code,
            CvxMap {
                cvx: code,
                short_description: text(m, "shortDescription").to_string(),
                associations,
            },
        );
    }

    for group in &mut vaccine_groups {
        group.vaccine_type = super::group_vaccine_type(&group.antigens, &cvx_map);
    }

    let mut observations = Vec::new();
    for o in children(section("observations")?, "observation") {
        let mut coded_values = Vec::new();
        for cv in children(o, "codedValues").flat_map(|c| children(c, "codedValue")) {
            coded_values.push(CodedValue {
                code: text(cv, "code").to_string(),
                code_system: text(cv, "codeSystem").to_string(),
                text: text(cv, "text").to_string(),
            });
        }
        observations.push(ObservationDefinition {
            code: observation_code(text(o, "observationCode"))?,
            title: text(o, "observationTitle").to_string(),
            indication_text: text(o, "indicationText").to_string(),
            contraindication_text: text(o, "contraindicationText").to_string(),
            coded_values,
        });
    }

    Ok(SupportingData {
        version: version.to_string(),
        live_virus_conflicts,
        vaccine_groups,
        cvx_map,
        observations,
        antigens: Vec::new(),
    })
}

fn parse_antigen(content: &str) -> R<Antigen> {
    let doc = parse_doc(content)?;
    let root = doc.root_element();
    if root.tag_name().name() != "antigenSupportingData" {
        return Err(format!(
            "root element is <{}>, expected <antigenSupportingData>",
            root.tag_name().name()
        ));
    }

    let mut immunity = Immunity::default();
    if let Some(im) = child(root, "immunity") {
        for ch in children(im, "clinicalHistory") {
            let code = text(ch, "guidelineCode");
            if !is_blank(code) {
                immunity.clinical_history.push(observation_code(code)?);
            }
        }
        for b in children(im, "dateOfBirth") {
            let Some(birth) = date(b, "immunityBirthDate")? else {
                continue;
            };
            let mut exclusions = Vec::new();
            for e in children(b, "exclusion") {
                let code = text(e, "exclusionCode");
                if !is_blank(code) {
                    exclusions.push(observation_code(code)?);
                }
            }
            immunity.birth_date.push(BirthDateImmunity {
                immunity_birth_date: birth,
                birth_country: text(b, "birthCountry").to_string(),
                exclusions,
            });
        }
    }

    let mut group_contraindications = Vec::new();
    let mut vaccine_contraindications = Vec::new();
    if let Some(ci) = child(root, "contraindications") {
        for c in child(ci, "vaccineGroup")
            .into_iter()
            .flat_map(|g| children(g, "contraindication"))
        {
            group_contraindications.push(AntigenContraindication {
                observation_code: observation_code(text(c, "observationCode"))?,
                text: text(c, "contraindicationText").to_string(),
                begin_age: duration(c, "beginAge")?,
                end_age: duration(c, "endAge")?,
            });
        }
        for c in child(ci, "vaccine")
            .into_iter()
            .flat_map(|g| children(g, "contraindication"))
        {
            let mut vaccines = Vec::new();
            for v in children(c, "contraindicatedVaccine") {
                vaccines.push(ContraindicatedVaccine {
                    cvx: cvx(text(v, "cvx"))?,
                    begin_age: duration(v, "beginAge")?,
                    end_age: duration(v, "endAge")?,
                });
            }
            vaccine_contraindications.push(VaccineContraindication {
                observation_code: observation_code(text(c, "observationCode"))?,
                text: text(c, "contraindicationText").to_string(),
                vaccines,
            });
        }
    }

    let mut series = Vec::new();
    for s in children(root, "series") {
        let name = text(s, "seriesName").to_string();
        series.push(parse_series(s).map_err(|e| format!("series {name:?}: {e}"))?);
    }
    let name = series
        .first()
        .map(|s| s.target_disease.clone())
        .ok_or("no <series>")?;
    if let Some(other) = series.iter().find(|s| s.target_disease != name) {
        return Err(format!(
            "series {:?} targets {}, the others {name}",
            other.name, other.target_disease
        ));
    }
    Ok(Antigen {
        name,
        immunity,
        group_contraindications,
        vaccine_contraindications,
        series,
    })
}

fn parse_series(s: Node) -> R<Series> {
    let series_type = match text(s, "seriesType").to_ascii_lowercase().as_str() {
        "standard" => SeriesType::Standard,
        "risk" => SeriesType::Risk,
        "evaluation only" => SeriesType::EvaluationOnly,
        other => return Err(format!("unknown <seriesType> {other:?}")),
    };
    let mut required_gender = Vec::new();
    for g in children(s, "requiredGender") {
        let t = g.text().unwrap_or("").trim();
        match t.to_ascii_lowercase().as_str() {
            "" | "n/a" => {}
            "female" | "f" => required_gender.push(Gender::Female),
            "male" | "m" => required_gender.push(Gender::Male),
            "unknown" | "u" => required_gender.push(Gender::Unknown),
            other => return Err(format!("unknown <requiredGender> {other:?}")),
        }
    }
    let select = child(s, "selectSeries").ok_or("no <selectSeries>")?;
    let preference = text(select, "seriesPreference");
    let series_preference = if is_blank(preference) {
        u32::MAX
    } else {
        preference
            .parse()
            .map_err(|_| format!("<seriesPreference> {preference:?} is not a number"))?
    };
    let mut indications = Vec::new();
    for i in children(s, "indication") {
        let code = child(i, "observationCode")
            .map(|o| text(o, "code"))
            .unwrap_or("");
        if is_blank(code) {
            continue;
        }
        indications.push(Indication {
            observation_code: observation_code(code)?,
            description: text(i, "description").to_string(),
            begin_age: duration(i, "beginAge")?,
            end_age: duration(i, "endAge")?,
            guidance: text(i, "guidance").to_string(),
        });
    }
    let mut doses = Vec::new();
    for d in children(s, "seriesDose") {
        let number = text(d, "doseNumber");
        doses.push(parse_series_dose(d).map_err(|e| format!("{number}: {e}"))?);
    }
    Ok(Series {
        name: text(s, "seriesName").to_string(),
        target_disease: text(s, "targetDisease").to_string(),
        vaccine_group: text(s, "vaccineGroup").to_string(),
        admin_guidance: children(s, "seriesAdminGuidance")
            .filter_map(|g| g.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        series_type,
        equivalent_series_groups: text(s, "equivalentSeriesGroups")
            .split([';', ','])
            .map(str::trim)
            .filter(|t| !is_blank(t))
            .map(str::to_string)
            .collect(),
        required_gender,
        default_series: yes(text(select, "defaultSeries")),
        product_path: yes(text(select, "productPath")),
        series_group_name: text(select, "seriesGroupName").to_string(),
        series_group: text(select, "seriesGroup").to_string(),
        series_priority: text(select, "seriesPriority").to_string(),
        series_preference,
        min_age_to_start: duration(select, "minAgeToStart")?,
        max_age_to_start: duration(select, "maxAgeToStart")?,
        indications,
        doses,
    })
}

fn interval_from(i: Node) -> R<Option<IntervalFrom>> {
    if yes(text(i, "fromPrevious")) {
        return Ok(Some(IntervalFrom::Previous));
    }
    let target = text(i, "fromTargetDose");
    if !is_blank(target) {
        let n = target
            .trim_start_matches("Dose")
            .trim()
            .parse()
            .map_err(|_| format!("<fromTargetDose> {target:?} is not a dose number"))?;
        return Ok(Some(IntervalFrom::TargetDose(n)));
    }
    let recent = text(i, "fromMostRecent");
    if !is_blank(recent) {
        return Ok(Some(IntervalFrom::MostRecent(cvx_list(recent)?)));
    }
    if let Some(obs) = child(i, "fromRelevantObs") {
        let code = text(obs, "code");
        if !is_blank(code) {
            return Ok(Some(IntervalFrom::RelevantObservation(observation_code(
                code,
            )?)));
        }
    }
    Ok(None)
}

fn parse_series_dose(d: Node) -> R<SeriesDose> {
    let number = text(d, "doseNumber");
    let dose_number = number
        .trim_start_matches("Dose")
        .trim()
        .parse()
        .map_err(|_| format!("<doseNumber> {number:?} is not \"Dose N\""))?;
    let mut ages = Vec::new();
    for a in children(d, "age") {
        ages.push(AgeRule {
            abs_min_age: duration(a, "absMinAge")?,
            min_age: duration(a, "minAge")?,
            earliest_rec_age: duration(a, "earliestRecAge")?,
            latest_rec_age: duration(a, "latestRecAge")?,
            max_age: duration(a, "maxAge")?,
            effective: effective(a)?,
        });
    }
    let mut preferable_intervals = Vec::new();
    for i in children(d, "interval") {
        // An <interval> with no reference point is an empty placeholder.
        let Some(from) = interval_from(i)? else {
            continue;
        };
        preferable_intervals.push(Interval {
            from,
            abs_min_int: duration(i, "absMinInt")?,
            min_int: duration(i, "minInt")?,
            earliest_rec_int: duration(i, "earliestRecInt")?,
            latest_rec_int: duration(i, "latestRecInt")?,
            priority: {
                let p = text(i, "intervalPriority");
                !is_blank(p) && !p.eq_ignore_ascii_case("n") && !p.eq_ignore_ascii_case("no")
            },
            effective: effective(i)?,
        });
    }
    let mut allowable_intervals = Vec::new();
    for i in children(d, "allowableInterval") {
        let Some(from) = interval_from(i)? else {
            continue;
        };
        allowable_intervals.push(Interval {
            from,
            abs_min_int: duration(i, "absMinInt")?,
            min_int: None,
            earliest_rec_int: None,
            latest_rec_int: None,
            priority: false,
            effective: effective(i)?,
        });
    }
    let mut preferable_vaccines = Vec::new();
    for v in children(d, "preferableVaccine") {
        let c = text(v, "cvx");
        if is_blank(c) {
            continue;
        }
        let volume = text(v, "volume");
        let mvx = text(v, "mvx");
        preferable_vaccines.push(PreferableVaccine {
            vaccine_type: text(v, "vaccineType").to_string(),
            cvx: cvx(c)?,
            begin_age: duration(v, "beginAge")?,
            end_age: duration(v, "endAge")?,
            trade_name: text(v, "tradeName").to_string(),
            mvx: (!is_blank(mvx)).then(|| mvx.to_string()),
            volume: if is_blank(volume) {
                None
            } else {
                Some(
                    volume
                        .parse()
                        .map_err(|_| format!("<volume> {volume:?} is not a number"))?,
                )
            },
            forecast_vaccine_type: yes(text(v, "forecastVaccineType")),
        });
    }
    let mut allowable_vaccines = Vec::new();
    for v in children(d, "allowableVaccine") {
        let c = text(v, "cvx");
        if is_blank(c) {
            continue;
        }
        allowable_vaccines.push(AllowableVaccine {
            vaccine_type: text(v, "vaccineType").to_string(),
            cvx: cvx(c)?,
            begin_age: duration(v, "beginAge")?,
            end_age: duration(v, "endAge")?,
        });
    }
    let mut inadvertent_vaccines = Vec::new();
    for v in children(d, "inadvertentVaccine") {
        let c = text(v, "cvx");
        if !is_blank(c) {
            inadvertent_vaccines.push(cvx(c)?);
        }
    }
    let mut conditional_skips = Vec::new();
    for s in children(d, "conditionalSkip") {
        if let Some(skip) = parse_conditional_skip(s)? {
            conditional_skips.push(skip);
        }
    }
    let seasonal_recommendation = match child(d, "seasonalRecommendation") {
        Some(s) => {
            let start_date = date(s, "startDate")?;
            let end_date = date(s, "endDate")?;
            (start_date.is_some() || end_date.is_some()).then_some(SeasonalRecommendation {
                start_date,
                end_date,
            })
        }
        None => None,
    };
    Ok(SeriesDose {
        dose_number,
        ages,
        preferable_intervals,
        allowable_intervals,
        preferable_vaccines,
        allowable_vaccines,
        inadvertent_vaccines,
        conditional_skips,
        recurring_dose: yes(text(d, "recurringDose")),
        seasonal_recommendation,
    })
}

fn logic(t: &str, default: Logic) -> R<Logic> {
    match t.to_ascii_lowercase().as_str() {
        "" | "n/a" => Ok(default),
        "and" => Ok(Logic::And),
        "or" => Ok(Logic::Or),
        other => Err(format!("unknown logic {other:?}")),
    }
}

fn parse_conditional_skip(s: Node) -> R<Option<ConditionalSkip>> {
    let context = match text(s, "context").to_ascii_lowercase().as_str() {
        "" | "n/a" => return Ok(None),
        "evaluation" => SkipContext::Evaluation,
        "forecast" => SkipContext::Forecast,
        "both" => SkipContext::Both,
        other => return Err(format!("unknown conditional skip <context> {other:?}")),
    };
    // A single set makes the set logic irrelevant ("n/a").
    let set_logic = logic(text(s, "setLogic"), Logic::Or)?;
    let mut sets = Vec::new();
    for set in children(s, "set") {
        let mut conditions = Vec::new();
        for c in children(set, "condition") {
            let kind = text(c, "conditionType").to_ascii_lowercase();
            let condition_type = match kind.as_str() {
                "age" => ConditionType::Age,
                "completed series" => ConditionType::CompletedSeries,
                "interval" => ConditionType::Interval,
                k if k.starts_with("vaccine count by") => ConditionType::VaccineCount,
                other => return Err(format!("unknown <conditionType> {other:?}")),
            };
            let count = text(c, "doseCount");
            conditions.push(SkipCondition {
                condition_type,
                start_date: date(c, "startDate")?,
                end_date: date(c, "endDate")?,
                begin_age: duration(c, "beginAge")?,
                end_age: duration(c, "endAge")?,
                interval: duration(c, "interval")?,
                dose_count: if is_blank(count) {
                    0
                } else {
                    count
                        .parse()
                        .map_err(|_| format!("<doseCount> {count:?} is not a number"))?
                },
                dose_type: if text(c, "doseType").eq_ignore_ascii_case("valid") {
                    DoseType::Valid
                } else {
                    DoseType::Total
                },
                dose_count_logic: match text(c, "doseCountLogic").to_ascii_lowercase().as_str() {
                    "greater than" | "" | "n/a" => DoseCountLogic::GreaterThan,
                    "equal" | "equal to" => DoseCountLogic::Equal,
                    "less than" => DoseCountLogic::LessThan,
                    other => return Err(format!("unknown <doseCountLogic> {other:?}")),
                },
                vaccine_types: cvx_list(text(c, "vaccineTypes"))?,
                series_groups: text(c, "seriesGroups")
                    .split([';', ','])
                    .map(str::trim)
                    .filter(|t| !is_blank(t))
                    .map(str::to_string)
                    .collect(),
            });
        }
        sets.push(SkipSet {
            id: text(set, "setID").to_string(),
            description: text(set, "setDescription").to_string(),
            effective: effective(set)?,
            condition_logic: logic(text(set, "conditionLogic"), Logic::And)?,
            conditions,
        });
    }
    Ok(Some(ConditionalSkip {
        context,
        set_logic,
        sets,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: &str = "<scheduleSupportingData><liveVirusConflicts/><vaccineGroups>\
        <vaccineGroup><name>X</name><administerFullVaccineGroup/></vaccineGroup></vaccineGroups>\
        <vaccineGroupToAntigenMap><vaccineGroupMap><name>X</name><antigen>Xa</antigen></vaccineGroupMap>\
        </vaccineGroupToAntigenMap><cvxToAntigenMap/><observations/></scheduleSupportingData>";

    #[test]
    fn a_release_is_named_by_its_directory() {
        let name = |p: &str| release_name(Path::new(p));
        assert_eq!(name("/d/4.64").as_deref(), Some("4.64"));
        assert_eq!(name("/d/Version 4.65 - 508/XML").as_deref(), Some("4.65"));
        assert_eq!(name("Version 4.65 - 508").as_deref(), Some("4.65"));
        assert_eq!(name("/"), None);
    }

    #[test]
    fn a_release_folder_loads_under_its_own_name() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/4.64"));
        let data = load_release_dir(dir).unwrap();
        assert_eq!(data.version, "4.64");
        let e = load_release_dir(Path::new("/")).unwrap_err();
        assert!(e.message.contains("cannot name the release"), "{e}");
        let e = load_release_dir(&dir.join("no-such-release")).unwrap_err();
        assert!(e.file.contains("no-such-release"), "{e}");
    }

    #[test]
    fn a_bad_file_is_an_error_naming_it() {
        let e = load("t", ("S.xml", "<scheduleSupportingData>"), []).unwrap_err();
        assert_eq!(e.file, "S.xml");
        assert!(e.message.contains("not well-formed"), "{e}");

        let e = load("t", ("S.xml", SCHEDULE), []).unwrap_err();
        assert!(e.message.contains("Xa"), "{e}");

        let bad_age =
            "<antigenSupportingData><contraindications/><series><seriesName>S1</seriesName>\
            <targetDisease>Xa</targetDisease><seriesType>Standard</seriesType><selectSeries/>\
            <seriesDose><doseNumber>Dose 1</doseNumber><age><minAge>6 fortnights</minAge></age>\
            </seriesDose></series></antigenSupportingData>";
        let e = load("t", ("S.xml", SCHEDULE), [("A.xml", bad_age)]).unwrap_err();
        assert_eq!(e.file, "A.xml");
        assert!(
            e.message.contains("S1") && e.message.contains("fortnights"),
            "{e}"
        );
    }
}
