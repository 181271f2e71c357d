//! Reads `NAME SET RESULT {json}` lines, as `benchmarks/run.sh` prints them.

use serde_json::Value;

/// One load-generator run against one server.
pub struct Run {
    /// The server's name (`melody-tokio`, …, `baseline`).
    pub server: String,
    /// The set it belongs to (`broadcast-1k`, `echo`, …).
    pub set: String,
    /// The load generator's result object.
    pub result: Value,
}

impl Run {
    /// A number from the result, if the run produced it.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.result.get(key).and_then(Value::as_f64)
    }
}

/// Every well-formed line; a run that failed (no JSON, or an `error` field) is an error,
/// since a table with a silent gap would mislead.
pub fn parse(text: &str) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    for line in text.lines().filter(|l| l.contains("RESULT ")) {
        let (head, json) = line.split_once("RESULT ").unwrap_or_default();
        let mut words = head.split_whitespace();
        let (Some(server), Some(set)) = (words.next(), words.next()) else {
            return Err(format!("no server and set name before RESULT in: {line}"));
        };
        let result: Value =
            serde_json::from_str(json.trim()).map_err(|e| format!("{e} in: {line}"))?;
        if let Some(error) = result.get("error") {
            return Err(format!("{server} {set} failed: {error}"));
        }
        runs.push(Run {
            server: server.to_owned(),
            set: set.to_owned(),
            result,
        });
    }
    if runs.is_empty() {
        return Err("no RESULT lines".into());
    }
    Ok(runs)
}

/// The servers, in the order they first appear.
pub fn servers(runs: &[Run]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        if !names.contains(&run.server.as_str()) {
            names.push(&run.server);
        }
    }
    names
}

/// A figure of one server in one set: the median over the rounds that measured it
/// (`ROUNDS` in `standard.sh`), since one run on a shared machine can be an outlier.
pub fn figure(runs: &[Run], server: &str, set: &str, key: &str) -> Option<f64> {
    let mut values: Vec<f64> = runs
        .iter()
        .filter(|r| r.server == server && r.set == set)
        .filter_map(|r| r.num(key))
        .collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// How many rounds measured a set at most, for the table's note.
pub fn rounds(runs: &[Run]) -> usize {
    let mut most = 0;
    for run in runs {
        let n = runs
            .iter()
            .filter(|r| r.server == run.server && r.set == run.set)
            .count();
        most = most.max(n);
    }
    most
}
