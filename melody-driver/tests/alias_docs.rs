//! The adapters' `Melody` and `Session` aliases list every public method of the driver's
//! types in their documentation (`src/aliases.rs`): rustdoc shows none on an alias of
//! another crate's type, so a method missing from the index is invisible to adapter
//! users. This reads the sources and checks each is listed.

use std::fs;
use std::path::Path;

/// The names of `pub fn` and `pub async fn` items (and `handler!` registrations) in the
/// `impl` blocks of the given source files.
fn public_methods(files: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = Vec::new();
    for file in files {
        let text = fs::read_to_string(src.join(file)).expect("source file");
        for line in text.lines() {
            let line = line.trim_start();
            let rest = line
                .strip_prefix("pub fn ")
                .or_else(|| line.strip_prefix("pub async fn "));
            if let Some(rest) = rest {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // `$name` is the `handler!` macro's own definition.
                if !name.is_empty() {
                    names.push(name);
                }
            }
            if let Some(rest) = line.strip_prefix("on_") {
                // `handler!(/// docs\n on_connect, connect, ());`: the registration's name.
                if let Some(name) = rest.split(',').next() {
                    if rest.contains(',') && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        names.push(format!("on_{name}"));
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_public_method_is_in_the_alias_index() {
    let index = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aliases.rs"))
        .expect("aliases.rs");
    for (ty, files) in [
        ("Melody", &["melody.rs", "integration.rs"][..]),
        ("Session", &["session.rs"][..]),
    ] {
        let methods = public_methods(files);
        assert!(methods.len() > 10, "{ty}: found only {methods:?}");
        let missing: Vec<&String> = methods
            .iter()
            .filter(|m| !index.contains(&format!("(melody_driver::{ty}::{m})")))
            .collect();
        assert!(
            missing.is_empty(),
            "{ty} methods missing from the alias index in src/aliases.rs: {missing:?}"
        );
    }
}
