//! The end-of-run summary shared by `data generate` and `data validate`.

use ibert_datagen::{PipelineReport, Summary};
use ibert_oracle::PoolStats;

use crate::ui::table;

pub fn render(summary: &Summary, report: &PipelineReport, workers: usize, pool: &PoolStats) -> String {
    let mut out = String::new();
    let seconds = report.wall.as_secs_f64().max(1e-9);
    out.push_str(&format!(
        "\n{} examples in {:.1}s with {workers} worker{}: {} verified ({:.1}/s), {} rejected\n",
        summary.total,
        seconds,
        if workers == 1 { "" } else { "s" },
        summary.verified,
        summary.verified as f64 / seconds,
        summary.rejected_total()
    ));
    if !summary.rejected.is_empty() {
        let rows: Vec<Vec<String>> = summary.rejected.iter().map(|(reason, n)| vec![reason.clone(), n.to_string()]).collect();
        out.push_str("\nRejected by reason\n");
        out.push_str(&table(&["reason", "count"], &rows));
    }

    let timings = &report.timings;
    let thread_time = seconds * workers as f64;
    let parts = [
        ("oracle compile (Python)", timings.compile.as_secs_f64()),
        ("DuckDB execution", timings.execute.as_secs_f64()),
        ("fixture creation", timings.fixtures.as_secs_f64()),
        ("comparison", timings.compare.as_secs_f64()),
    ];
    let accounted: f64 = parts.iter().map(|(_, s)| s).sum();
    let mut rows: Vec<Vec<String>> = parts.iter().map(|(name, s)| vec![name.to_string(), format!("{s:.2}"), percent(*s, thread_time)]).collect();
    let rest = (thread_time - accounted).max(0.0);
    rows.push(vec!["the rest (scheduling, idle, I/O)".into(), format!("{rest:.2}"), percent(rest, thread_time)]);
    out.push_str(&format!("\nWhere the time went (thread-seconds, {} oracle requests, {} timeouts, {} crashes)\n", pool.requests, pool.timeouts, pool.crashes));
    out.push_str(&table(&["step", "seconds", "share"], &rows));

    let feature_rows: Vec<Vec<String>> = summary.per_feature.iter().map(|(name, (ok, bad))| vec![name.clone(), ok.to_string(), bad.to_string()]).collect();
    if !feature_rows.is_empty() {
        out.push_str("\nPer feature\n");
        out.push_str(&table(&["feature", "verified", "rejected"], &feature_rows));
    }
    let template_rows: Vec<Vec<String>> =
        summary.per_template.iter().filter(|(name, _)| !name.is_empty()).map(|(name, (ok, bad))| vec![name.clone(), ok.to_string(), bad.to_string()]).collect();
    if !template_rows.is_empty() {
        out.push_str("\nPer template\n");
        out.push_str(&table(&["template", "verified", "rejected"], &template_rows));
    }
    out.push('\n');
    out
}

fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 { "0%".into() } else { format!("{:.0}%", 100.0 * part / whole) }
}
