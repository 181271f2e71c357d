//! Numbers about the suite are checked against the suite instead of typed and
//! forgotten: every case written is run by `conformance_suite!`, and every "N cases" in
//! the workspace README is the number it runs.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use conformance_tests::CASES;

/// Every `pub fn NAME<B: Backend>()` in `src/cases` is one case: the suite must run
/// each, or a case written and never registered would pass unnoticed.
#[test]
fn the_suite_runs_every_case_written() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cases");
    let mut written = BTreeSet::new();
    for entry in fs::read_dir(&dir).expect("read src/cases") {
        let path = entry.expect("a directory entry").path();
        let source = fs::read_to_string(&path).expect("read a case file");
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("pub fn ") {
                if let Some((name, _)) = rest.split_once("<B: Backend>()") {
                    written.insert(name.to_owned());
                }
            }
        }
    }
    let run: BTreeSet<String> = CASES.iter().map(|&case| case.to_owned()).collect();
    assert_eq!(run.len(), CASES.len(), "a case is listed twice: {CASES:?}");
    assert_eq!(
        written.difference(&run).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "cases written in src/cases but missing from the suite's list"
    );
    // A listed case that is not written would not compile (the macro calls it); if it
    // is reported here, case functions are no longer written as this test looks for.
    assert_eq!(written, run, "case functions found in src/cases");
}

/// Each "N cases" the README states is `CASES.len()`.
#[test]
fn readme_states_the_number_of_cases_the_suite_runs() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace directory");
    if !workspace.join("Cargo.toml").is_file() {
        // Built from the published package: there is no workspace README to check.
        // Straight to stderr: the harness would capture `eprintln!` of a passing test.
        let _ = std::io::stderr().write_all(
            b"conformance-tests: no workspace around this crate, so README.md's case count \
              is not checked\n",
        );
        return;
    }
    let readme = fs::read_to_string(workspace.join("README.md")).expect("read README.md");
    let stated = stated_case_counts(&readme);
    assert!(
        !stated.is_empty(),
        "README.md states no \"N cases\": if the wording changed, change this test too"
    );
    for (line, count) in stated {
        assert_eq!(
            count,
            CASES.len(),
            "README.md line {line} says {count} cases; the suite runs {} \
             (conformance_tests::CASES)",
            CASES.len()
        );
    }
}

/// Every number directly followed by " cases", with its 1-based line number.
fn stated_case_counts(text: &str) -> Vec<(usize, usize)> {
    let mut counts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for (at, _) in line.match_indices(" cases") {
            let before = &line[..at];
            let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 {
                let number = before[before.len() - digits..]
                    .parse()
                    .expect("a run of ASCII digits");
                counts.push((index + 1, number));
            }
        }
    }
    counts
}

#[test]
fn stated_case_counts_finds_numbers_before_cases_only() {
    let text = "the suite (47 cases) and\nAutobahn cases 1-7, 300 cases passed\n12cases";
    assert_eq!(stated_case_counts(text), vec![(1, 47), (2, 300)]);
}
