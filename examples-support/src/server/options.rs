//! The `server` example's command line: a few flags of its own, and every `Config`
//! setting by its name in `Config::SETTINGS`.

use std::process::ExitCode;

use melody_core::{Config, ConfigError};

/// The `server` example's command line.
pub struct ServerOptions {
    /// `--addr`.
    pub addr: String,
    /// `--shards`; `None`: one per core.
    pub shards: Option<usize>,
    /// `--threads`; `None`: one per core.
    pub threads: Option<usize>,
    /// `--stats-addr`: where to answer `GET /stats` (see [`serve_stats`]); `None`: nowhere.
    ///
    /// [`serve_stats`]: crate::serve_stats
    pub stats_addr: Option<String>,
    /// `--metrics-addr`: where to answer with melody's metrics in Prometheus text
    /// format (see [`serve_metrics`]); `None`: nowhere.
    ///
    /// [`serve_metrics`]: crate::serve_metrics
    pub metrics_addr: Option<String>,
    /// Every other flag, by its name in `Config::SETTINGS`.
    pub config: Config,
}

/// The `server` example's flags; `threads` says what `--threads` means on this
/// runtime. Prints the usage for `--help` and a message for a bad flag, and then
/// `Err` holds the exit code.
pub fn server_options(threads: &str) -> Result<ServerOptions, ExitCode> {
    match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => Ok(options),
        Ok(None) => {
            print!("{}", usage(threads));
            Err(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("server: {message} (see --help)");
            Err(ExitCode::from(2))
        }
    }
}

fn usage(threads: &str) -> String {
    let mut text = String::from("usage: server [FLAGS]\n\n");
    let mut line = |flag: String, help: &str| {
        let help = help.replace('\n', &format!("\n{:30}", ""));
        text.push_str(&format!("  {flag:28}{help}\n"));
    };
    line(
        "--addr HOST:PORT".into(),
        "listen address (127.0.0.1:5004; port 0 picks a free one)",
    );
    for s in Config::SETTINGS {
        line(format!("--{} {}", s.name, s.value), s.help);
    }
    line("--shards N".into(), "hub shards (one per core)");
    line(
        "--stats-addr HOST:PORT".into(),
        "answer GET /stats there with the counters as JSON (off)",
    );
    line(
        "--metrics-addr HOST:PORT".into(),
        "serve melody's metrics there in Prometheus text format (off; needs the adapter's `metrics` feature)",
    );
    line("--threads N".into(), threads);
    line("--help".into(), "this text");
    text
}

/// Parses the flags; `Ok(None)` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<ServerOptions>, String> {
    let mut options = ServerOptions {
        addr: "127.0.0.1:5004".to_owned(),
        shards: None,
        threads: None,
        stats_addr: None,
        metrics_addr: None,
        config: Config::default(),
    };
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        // Every other flag takes a value, as `--flag VALUE` or `--flag=VALUE`.
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => match args.next() {
                Some(value) => (flag.to_owned(), value),
                None => return Err(format!("{arg} needs a value")),
            },
        };
        let number = || {
            value
                .parse::<usize>()
                .map(|n| n.max(1))
                .map_err(|_| format!("--{name}: {value:?} is not a number"))
        };
        match name.as_str() {
            "addr" => options.addr = value.clone(),
            "threads" => options.threads = Some(number()?),
            "shards" => options.shards = Some(number()?),
            "stats-addr" => options.stats_addr = Some(value.clone()),
            "metrics-addr" => options.metrics_addr = Some(value.clone()),
            _ => options.config.set(&name, &value).map_err(|e| match e {
                ConfigError::UnknownSetting(_) => format!("unknown flag --{name}"),
                other => other.to_string(),
            })?,
        }
    }
    // Report a bad combination (say, a ping period past the pong wait) up front.
    options.config.validate().map_err(|e| e.to_string())?;
    Ok(Some(options))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn args(line: &str) -> impl Iterator<Item = String> + '_ {
        line.split_whitespace().map(str::to_owned)
    }

    #[test]
    fn flags_take_their_value_after_a_space_or_an_equals_sign() {
        let options = parse(args(
            "--addr 0.0.0.0:9 --threads=1 --shards 0 --stats-addr :1",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(options.addr, "0.0.0.0:9");
        assert_eq!(options.threads, Some(1));
        assert_eq!(options.shards, Some(1), "0 means at least one");
        assert_eq!(options.stats_addr.as_deref(), Some(":1"));
    }

    #[test]
    fn help_and_bad_flags_do_not_parse_into_options() {
        assert!(matches!(parse(args("--threads 2 --help")), Ok(None)));
        for bad in ["--no-such-flag 1", "--threads", "--threads x", "positional"] {
            assert!(parse(args(bad)).is_err(), "{bad:?}");
        }
    }
}
