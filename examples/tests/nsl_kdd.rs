//! The NSL-KDD loader on a hand-written sample in the `KDDTrain+.txt` format.
#![allow(missing_docs, clippy::unwrap_used)]

use cairn_examples::data::nsl_kdd::{Category, NslKddError, nsl_kdd_dataset, parse_nsl_kdd};
use cairn_examples::data::schema::{SERVICES, SchemaError};

const SAMPLE: &str = include_str!("../testdata/nsl_kdd_sample.txt");

#[test]
fn parses_the_sample() {
    let records = parse_nsl_kdd(SAMPLE).unwrap();
    assert_eq!(records.len(), 13);
    assert_eq!(records[0].label, "normal");
    assert_eq!(records[0].difficulty, 21);
    assert_eq!(
        SERVICES[usize::from(records[1].connection.service)],
        "domain_u"
    );
    assert_eq!(records[2].connection.numeric[1], 12983.0); // src_bytes
    assert_eq!(records[3].label, "neptune");
    assert_eq!(records[11].difficulty, 9);
    let categories: Vec<Category> = records
        .iter()
        .map(|r| Category::of_label(&r.label).unwrap())
        .collect();
    let count = |c| categories.iter().filter(|x| **x == c).count();
    assert_eq!(count(Category::Normal), 3);
    assert_eq!(count(Category::Dos), 4);
    assert_eq!(count(Category::Probe), 3);
    assert_eq!(count(Category::R2l), 2);
    assert_eq!(count(Category::U2r), 1);
}

#[test]
fn sample_becomes_a_five_class_dataset() {
    let dataset = nsl_kdd_dataset(parse_nsl_kdd(SAMPLE).unwrap(), 3).unwrap();
    assert_eq!(
        dataset.class_names,
        ["normal", "dos", "probe", "r2l", "u2r"]
    );
    let sizes: Vec<usize> = dataset
        .organisations
        .iter()
        .map(|o| o.records.len())
        .collect();
    assert_eq!(sizes, [5, 4, 4]);
    assert_eq!(dataset.class_counts(), [3, 4, 3, 2, 1]);
    assert!(matches!(
        nsl_kdd_dataset(parse_nsl_kdd(SAMPLE).unwrap(), 14),
        Err(NslKddError::Organisations { .. })
    ));
}

/// The sample with line `line` (1-based) replaced by `f(original)`.
fn with_line(line: usize, f: impl Fn(&str) -> String) -> String {
    SAMPLE
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == line { f(l) } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn malformed_rows_are_typed_errors_naming_the_line() {
    let dropped_field = with_line(4, |l| l.split_once(',').unwrap().1.to_owned());
    assert_eq!(
        parse_nsl_kdd(&dropped_field),
        Err(NslKddError::FieldCount { line: 4, found: 42 })
    );

    let bad_label = with_line(5, |l| l.replace("neptune", "neptunium"));
    assert_eq!(
        parse_nsl_kdd(&bad_label),
        Err(NslKddError::Label {
            line: 5,
            value: "neptunium".into()
        })
    );

    let bad_difficulty = with_line(6, |l| format!("{}22", l.strip_suffix("21").unwrap()));
    let err = parse_nsl_kdd(&bad_difficulty).unwrap_err();
    assert!(
        matches!(err, NslKddError::Difficulty { line: 6, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("line 6:"));

    let bad_protocol = with_line(7, |l| l.replacen(",tcp,", ",sctp,", 1));
    assert!(matches!(
        parse_nsl_kdd(&bad_protocol),
        Err(NslKddError::Feature {
            line: 7,
            source: SchemaError::UnknownCategory { column: 1, .. }
        })
    ));

    let bad_number = with_line(2, |l| l.replacen(",44,", ",4e,", 1));
    assert!(matches!(
        parse_nsl_kdd(&bad_number),
        Err(NslKddError::Feature {
            line: 2,
            source: SchemaError::NotANumber { column: 4, .. }
        })
    ));

    assert_eq!(parse_nsl_kdd("\n\n"), Err(NslKddError::Empty));
}
