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

/// `config` with the permessage-deflate mode of `--compression off|shared|dedicated`
/// (off when the flag is absent); an unknown mode is an `InvalidInput` error.
///
/// ```
/// use melody_core::{Compression, Config};
///
/// // No `--compression` on this doctest's command line: the config is unchanged.
/// let config = examples_support::compression(Config::default())?;
/// assert_eq!(config.compression, Compression::Off);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn compression(mut config: melody_core::Config) -> std::io::Result<melody_core::Config> {
    if let Some(mode) = flag("--compression") {
        config
            .set("compression", &mode)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    Ok(config)
}
