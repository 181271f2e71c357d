//! The benchmark's output: one `RESULT {json}` line per pass, then a Markdown table.

use crate::clients::{Latency, Throughput};

pub struct Pass {
    pub name: &'static str,
    pub round: u32,
    pub latency: Latency,
    pub throughput: Throughput,
}

fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Pass {
    pub fn print_json(&self) {
        let (l, t) = (&self.latency, &self.throughput);
        println!(
            "RESULT {{\"pass\":\"{}\",\"round\":{},\"latency_samples\":{},\"latency_p50_us\":{:.1},\"latency_p99_us\":{:.1},\"deliveries\":{},\"expected\":{},\"deliveries_per_s\":{:.0},\"loaded_p50_us\":{:.1},\"loaded_p99_us\":{:.1}}}",
            self.name,
            self.round,
            l.samples,
            micros(l.p50),
            micros(l.p99),
            t.deliveries,
            t.expected,
            t.per_second,
            micros(t.p50),
            micros(t.p99),
        );
    }
}

pub fn print_table(passes: &[Pass]) {
    println!("\n| pass | round | latency p50 | latency p99 | deliveries/s | lost | p50 under load | p99 under load |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for p in passes {
        let (l, t) = (&p.latency, &p.throughput);
        println!(
            "| {} | {} | {:.0} µs | {:.0} µs | {:.0} | {} | {:.0} µs | {:.0} µs |",
            p.name,
            p.round,
            micros(l.p50),
            micros(l.p99),
            t.per_second,
            t.expected.saturating_sub(t.deliveries),
            micros(t.p50),
            micros(t.p99),
        );
    }
}
