//! Training on a synthetic population (crate `synthetic-population`): the
//! generator lives outside the production crate, so this test sits here.
#![allow(clippy::unwrap_used)]

use matching::train::{train, TrainOptions};
use matching::{Config, Field, Level};
use synthetic_population::Population;

/// Known people and noisy copies of them, no labels: the weights come
/// out the way evidence works (agreement for, disagreement against, a
/// typo weaker than the name), the bands ordered, the file valid.
#[test]
fn learns_weights_that_make_sense_from_unlabelled_records() {
    let population = Population::generate(3_000, 7);
    let mut records = population.people.clone();
    records.extend(population.queries(8).take(1_500).map(|q| q.record));
    let options = TrainOptions {
        random_pairs: 200_000,
        version: "test-trained".into(),
        ..TrainOptions::default()
    };
    let trained = train(&records, &Config::built_in(), &options).unwrap();
    let c = &trained.config;
    assert_eq!(c.version, "test-trained");
    for field in [Field::Given, Field::Family, Field::BirthDate] {
        assert!(c.weight(field, Level::Exact) > 3.0, "{field:?} exact");
        assert!(
            c.weight(field, Level::Different) < 0.0,
            "{field:?} different"
        );
    }
    assert!(c.weight(Field::Given, Level::Close) < c.weight(Field::Given, Level::Exact));
    assert!(c.bands.certain > c.bands.possible);
    // A common name weighs less than a rare one.
    let tf = c.term_frequencies(Field::Family).unwrap();
    assert!(tf.shares.values().any(|s| *s > tf.floor));
    assert!(trained.summary.contains("term frequencies, family"));
    assert_eq!(
        Config::parse(&trained.config_text).unwrap().version,
        "test-trained"
    );
}
