//! The KEEL loader and the pins on the real data vendored in `examples/data/kddcup99-keel`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cairn_examples::data::fetch::verify_file_sha256;
use cairn_examples::data::keel::{AttackClass, KEEL_FILES, parse_keel};
use cairn_examples::data::load_keel_dir;

fn shared_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kddcup99-keel");
    assert!(
        dir.is_dir(),
        "the KEEL data is expected at {} (vendored in the repository)",
        dir.display()
    );
    dir
}

#[test]
fn shared_files_match_their_pins() {
    let dir = shared_dir();
    for spec in KEEL_FILES {
        verify_file_sha256(&dir.join(spec.file_name), spec.sha256).unwrap();
    }
}

#[test]
fn per_file_class_counts_match_the_readme() {
    let dir = shared_dir();
    // (positive, negative) counts from examples/data/kddcup99-keel/README.md.
    let expected = [(30, 2203), (53, 1589), (21, 1040), (21, 1589), (22, 2203)];
    for (spec, (pos, neg)) in KEEL_FILES.iter().zip(expected) {
        let text = std::fs::read_to_string(dir.join(spec.file_name)).unwrap();
        let records = parse_keel(&text, spec.file_name).unwrap();
        let count = |c: AttackClass| records.iter().filter(|r| r.label == c.index()).count();
        assert_eq!(count(spec.positive), pos, "{}", spec.file_name);
        assert_eq!(count(spec.negative), neg, "{}", spec.file_name);
        assert_eq!(records.len(), pos + neg);
    }
}

#[test]
fn dataset_has_five_organisations_and_seven_classes() {
    let dataset = load_keel_dir(&shared_dir()).unwrap();
    assert_eq!(dataset.organisations.len(), 5);
    assert_eq!(dataset.len(), 8771);
    // back 2203+2203, land 21+21, satan 1589+1589, portsweep 1040, guess_passwd 53,
    // buffer_overflow 30, rootkit-imap 22.
    assert_eq!(dataset.class_counts(), [4406, 42, 3178, 1040, 53, 30, 22]);
    assert_eq!(
        dataset.class_names[AttackClass::RootkitImap.index()],
        "rootkit-imap"
    );
    let merged = dataset.clone().regroup(2).unwrap();
    assert_eq!(merged.organisations.len(), 2);
    assert_eq!(merged.len(), 8771);
    assert!(dataset.regroup(6).is_none());
}

#[test]
fn a_corrupted_copy_fails_its_pin() {
    let dir = tempfile::tempdir().unwrap();
    let spec = KEEL_FILES[2];
    let mut bytes = std::fs::read(shared_dir().join(spec.file_name)).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    let path = dir.path().join(spec.file_name);
    std::fs::write(&path, bytes).unwrap();
    let err = verify_file_sha256(&path, spec.sha256).unwrap_err();
    assert!(err.to_string().contains("SHA-256 mismatch"), "{err}");
}

#[test]
fn public_ranges_from_the_headers_bound_every_record() {
    use cairn_examples::data::keel::public_numeric_maxima;
    use cairn_examples::data::schema::{SERVICES, numeric_index};
    use cairn_examples::{
        DEFAULT_EMPHASIS, EMPHASISED_COLUMNS, EMPHASISED_SERVICES, standardiser_from_public_ranges,
    };
    let dir = shared_dir();
    let max = public_numeric_maxima(&dir).unwrap();
    // duration's range in kddcup-land_vs_satan.dat is [0.0, 58329.0].
    assert!(max[0] >= 58_329.0);
    assert!(max.iter().all(|m| m.is_finite() && *m >= 0.0));
    let standardiser = standardiser_from_public_ranges(&max, DEFAULT_EMPHASIS).unwrap();
    let emphasised: Vec<usize> = EMPHASISED_COLUMNS
        .iter()
        .map(|&c| numeric_index(c).unwrap())
        .collect();
    let dataset = load_keel_dir(&dir).unwrap();
    let records: Vec<_> = dataset
        .organisations
        .iter()
        .flat_map(|o| o.records.iter().cloned())
        .collect();
    let samples = standardiser.encode(&records);
    let top = DEFAULT_EMPHASIS as f32;
    let mut reached = vec![false; emphasised.len()];
    for i in 0..samples.len() {
        let row = samples.row(i);
        for (j, v) in row[..38].iter().enumerate() {
            let bound = if emphasised.contains(&j) { top } else { 1.0 };
            assert!((0.0..=bound).contains(v), "record {i}, feature {j}: {v}");
        }
        for (k, &j) in emphasised.iter().enumerate() {
            reached[k] |= row[j] > 1.0;
        }
    }
    // Both emphasised features are on in some record (land attacks, failed logins), and
    // stretched there beyond 1.
    assert_eq!(reached, [true, true]);
    // One-hot features are 0 or 1, but the emphasised services', which are 0 or the
    // emphasis (and on in some record: imap and back attacks).
    let emphasised_services: Vec<usize> = EMPHASISED_SERVICES
        .iter()
        .map(|name| 38 + 3 + SERVICES.iter().position(|s| s == name).unwrap())
        .collect();
    let mut on = vec![0usize; emphasised_services.len()];
    for i in 0..samples.len() {
        for (j, v) in samples.row(i).iter().enumerate().skip(38) {
            let k = emphasised_services.iter().position(|&e| e == j);
            let value = if k.is_some() { top } else { 1.0 };
            assert!(*v == 0.0 || *v == value, "record {i}, feature {j}: {v}");
            if let Some(k) = k
                && *v == top
            {
                on[k] += 1;
            }
        }
    }
    assert!(on.iter().all(|n| *n > 0), "{on:?}");
}
