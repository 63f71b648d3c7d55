//! The comparison's outputs: a table on stdout, and JSON, Markdown and an
//! SVG chart in the results directory.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::workloads::Row;

/// Everything a report states.
#[derive(Serialize)]
pub struct Report {
    pub machine: String,
    pub build: String,
    pub command: String,
    pub keys: u64,
    pub seconds_per_timed_row: f64,
    pub settings: Vec<(String, String)>,
    pub rows: Vec<Row>,
}

fn human(value: f64, unit: &str) -> String {
    match unit {
        "bytes" => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
        "ms" if value < 1.0 => format!("{value:.3} ms"),
        "ms" => format!("{value:.1} ms"),
        "%" => format!("{value:.1}%"),
        _ if value >= 1e6 => format!("{:.2}M", value / 1e6),
        _ if value >= 1e3 => format!("{:.1}K", value / 1e3),
        _ => format!("{value:.0}"),
    }
}

/// The ratio of `engine` to RocksDB on a row, oriented so that above 1 is
/// better for `engine`.
pub fn ratio(row: &Row, engine: &str) -> Option<f64> {
    ratio_to(row, engine, "rocksdb")
}

/// The ratio of `engine` to `base` on a row, oriented so that above 1 is
/// better for `engine`; none for rows that do not rank engines (shares).
pub fn ratio_to(row: &Row, engine: &str, base: &str) -> Option<f64> {
    if !row.ranked() {
        return None;
    }
    let get = |e: &str| row.results.iter().find(|m| m.engine == e).map(|m| m.value);
    let (ours, rocks) = (get(engine)?, get(base)?);
    if ours <= 0.0 || rocks <= 0.0 {
        return None;
    }
    Some(if row.higher_is_better() {
        ours / rocks
    } else {
        rocks / ours
    })
}

pub fn engines(rows: &[Row]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in rows.iter().flat_map(|r| &r.results) {
        if !names.contains(&m.engine) {
            names.push(m.engine.clone());
        }
    }
    names
}

/// The results as a Markdown table (also what stdout shows).
pub fn table(rows: &[Row]) -> String {
    let names = engines(rows);
    let mut out = String::new();
    let _ = write!(out, "| workload | unit |");
    for n in &names {
        let _ = write!(out, " {n} |");
    }
    for n in names.iter().filter(|n| *n != "rocksdb") {
        let _ = write!(out, " {n} / rocksdb |");
    }
    // LMDB is the read-speed anchor: sluicedb's ratio to it has a column.
    let anchor = names.iter().any(|n| n == "sluicedb") && names.iter().any(|n| n == "lmdb");
    if anchor {
        let _ = write!(out, " sluicedb / lmdb |");
    }
    let _ = writeln!(out, " limit |");
    let _ = write!(out, "|---|---|");
    for _ in 0..names.len() * 2 + usize::from(anchor) {
        let _ = write!(out, "---|");
    }
    let _ = writeln!(out);
    for row in rows {
        let _ = write!(out, "| {} | {} |", row.description, row.unit);
        for n in &names {
            let cell = row
                .results
                .iter()
                .find(|m| &m.engine == n)
                .map_or("-".to_string(), |m| human(m.value, &row.unit));
            let _ = write!(out, " {cell} |");
        }
        for n in names.iter().filter(|n| *n != "rocksdb") {
            let cell = ratio(row, n).map_or("-".to_string(), |r| format!("{r:.2}x"));
            let _ = write!(out, " {cell} |");
        }
        if anchor {
            let cell = ratio_to(row, "sluicedb", "lmdb").map_or("-".to_string(), |r| format!("{r:.2}x"));
            let _ = write!(out, " {cell} |");
        }
        let limit = row.limit.as_ref().map_or("-".to_string(), |(what, v)| {
            format!("{} ({what})", human(*v, &row.unit))
        });
        let _ = writeln!(out, " {limit} |");
    }
    out
}

/// Commit latencies, for the rows that measured them.
pub fn latency_table(rows: &[Row]) -> String {
    let mut out = String::from("| workload | engine | p50 | p99 |\n|---|---|---|---|\n");
    for row in rows {
        for m in &row.results {
            if let (Some(p50), Some(p99)) = (m.p50_us, m.p99_us) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {p50:.0} µs | {p99:.0} µs |",
                    row.description, m.engine
                );
            }
        }
    }
    out
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# sluicedb vs RocksDB vs redb vs LMDB\n");
    let _ = writeln!(out, "- command: `{}`", report.command);
    let _ = writeln!(out, "- machine: {}", report.machine);
    let _ = writeln!(out, "- build: {}", report.build);
    let _ = writeln!(
        out,
        "- data: {} keys of 16 bytes, 100-byte values, random order, fixed seed; timed rows run {:.1} s each\n",
        report.keys, report.seconds_per_timed_row
    );
    let _ = writeln!(
        out,
        "Ratios are oriented so that above 1 is better than the base engine (RocksDB, or LMDB in the sluicedb / lmdb column; for bytes and ms, base / engine). Rows in % are shares, not ranked: no ratio.\n"
    );
    out.push_str(&table(&report.rows));
    let _ = writeln!(out, "\n## Commit latency\n");
    out.push_str(&latency_table(&report.rows));
    let _ = writeln!(out, "\n## Settings\n");
    for (engine, s) in &report.settings {
        let _ = writeln!(out, "- **{engine}**: {s}");
    }
    out
}

/// A bar chart of each engine's throughput relative to RocksDB, one bar per
/// (workload, engine), for the throughput rows.
pub fn chart(rows: &[Row], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<String> = engines(rows)
        .into_iter()
        .filter(|n| n != "rocksdb" && n != "rocksdb-lz4")
        .collect();
    let bars: Vec<(String, usize, f64)> = rows
        .iter()
        .filter(|r| r.higher_is_better())
        .flat_map(|r| {
            names
                .iter()
                .enumerate()
                .filter_map(move |(ni, n)| ratio(r, n).map(|v| (format!("{} [{n}]", r.description), ni, v)))
        })
        .collect();
    let max = bars.iter().map(|b| b.2).fold(1.0f64, f64::max);
    let height = 80 + bars.len() as u32 * 22;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput relative to RocksDB (1.0 = equal; right is better)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(420)
        .build_cartesian_2d(0.0..max * 1.1, (0..bars.len() as i32).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bars.get(*i as usize).map(|b| b.0.clone()).unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let colors = [BLUE, GREEN, MAGENTA, CYAN];
    for (i, (_, engine, value)) in bars.iter().enumerate() {
        let i = i as i32;
        let bar = Rectangle::new(
            [(0.0, SegmentValue::Exact(i)), (*value, SegmentValue::Exact(i + 1))],
            colors[engine % colors.len()].mix(0.8).filled(),
        );
        chart.draw_series(std::iter::once(bar))?;
    }
    let one = PathElement::new(vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)], BLACK);
    chart.draw_series(std::iter::once(one))?;
    root.present()?;
    Ok(())
}
