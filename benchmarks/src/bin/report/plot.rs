//! The SVG plot: deliveries per second and server CPU per delivery against the number
//! of subscribers, one line per server.

use plotters::prelude::*;

use crate::results::{figure, servers, Run};

/// The broadcast sets, by subscriber count.
const SETS: [(u32, &str); 3] = [
    (100, "broadcast-100"),
    (1000, "broadcast-1k"),
    (10_000, "broadcast-10k"),
];

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(120, 120, 120),
    RGBColor(148, 103, 189),
];

/// Writes the two panels side by side to `path`.
pub fn draw(runs: &[Run], path: &str) -> Result<(), String> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(500);
    panel(
        runs,
        &left,
        "deliveries per second (millions)",
        "deliveries_per_sec",
        1e-6,
    )?;
    panel(
        runs,
        &right,
        "server CPU per delivery (µs)",
        "server_cpu_per_delivery_us",
        1.0,
    )?;
    root.present().map_err(|e| e.to_string())
}

fn panel(
    runs: &[Run],
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    key: &str,
    scale: f64,
) -> Result<(), String> {
    let names = servers(runs);
    let series: Vec<(&str, Vec<(f64, f64)>)> = names
        .iter()
        .map(|name| {
            let points = SETS
                .iter()
                .filter_map(|(n, set)| {
                    figure(runs, name, set, key).map(|v| (f64::from(*n), v * scale))
                })
                .collect();
            (*name, points)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0_f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d((60f64..16_000f64).log_scale(), 0f64..top.max(1e-9))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("subscribers")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, points)) in series.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}
