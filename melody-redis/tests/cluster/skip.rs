//! What a test that needs Redis does where there is none: it passes without running
//! and the binary says so in one line, so that `cargo test --workspace` passes on a
//! machine with only Rust; under `MELODY_REQUIRE_REDIS` (CI sets it) it fails instead,
//! so the tests cannot silently stop running where they are meant to run.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Mutex;

/// Set (to anything but empty or `0`), a missing Redis fails the tests.
pub const REQUIRE_REDIS: &str = "MELODY_REQUIRE_REDIS";

/// Whether [`REQUIRE_REDIS`] is set.
fn redis_required() -> bool {
    std::env::var(REQUIRE_REDIS).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Called by a test that cannot run because of `why`; the test returns right after.
/// Fails the test under [`REQUIRE_REDIS`]; otherwise writes one line naming `which`
/// tests did not run and why, once per distinct line in this test binary.
pub fn not_run(which: &str, why: &str) {
    if redis_required() {
        panic!("{REQUIRE_REDIS} is set, but {which} cannot run: {why}");
    }
    let line = format!(
        "{which} skipped: {why}; install redis-server to run them \
         ({REQUIRE_REDIS}=1 makes this a failure)\n"
    );
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first_time = SAID
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(line.clone());
    if first_time {
        // Straight to the process's stderr: the test harness captures `eprintln!` of
        // passing tests, and this line is for the person running them. One write, so
        // the harness's own lines cannot land inside it.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}
