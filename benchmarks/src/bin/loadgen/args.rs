//! The command line: a mode, then `--name value` pairs.

use std::collections::HashMap;

/// Flags as given; each mode reads the ones it knows, with its defaults.
pub struct Args(HashMap<String, String>);

impl Args {
    /// The mode (first argument) and the flags after it.
    pub fn parse() -> (String, Args) {
        let mut it = std::env::args().skip(1);
        let mode = it.next().unwrap_or_default();
        let mut map = HashMap::new();
        while let Some(k) = it.next() {
            if let Some(name) = k.strip_prefix("--") {
                map.insert(name.to_owned(), it.next().unwrap_or_default());
            }
        }
        (mode, Args(map))
    }

    /// A numeric flag, or `default` when absent or not a number.
    pub fn num(&self, k: &str, default: u64) -> u64 {
        self.0
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// A text flag, or `default`.
    pub fn str(&self, k: &str, default: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| default.to_owned())
    }

    /// A flag the mode cannot run without.
    pub fn required(&self, k: &str) -> Result<String, String> {
        self.0
            .get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required for this mode"))
    }
}
