//! What every scenario hands back: counters, latency distributions and failed checks, printed
//! as a table for people or as JSON (`--json`) for machines.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency distribution in microseconds, from 1 µs to 10 minutes at 3 significant digits.
pub struct Recorder(Histogram<u64>);

impl Recorder {
    pub fn new() -> Self {
        // The bounds are constants within hdrhistogram's limits, so this cannot fail.
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }

    pub fn record(&mut self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides: `add` only fails on incompatible bounds.
        let _ = self.0.add(&other.0);
    }

    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self, name: &str) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let empty = self.0.is_empty();
        let at = |q: f64| {
            if empty {
                0.0
            } else {
                ms(self.0.value_at_quantile(q))
            }
        };
        // The curve of `--plot`: the latency at quantiles spaced evenly on the plot's axis,
        // log10(1 / (1 - q)), from the fastest (q = 0) to 99.999 %.
        let curve = if empty {
            Vec::new()
        } else {
            (0..=CURVE_STEPS)
                .map(|step| {
                    let decades = f64::from(step) * CURVE_DECADES / f64::from(CURVE_STEPS);
                    let q = 1.0 - 10f64.powf(-decades);
                    (q, at(q))
                })
                .collect()
        };
        Latency {
            name: name.to_owned(),
            count: self.0.len(),
            mean_ms: if empty { 0.0 } else { self.0.mean() / 1000.0 },
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: if empty { 0.0 } else { ms(self.0.max()) },
            curve,
        }
    }
}

/// Points of a latency curve, and the decades of `1 / (1 - q)` they span (5: up to 99.999 %).
const CURVE_STEPS: u32 = 100;
pub const CURVE_DECADES: f64 = 5.0;

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub name: String,
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// (quantile, milliseconds) from the median up, for `--plot`; not in the JSON report.
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counter {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// The outcome of one scenario run. `failures` non-empty means the run failed its checks.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    pub counters: Vec<Counter>,
    pub latencies: Vec<Latency>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str, target: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            parameters: serde_json::Map::new(),
            counters: Vec::new(),
            latencies: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn param(&mut self, name: &str, value: impl Into<serde_json::Value>) {
        self.parameters.insert(name.to_owned(), value.into());
    }

    pub fn counter(&mut self, name: &str, value: f64, unit: &str) {
        self.counters.push(Counter {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
        });
    }

    /// Looks a counter up by name (used to compare two runs, e.g. bridge against gRPC).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.counters
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }

    pub fn latency(&mut self, name: &str, recorder: &Recorder) {
        self.latencies.push(recorder.summary(name));
    }

    pub fn fail(&mut self, why: impl Into<String>) {
        self.failures.push(why.into());
    }

    pub fn print_table(&self) {
        println!("scenario  {}  ({})", self.scenario, self.target);
        let params: Vec<String> = self
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !params.is_empty() {
            println!("params    {}", params.join(" "));
        }
        println!();
        for c in &self.counters {
            println!("  {:<28} {:>14} {}", c.name, format_value(c.value), c.unit);
        }
        if !self.latencies.is_empty() {
            println!();
            println!(
                "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency (ms)", "count", "mean", "p50", "p90", "p99", "max"
            );
            for l in &self.latencies {
                println!(
                    "  {:<22} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    l.name, l.count, l.mean_ms, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
                );
            }
        }
        println!();
        if self.failures.is_empty() {
            println!("result    ok");
        } else {
            for f in &self.failures {
                println!("FAILED    {f}");
            }
        }
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_out_in_milliseconds() {
        let mut r = Recorder::new();
        for ms in 1..=100 {
            r.record(Duration::from_millis(ms));
        }
        let s = r.summary("x");
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{}", s.p99_ms);
        assert!((s.max_ms - 100.0).abs() < 0.1, "{}", s.max_ms);
    }

    #[test]
    fn empty_distribution_reports_zeros() {
        let s = Recorder::new().summary("none");
        assert_eq!((s.count, s.p99_ms, s.max_ms), (0, 0.0, 0.0));
    }
}
