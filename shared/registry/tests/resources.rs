//! Registry records as FHIR R4: a richly reported child (race, ethnicity,
//! multiple birth, contacts, refusals, a partial dose, VIS, funding,
//! providers) rendered as Patient and Immunizations, checked element by
//! element, round-tripped through serde, and kept for the independent
//! validator (`IISBULK_FHIR_SAMPLES`, see scripts/check_fhir.py).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use iz::{Clock, IisIdentity};
use matching::Matcher;
use registry::membership::JurisdictionPolicy;
use registry::patients::PatientMatching;
use registry::{resources, Intake, Transport};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

const VXU: &str = "MSH|^~\\&|EHR|FACA|IIS|IISFAC|20250601120000-0500||VXU^V04^VXU_V04|R1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|FACA|IISFAC\r\
PID|1||MRN-77^^^FACA^MR~55501^^^2.16.840.1.113883.19^PI||Nguyen^Linh^Thi^^^^L~Tran^Linh^^^^^A|Pham^^^^^^M|20240305|F||2028-9^Asian^CDCREC~2106-3^White^CDCREC|12 Elm St^Apt 4^Lansing^MI^48910^USA^P||^PRN^PH^^^517^5550142~^NET^Internet^linh.family@example.org|||||||||2186-5^Not Hispanic or Latino^CDCREC||Y|2\r\
PD1|||||||||||02^Reminder/Recall - any method^HL70215|N|20250601\r\
NK1|1|Nguyen^Mai^^^^^L|MTH^Mother^HL70063|12 Elm St^^Lansing^MI^48910^USA^P|^PRN^PH^^^517^5550142\r\
ORC|RE||R1-1^FACA|||||||||1234567890^Welby^Marcus^^^^^^NPI^L^^^NPI\r\
RXA|0|1|20250601||08^Hep B^CVX|0.5|mL^mL^UCUM||00^New record^NIP001|7777^Jones^Ann^^^^^^NPI^L^^^NPI|^^^FACA||||LOT123|20260101|MSD^Merck^MVX|||CP|A\r\
RXR|C28161^Intramuscular^NCIT|LA^Left Arm^HL70163\r\
OBX|1|CE|64994-7^Vaccine Funding Program Eligibility^LN|1|V02^VFC eligible Medicaid^HL70064||||||F|||20250601|||VXC40^per immunization^CDCPHINVS\r\
OBX|2|CE|30963-3^Vaccine funding source^LN|2|VXC50^Public^CDCPHINVS||||||F|||20250601\r\
OBX|3|CE|69764-9^Document type^LN|3|253088698300010311110606^HepB VIS^cdcgs1vis||||||F|||20250601\r\
OBX|4|DT|29769-7^VIS presented^LN|3|20250601||||||F|||20250601\r\
ORC|RE||9999^FACA\r\
RXA|0|1|20250601||03^MMR^CVX|999||||||||||||00^Parental decision^NIP002||RE|A\r\
ORC|RE||R1-3^FACA\r\
RXA|0|1|20250520||20^DTaP^CVX|0.25|mL^mL^UCUM||00^New record^NIP001||||||LOT9||SKB^GSK^MVX|||PA|A\r\
OBX|1|CE|64994-7^Vaccine Funding Program Eligibility^LN|1|V02^VFC eligible Medicaid^HL70064||||||F|||20250520|||VXC40^per immunization^CDCPHINVS\r\
ORC|RE||R1-4^FACA\r\
RXA|0|1|20240601||10^IPV^CVX|999|||01^Historical^NIP001|||||||||||CP|A\r\
ORC|RE||9999^FACA\r\
RXA|0|1|20250601||21^Varicella^CVX|999||||||||||||00^Parental decision^NIP002||RE|A\r";

fn keep<T: Serialize>(name: &str, resource: &T) {
    if let Ok(dir) = std::env::var("IISBULK_FHIR_SAMPLES") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}.json")),
            serde_json::to_vec_pretty(resource).unwrap(),
        )
        .unwrap();
    }
}

/// Serializes, deserializes and serializes again: nothing lost or invented.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(r: &T) -> Value {
    let json = serde_json::to_value(r).unwrap();
    let back: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, r);
    json
}

#[tokio::test]
async fn a_richly_reported_child_renders_as_us_core_minded_fhir() {
    let r = support::two_clinics().await;
    let intake = Intake::new(r.store.clone(), IisIdentity::default());
    let matching = PatientMatching::new(r.store.clone(), Arc::new(Matcher::default()));
    let d = intake
        .receive(
            &r.clinic_a,
            &Transport::Rest,
            VXU.as_bytes(),
            Clock::at(1_790_000_000),
        )
        .await
        .unwrap();
    assert!(
        d.answer.contains("MSA|AA"),
        "{}",
        d.answer.replace('\r', "\n")
    );
    let m = matching.process(&d.message_id.unwrap(), 1).await.unwrap();
    let person = matching.person(&m.person).await.unwrap().unwrap();
    let base = JurisdictionPolicy::default().identifier_base;
    let theirs = matching
        .identifiers_from(&person.id, "clinic-a")
        .await
        .unwrap();
    assert!(matching
        .identifiers_from(&person.id, "clinic-b")
        .await
        .unwrap()
        .is_empty());

    let patient = resources::patient(&person, &theirs, &base);
    let p = round_trip(&patient);
    keep("rich-patient", &patient);
    assert_eq!(p["resourceType"], "Patient");
    assert_eq!(p["gender"], "female");
    assert_eq!(p["birthDate"], "2024-03-05");
    assert_eq!(p["multipleBirthInteger"], 2);
    assert_eq!(p["identifier"][0]["value"], person.id.as_str());
    assert_eq!(p["identifier"][0]["type"]["coding"][0]["code"], "SR");
    assert_eq!(p["identifier"][1]["value"], "MRN-77");
    assert_eq!(
        p["identifier"][1]["system"],
        "urn:iisbulk:id/authority/FACA"
    );
    assert_eq!(p["identifier"][2]["system"], "urn:oid:2.16.840.1.113883.19");
    assert_eq!(p["identifier"][2]["value"], "55501");
    assert_eq!(
        p["name"][0],
        json!({"use": "official", "family": "Nguyen", "given": ["Linh", "Thi"]})
    );
    assert_eq!(p["name"][1]["use"], "usual");
    assert_eq!(p["address"][0]["line"], json!(["12 Elm St", "Apt 4"]));
    assert_eq!(
        p["telecom"][0],
        json!({"system": "phone", "value": "(517) 555-0142", "use": "home"})
    );
    assert_eq!(
        p["telecom"][1],
        json!({"system": "email", "value": "linh.family@example.org"})
    );
    let race = &p["extension"][0];
    assert_eq!(race["url"], fhir::US_CORE_RACE);
    assert_eq!(race["extension"][0]["url"], "ombCategory");
    assert_eq!(race["extension"][0]["valueCoding"]["code"], "2028-9");
    assert_eq!(
        race["extension"][2],
        json!({"url": "text", "valueString": "Asian, White"})
    );
    assert_eq!(p["extension"][1]["url"], fhir::US_CORE_ETHNICITY);
    assert_eq!(p["extension"][2]["valueString"], "Pham");
    assert_eq!(
        p["contact"][0]["relationship"][0]["coding"][0]["code"],
        "MTH"
    );

    let mut history = matching.history(&person.id).await.unwrap();
    history.sort_by_key(|i| i.order.administered);
    // Two refusals in one message, both with the ORC-3 "9999" the guide
    // requires for them: two events, not one overwriting the other.
    assert_eq!(history.len(), 5);
    let imms: Vec<Value> = history
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let r = resources::immunization(&person.id, i, &base);
            keep(&format!("rich-immunization-{n}"), &r);
            round_trip(&r)
        })
        .collect();
    let by_cvx = |cvx: &str| {
        imms.iter()
            .find(|i| i["vaccineCode"]["coding"][0]["code"] == cvx)
            .unwrap()
            .clone()
    };
    let hepb = by_cvx("08");
    assert_eq!(hepb["status"], "completed");
    assert_eq!(hepb["primarySource"], true);
    assert_eq!(hepb["vaccineCode"]["coding"][0]["system"], fhir::CVX);
    assert_eq!(hepb["occurrenceDateTime"], "2025-06-01");
    assert_eq!(hepb["lotNumber"], "LOT123");
    assert_eq!(hepb["expirationDate"], "2026-01-01");
    assert_eq!(
        hepb["manufacturer"]["identifier"],
        json!({"system": fhir::MVX, "value": "MSD"})
    );
    assert_eq!(
        hepb["doseQuantity"],
        json!({"value": 0.5, "unit": "mL", "system": fhir::UCUM, "code": "mL"})
    );
    assert_eq!(hepb["route"]["coding"][0]["system"], fhir::NCI_THESAURUS);
    assert_eq!(
        hepb["site"]["coding"][0],
        json!({"system": fhir::V3_ACT_SITE, "code": "LA", "display": "Left Arm"})
    );
    assert_eq!(hepb["programEligibility"][0]["coding"][0]["code"], "V02");
    assert_eq!(hepb["fundingSource"]["coding"][0]["code"], "VXC50");
    assert_eq!(hepb["performer"][0]["function"]["coding"][0]["code"], "AP");
    assert_eq!(hepb["performer"][0]["actor"]["display"], "Ann Jones");
    assert_eq!(hepb["performer"][1]["function"]["coding"][0]["code"], "OP");
    assert_eq!(hepb["education"][0]["presentationDate"], "2025-06-01");
    assert_eq!(
        hepb["patient"]["reference"],
        format!("Patient/{}", person.id)
    );

    let refused = by_cvx("03");
    assert_eq!(refused["status"], "not-done");
    assert_eq!(refused["statusReason"]["coding"][0]["code"], "PATOBJ");
    assert_eq!(refused["statusReason"]["coding"][1]["code"], "00");
    assert!(refused.get("doseQuantity").is_none());
    assert_eq!(by_cvx("21")["status"], "not-done");

    let partial = by_cvx("20");
    assert_eq!(
        (partial["status"].as_str(), partial["isSubpotent"].as_bool()),
        (Some("completed"), Some(true))
    );

    let historical = by_cvx("10");
    assert_eq!(historical["primarySource"], false);
    assert_eq!(historical["reportOrigin"]["coding"][0]["code"], "01");

    let org = resources::organization(&r.clinic_a, &base);
    keep("organization", &org);
    let o = round_trip(&org);
    assert_eq!(
        (o["id"].as_str(), o["type"][0]["coding"][0]["code"].as_str()),
        (Some("clinic-a"), Some("prov"))
    );
}
