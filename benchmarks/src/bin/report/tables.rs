//! The markdown tables: every figure for every server, the ratios to the baseline and
//! to melody-tokio, and each target of the performance issue checked.

use std::fmt::Write;

use crate::results::{figure, rounds, servers, Run};

/// Whether a smaller or a larger number is the better one.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

/// One row: a figure read from one set's result.
struct Row {
    label: &'static str,
    set: &'static str,
    key: &'static str,
    unit: &'static str,
    better: Better,
    /// The target for melody-tokio, as a ratio to the baseline or an absolute
    /// bound, checked in the last column.
    target: Target,
}

#[derive(Clone, Copy)]
enum Target {
    None,
    /// melody-tokio at most this times the baseline.
    RatioAtMost(f64),
    /// melody-tokio at most this, in the row's unit.
    AtMost(f64),
    /// Every melody adapter at most this, in the row's unit.
    EveryAdapterAtMost(f64),
}

const ROWS: &[Row] = &[
    row(
        "broadcast 100 subscribers: server CPU per delivery",
        "broadcast-100",
        "server_cpu_per_delivery_us",
        "µs",
        Better::Lower,
        Target::RatioAtMost(0.7),
    ),
    row(
        "broadcast 100 subscribers: deliveries per second",
        "broadcast-100",
        "deliveries_per_sec",
        "/s",
        Better::Higher,
        Target::None,
    ),
    row(
        "broadcast 1k subscribers, 64 in flight: server CPU per delivery",
        "broadcast-1k",
        "server_cpu_per_delivery_us",
        "µs",
        Better::Lower,
        Target::RatioAtMost(0.7),
    ),
    row(
        "broadcast 1k subscribers: deliveries per second",
        "broadcast-1k",
        "deliveries_per_sec",
        "/s",
        Better::Higher,
        Target::None,
    ),
    row(
        "broadcast 1k subscribers: deliveries lost",
        "broadcast-1k",
        "lost",
        "",
        Better::Lower,
        Target::AtMost(0.0),
    ),
    row(
        "broadcast 10k subscribers: server CPU per delivery",
        "broadcast-10k",
        "server_cpu_per_delivery_us",
        "µs",
        Better::Lower,
        Target::None,
    ),
    row(
        "broadcast 10k subscribers: deliveries per second",
        "broadcast-10k",
        "deliveries_per_sec",
        "/s",
        Better::Higher,
        Target::None,
    ),
    row(
        "burst, 4000 messages to 100 subscribers: deliveries lost",
        "burst",
        "lost",
        "",
        Better::Lower,
        Target::EveryAdapterAtMost(0.0),
    ),
    row(
        "burst: drops the server reported (`stats().dropped`)",
        "burst",
        "server_dropped",
        "",
        Better::Lower,
        Target::None,
    ),
    row(
        "echo, 50 connections: server CPU per round trip",
        "echo",
        "server_cpu_per_round_trip_us",
        "µs",
        Better::Lower,
        Target::RatioAtMost(0.5),
    ),
    row(
        "10 messages/s to 1k subscribers: p50 delivery latency",
        "rate",
        "p50_us",
        "µs",
        Better::Lower,
        Target::None,
    ),
    row(
        "10 messages/s to 1k subscribers: p99 delivery latency",
        "rate",
        "p99_us",
        "µs",
        Better::Lower,
        Target::RatioAtMost(1.0),
    ),
    row(
        "idle 10k connections: RSS growth per connection",
        "idle",
        "rss_per_connection",
        "B",
        Better::Lower,
        Target::EveryAdapterAtMost(1024.0),
    ),
    row(
        "idle 19k connections, 60 s, default keepalive: server CPU",
        "idle-19k",
        "server_cpu_pct",
        "% of a core",
        Better::Lower,
        Target::EveryAdapterAtMost(1.0),
    ),
    row(
        "SSE fan-out to 1k subscribers: CPU per delivery, SSE ÷ WebSocket",
        "sse-broadcast-1k",
        "sse_over_ws",
        "×",
        Better::Lower,
        Target::AtMost(1.1),
    ),
];

#[allow(clippy::too_many_arguments)]
const fn row(
    label: &'static str,
    set: &'static str,
    key: &'static str,
    unit: &'static str,
    better: Better,
    target: Target,
) -> Row {
    Row {
        label,
        set,
        key,
        unit,
        better,
        target,
    }
}

const TOKIO: &str = "melody-tokio";
const BASELINE: &str = "baseline";

/// The section that goes between the markers.
pub fn render(runs: &[Run], note: &str, svg_path: &str) -> String {
    let names = servers(runs);
    let mut md = String::new();
    if !note.is_empty() {
        let _ = writeln!(md, "{note}\n");
    }
    if rounds(runs) > 1 {
        let _ = writeln!(
            md,
            "Each figure is the median of the rounds that measured it (up to {}), the \
             servers taking turns within each round.\n",
            rounds(runs)
        );
    }
    let _ = write!(md, "| figure |");
    for name in &names {
        let _ = write!(md, " {name} |");
    }
    let _ = writeln!(md, " tokio ÷ baseline | target (issue 16) |");
    let _ = write!(md, "| --- |");
    for _ in &names {
        let _ = write!(md, " ---: |");
    }
    let _ = writeln!(md, " ---: | --- |");
    for row in ROWS {
        if names
            .iter()
            .all(|n| figure(runs, n, row.set, row.key).is_none())
        {
            continue;
        }
        let _ = write!(md, "| {} |", row.label);
        for name in &names {
            let value = figure(runs, name, row.set, row.key);
            let _ = write!(
                md,
                " {} |",
                value.map_or("–".into(), |v| format_value(v, row.unit))
            );
        }
        let tokio = figure(runs, TOKIO, row.set, row.key);
        let base = figure(runs, BASELINE, row.set, row.key);
        let ratio = match (tokio, base) {
            (Some(t), Some(b)) if b > 0.0 => Some(t / b),
            _ => None,
        };
        let _ = write!(
            md,
            " {} |",
            ratio.map_or("–".into(), |r| format!("{r:.2}×"))
        );
        let adapters: Vec<f64> = names
            .iter()
            .filter(|n| n.starts_with("melody-"))
            .filter_map(|n| figure(runs, n, row.set, row.key))
            .collect();
        let _ = writeln!(md, " {} |", verdict(row.target, tokio, ratio, &adapters));
    }
    let _ = writeln!(md);
    render_adapter_spread(&mut md, runs, &names);
    let _ = writeln!(
        md,
        "\n![deliveries per second and server CPU per delivery against subscribers]({svg_path})\n"
    );
    md
}

/// smol and async-std against tokio: the issue asks for every figure within 20%.
/// Reference and naive-baseline rows are not adapters.
fn render_adapter_spread(md: &mut String, runs: &[Run], names: &[&str]) {
    let others: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != TOKIO && n.starts_with("melody-"))
        .collect();
    if others.is_empty() || !names.contains(&TOKIO) {
        return;
    }
    let _ = write!(
        md,
        "| figure, ratio to melody-tokio (better side ≤ 1.2× is within 20%) |"
    );
    for name in &others {
        let _ = write!(md, " {name} |");
    }
    let _ = writeln!(md);
    let _ = write!(md, "| --- |");
    for _ in &others {
        let _ = write!(md, " ---: |");
    }
    let _ = writeln!(md);
    for row in ROWS
        .iter()
        .filter(|r| r.key != "lost" && r.key != "server_dropped")
    {
        let Some(tokio) = figure(runs, TOKIO, row.set, row.key).filter(|t| *t > 0.0) else {
            continue;
        };
        let _ = write!(md, "| {} |", row.label);
        for name in &others {
            let cell = match figure(runs, name, row.set, row.key) {
                Some(v) => {
                    // Express "worse by" the same way for both directions.
                    let worse = match row.better {
                        Better::Lower => v / tokio,
                        Better::Higher => tokio / v.max(f64::MIN_POSITIVE),
                    };
                    let mark = if worse <= 1.2 { "" } else { " ✘" };
                    format!("{:.2}×{mark}", v / tokio)
                }
                None => "–".into(),
            };
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
}

fn verdict(target: Target, tokio: Option<f64>, ratio: Option<f64>, adapters: &[f64]) -> String {
    match (target, tokio, ratio) {
        (Target::EveryAdapterAtMost(bound), ..) if !adapters.is_empty() => {
            let met = adapters.iter().all(|v| *v <= bound);
            format!(
                "≤ {bound} on every adapter: {}",
                if met { "met" } else { "**not met**" }
            )
        }
        (Target::None, ..) => String::new(),
        (Target::RatioAtMost(bound), _, Some(r)) => {
            format!(
                "≤ {bound}× baseline: {}",
                if r <= bound { "met" } else { "**not met**" }
            )
        }
        (Target::AtMost(bound), Some(t), _) => {
            format!(
                "≤ {bound}: {}",
                if t <= bound { "met" } else { "**not met**" }
            )
        }
        _ => "not measured".into(),
    }
}

fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "µs" if v < 1.0 => format!("{v:.3} µs"),
        "µs" => format!("{v:.1} µs"),
        "/s" => format!("{:.2} M/s", v / 1e6),
        "B" => format!("{} B", thousands(v.round() as u64)),
        "" => thousands(v.round() as u64),
        other => format!("{v:.2} {other}"),
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
