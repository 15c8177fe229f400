//! Soak: a service's steady mixed traffic (openai SDK calls plain, streamed
//! and with tools, plain GETs with ever-new query strings, a new client every
//! 500 calls) for an hour under `pytrace attach`, pytrace's RSS sampled every
//! 10 s. After a warm-up (a tenth of the run, at least a minute) the RSS must
//! stay flat: its least-squares slope is held against 2 MiB per hour, the
//! figure a node agent running for weeks can afford. Not part of `--quick`
//! (CI); `--only soak --soak-minutes N` runs it alone, for N minutes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::processes::{Server, Tracer, Workload};
use crate::shell::step;

/// Calls per second of the soak workload.
const RATE: u32 = 100;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Growth after warm-up that still counts as flat.
pub const TARGET_MIB_PER_HOUR: f64 = 2.0;

#[derive(Clone, Debug, Default)]
pub struct Soak {
    pub minutes: f64,
    pub calls: u64,
    /// Calls per second achieved (the pace is [`RATE`]; a loaded machine makes fewer).
    pub achieved_rate: f64,
    pub errors: u64,
    pub spans: u64,
    pub events_lost: u64,
    pub cpu_ms: f64,
    pub trend: Trend,
}

/// The RSS after warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trend {
    pub warm_up_s: f64,
    pub rss_after_warm_up_kib: u64,
    pub rss_at_end_kib: u64,
    pub rss_max_kib: u64,
    pub slope_mib_per_hour: f64,
}

pub fn measure(python: &Path, server: &Server, minutes: f64, dir: &Path) -> anyhow::Result<Soak> {
    let seconds = minutes * 60.0;
    step(&format!("soak: mixed traffic at {RATE} calls/s for {minutes} min under pytrace attach, RSS every 10 s"));
    let extra = ["--seconds", &seconds.to_string(), "--rate", &RATE.to_string()];
    let mut app = Workload::start(Command::new(python), server, "soak", 0, &extra)?;
    let tracer = Tracer::attach(app.pid, &[], dir)?;
    let start = Instant::now();
    app.go()?;
    let mut samples = vec![(0.0, tracer.rss_kib())];
    let mut next_report = Duration::from_secs(300);
    let result = loop {
        if let Some(result) = app.poll_result(SAMPLE_EVERY)? {
            break result;
        }
        let at = start.elapsed();
        samples.push((at.as_secs_f64(), tracer.rss_kib()));
        if at >= next_report {
            step(&format!(
                "soak: {} of {minutes} min, pytrace RSS {:.1} MiB",
                at.as_secs() / 60,
                mib(tracer.rss_kib())
            ));
            next_report += Duration::from_secs(300);
        }
        anyhow::ensure!(at.as_secs_f64() < seconds + 120.0, "the soak workload did not finish");
    };
    samples.push((start.elapsed().as_secs_f64(), tracer.rss_kib()));
    let figures = tracer.stop();
    let csv: String = samples.iter().map(|(t, kib)| format!("{t:.0},{kib}\n")).collect();
    std::fs::write(dir.join("soak-rss.csv"), format!("seconds,rss_kib\n{csv}"))?;
    Ok(Soak {
        minutes,
        calls: result["count"].as_u64().unwrap_or(0),
        achieved_rate: result["count"].as_f64().unwrap_or(0.0) / result["seconds"].as_f64().unwrap_or(1.0).max(1.0),
        errors: result["errors"].as_u64().unwrap_or(0),
        spans: figures.summary["spans_emitted"].as_u64().unwrap_or(0),
        events_lost: figures.summary["events_lost"].as_u64().unwrap_or(0)
            + figures.summary["events_dropped"].as_u64().unwrap_or(0),
        cpu_ms: figures.cpu_ms,
        trend: trend(&samples),
    })
}

/// The RSS trend after the warm-up: a tenth of the run, at least a minute.
pub fn trend(samples: &[(f64, u64)]) -> Trend {
    let end = samples.last().map_or(0.0, |s| s.0);
    let warm_up_s = (end / 10.0).max(60.0);
    let warm: Vec<(f64, f64)> = samples.iter().filter(|s| s.0 >= warm_up_s).map(|&(t, kib)| (t, kib as f64)).collect();
    let Some(&(_, first)) = warm.first() else { return Trend { warm_up_s, ..Trend::default() } };
    let n = warm.len() as f64;
    let (mean_t, mean_r) = (warm.iter().map(|s| s.0).sum::<f64>() / n, warm.iter().map(|s| s.1).sum::<f64>() / n);
    let covariance: f64 = warm.iter().map(|(t, r)| (t - mean_t) * (r - mean_r)).sum();
    let variance: f64 = warm.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    let kib_per_s = if variance > 0.0 { covariance / variance } else { 0.0 };
    Trend {
        warm_up_s,
        rss_after_warm_up_kib: first as u64,
        rss_at_end_kib: warm.last().map_or(0, |s| s.1 as u64),
        rss_max_kib: warm.iter().map(|s| s.1 as u64).max().unwrap_or(0),
        slope_mib_per_hour: kib_per_s * 3600.0 / 1024.0,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn render(soak: &Soak) -> String {
    let t = &soak.trend;
    let verdict = if t.slope_mib_per_hour <= TARGET_MIB_PER_HOUR { "met" } else { "**not met**" };
    format!(
        "## Soak\n\n\
         {:.0} min of mixed traffic paced to {RATE} calls/s ({} calls, {:.0}/s achieved, {} errors; {} spans, {} \
         events lost; pytrace CPU {:.1} s). pytrace's RSS after a {:.0} s warm-up: {:.1} MiB, at the end {:.1} MiB, at most {:.1} MiB; \
         trend **{:+.2} MiB/hour** (target ≤ {TARGET_MIB_PER_HOUR} MiB/hour: {verdict}). Samples: \
         target/bench/soak-rss.csv.\n",
        soak.minutes,
        soak.calls,
        soak.achieved_rate,
        soak.errors,
        soak.spans,
        soak.events_lost,
        soak.cpu_ms / 1000.0,
        t.warm_up_s,
        mib(t.rss_after_warm_up_kib),
        mib(t.rss_at_end_kib),
        mib(t.rss_max_kib),
        t.slope_mib_per_hour,
    )
}

pub fn to_json(soak: &Soak) -> serde_json::Value {
    let t = &soak.trend;
    serde_json::json!({
        "minutes": soak.minutes,
        "calls": soak.calls,
        "achieved_rate": soak.achieved_rate,
        "errors": soak.errors,
        "spans": soak.spans,
        "events_lost": soak.events_lost,
        "pytrace_cpu_ms": soak.cpu_ms,
        "warm_up_s": t.warm_up_s,
        "rss_after_warm_up_kib": t.rss_after_warm_up_kib,
        "rss_at_end_kib": t.rss_at_end_kib,
        "rss_max_kib": t.rss_max_kib,
        "slope_mib_per_hour": t.slope_mib_per_hour,
        "target_mib_per_hour": TARGET_MIB_PER_HOUR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_ignores_the_warm_up_and_measures_growth_per_hour() {
        // Ten minutes: a steep warm-up, then 1 KiB more every 10 s (0.35 MiB/hour).
        let samples: Vec<(f64, u64)> =
            (0..=60).map(|i| (i as f64 * 10.0, if i < 6 { 1000 * i } else { 20_000 + i })).collect();
        let t = trend(&samples);
        assert_eq!(t.warm_up_s, 60.0);
        assert_eq!((t.rss_after_warm_up_kib, t.rss_at_end_kib, t.rss_max_kib), (20_006, 20_060, 20_060));
        assert!((t.slope_mib_per_hour - 360.0 / 1024.0).abs() < 1e-9, "{}", t.slope_mib_per_hour);
    }
}
