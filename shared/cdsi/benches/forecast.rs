//! Forecast for a child with 25 doses across the childhood schedule: the
//! whole assessment (every antigen, every relevant series, selection and
//! vaccine groups) on the built-in 4.64 supporting data.

#![allow(clippy::unwrap_used)]

use cdsi::{AdministeredDose, AssessmentRequest, Date, Patient};

fn main() {
    divan::main();
}

fn child_with_25_doses() -> AssessmentRequest {
    let d = |s: &str| Date::parse(s).unwrap();
    // (date, CVX): HepB, DTaP, Hib, IPV, PCV, rotavirus, MMR, varicella,
    // HepA, influenza — a complete-to-date 6-year-old.
    let doses = [
        ("2019-01-02", 8),
        ("2019-03-01", 20),
        ("2019-03-01", 49),
        ("2019-03-01", 10),
        ("2019-03-01", 133),
        ("2019-03-01", 116),
        ("2019-03-01", 8),
        ("2019-05-01", 20),
        ("2019-05-01", 49),
        ("2019-05-01", 10),
        ("2019-05-01", 133),
        ("2019-05-01", 116),
        ("2019-07-01", 20),
        ("2019-07-01", 133),
        ("2019-07-01", 8),
        ("2020-01-15", 3),
        ("2020-01-15", 21),
        ("2020-01-15", 49),
        ("2020-01-15", 83),
        ("2020-04-01", 133),
        ("2020-04-01", 20),
        ("2020-07-15", 83),
        ("2023-01-10", 94),
        ("2023-01-10", 130),
        ("2024-10-01", 150),
    ];
    AssessmentRequest {
        patient: Patient {
            date_of_birth: d("2019-01-01"),
            gender: cdsi::data::Gender::Female,
            country_of_birth: None,
            observations: vec![],
        },
        assessment_date: d("2025-11-10"),
        doses: doses
            .iter()
            .map(|&(date, cvx)| AdministeredDose {
                date: d(date),
                cvx,
                mvx: None,
                sub_standard: false,
            })
            .collect(),
    }
}

#[divan::bench]
fn forecast_child_25_doses(bencher: divan::Bencher) {
    let data = cdsi::builtin().unwrap();
    let request = child_with_25_doses();
    assert_eq!(request.doses.len(), 25);
    bencher.bench(|| cdsi::assess(data, divan::black_box(&request)));
}
