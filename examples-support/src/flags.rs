//! The demos' few command-line flags. They take no parser: each demo reads one or two
//! flags, and an unknown one is ignored.

/// The value after `name` (say `--redis`) on the command line, if any.
pub fn flag(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// The value of `--addr HOST:PORT` on the command line, or `default`.
pub fn addr(default: &str) -> String {
    flag("--addr").unwrap_or_else(|| default.to_owned())
}
