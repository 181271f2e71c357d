//! `Config::set`: every setting in `Config::SETTINGS` takes a value by its name, and
//! refuses unknown names and malformed values with a typed error.

use std::time::Duration;

use melody_core::{Compression, Config, ConfigError, DropPolicy, OriginPolicy};

/// A value each setting accepts, by the shape its `Setting::value` names.
fn sample(value: &str) -> &'static str {
    match value {
        "BYTES" | "N" => "1024",
        "MS" => "250",
        "POLICY" => "oldest",
        "ORIGINS" => "any",
        "NAME" => "chat.v1",
        "BOOL" => "true",
        "MODE" => "shared",
        other => panic!("no sample for a {other} value"),
    }
}

#[test]
fn every_listed_setting_is_accepted() {
    for setting in Config::SETTINGS {
        let mut config = Config::default();
        config
            .set(setting.name, sample(setting.value))
            .unwrap_or_else(|e| panic!("{}: {e}", setting.name));
        assert!(!setting.help.is_empty(), "{} has no help", setting.name);
    }
}

#[test]
fn values_land_in_their_fields() {
    let mut config = Config::default();
    for (name, value) in [
        ("max-message-size", "16777216"),
        ("buffer-size", "1024"),
        ("buffer-bytes", "4096"),
        ("memory-budget", "8388608"),
        ("drop-policy", "disconnect"),
        ("ping-period-ms", "1000"),
        ("pong-wait-ms", "2000"),
        ("write-wait-ms", "300"),
        ("handshake-timeout-ms", "400"),
        ("close-timeout-ms", "500"),
        ("max-handshake-size", "2048"),
        ("read-buffer-size", "4096"),
        ("timer-granularity-ms", "10"),
        ("max-sessions", "7"),
        ("origin", "https://a.example, https://b.example"),
        ("subprotocol", "one"),
        ("subprotocol", "two"),
        ("compression", "dedicated"),
        ("compression-threshold", "64"),
    ] {
        config.set(name, value).unwrap();
    }
    assert_eq!(config.max_message_size, 16 << 20);
    assert_eq!(config.message_buffer_size, 1024);
    assert_eq!(config.message_buffer_bytes, Some(4096));
    assert_eq!(config.memory_budget, Some(8 << 20));
    assert_eq!(config.drop_policy, DropPolicy::Disconnect);
    assert_eq!(config.ping_period, Duration::from_secs(1));
    assert_eq!(config.pong_wait, Duration::from_secs(2));
    assert_eq!(config.write_wait, Duration::from_millis(300));
    assert_eq!(config.handshake_timeout, Duration::from_millis(400));
    assert_eq!(config.close_timeout, Duration::from_millis(500));
    assert_eq!(config.max_handshake_size, 2048);
    assert_eq!(config.read_buffer_size, 4096);
    assert_eq!(config.timer_granularity, Duration::from_millis(10));
    assert_eq!(config.max_sessions, Some(7));
    assert_eq!(
        config.origin_policy,
        OriginPolicy::AllowList(vec!["https://a.example".into(), "https://b.example".into()])
    );
    assert_eq!(config.subprotocols, ["one", "two"], "subprotocol adds");
    assert_eq!(config.compression, Compression::Dedicated);
    assert_eq!(config.compression_threshold, 64);
    assert!(config.validate().is_ok());

    config.set("buffer-bytes", "none").unwrap();
    config.set("memory-budget", "none").unwrap();
    config.set("max-sessions", "none").unwrap();
    config.set("origin", "same").unwrap();
    assert_eq!(config.message_buffer_bytes, None);
    assert_eq!(config.memory_budget, None);
    assert_eq!(config.max_sessions, None);
    assert_eq!(config.origin_policy, OriginPolicy::SameOrigin);
}

#[test]
fn unknown_names_and_bad_values_are_refused() {
    let mut config = Config::default();
    assert_eq!(
        config.set("max_message_size", "1"),
        Err(ConfigError::UnknownSetting("max_message_size".into())),
        "names are kebab case"
    );
    assert_eq!(
        config.set("sent-events", "true"),
        Err(ConfigError::UnknownSetting("sent-events".into())),
        "the driver sets sent_events from the registered handlers, so no flag offers it"
    );
    for (name, value) in [
        ("buffer-size", "-1"),
        ("buffer-size", "many"),
        ("ping-period-ms", "1.5"),
        ("drop-policy", "sometimes"),
        ("max-sessions", ""),
        ("origin", ""),
        ("subprotocol", "two words"),
    ] {
        match config.set(name, value) {
            Err(ConfigError::InvalidValue {
                name: n, value: v, ..
            }) => assert_eq!((n.as_str(), v.as_str()), (name, value)),
            other => panic!("{name} = {value:?}: {other:?}"),
        }
    }
    // Refused values leave the config as it was.
    assert_eq!(
        config.message_buffer_size,
        Config::default().message_buffer_size
    );
    assert!(config.subprotocols.is_empty());
}
