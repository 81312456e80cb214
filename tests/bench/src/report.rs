//! The results: a table (figure, floor, ratio, target) printed and written as
//! Markdown, a JSON document, and the machine they were measured on.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, io};

/// One figure beside its floor and target.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub figure: String,
    pub unit: String,
    pub measured: Option<f64>,
    pub floor: Option<f64>,
    pub ratio: Option<f64>,
    pub target: Option<String>,
    pub met: Option<bool>,
    pub note: String,
}

impl Row {
    pub fn new(scenario: &str, figure: &str, unit: &str, measured: f64) -> Self {
        Self {
            scenario: scenario.into(),
            figure: figure.into(),
            unit: unit.into(),
            measured: Some(measured),
            floor: None,
            ratio: None,
            target: None,
            met: None,
            note: String::new(),
        }
    }

    pub fn skipped(scenario: &str, figure: &str, why: &str) -> Self {
        Self {
            measured: None,
            note: why.into(),
            ..Self::new(scenario, figure, "", 0.0)
        }
    }

    pub fn floor(mut self, floor: f64) -> Self {
        self.floor = Some(floor);
        self.ratio = self.measured.filter(|_| floor > 0.0).map(|m| m / floor);
        self
    }

    pub fn target(mut self, target: &str, met: bool) -> Self {
        self.target = Some(target.into());
        self.met = Some(met);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    pub fn this() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|r| r.trim_start_matches([' ', '\t', ':']).trim().to_string())
                .unwrap_or_else(|| "unknown".into()),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} CPUs (nproc), {}, {} GiB RAM, Linux {}",
            self.cpus, self.cpu_model, self.memory_gib, self.kernel
        )
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    /// /proc/loadavg (1, 5, 15 min) at the start and the end: the machine is
    /// shared, and other work on it shows in the figures.
    pub load_start: String,
    pub load_end: String,
    pub started_unix: u64,
    pub duration_seconds: f64,
    pub settings: serde_json::Value,
    pub rows: Vec<Row>,
    /// Per scenario: OCI calls by operation and outcome, timings, samples.
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Scenarios that did not finish, with their error.
    pub errors: Vec<String>,
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v == v.trunc() && v.abs() < 1e9 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
    }
}

impl Report {
    /// The results as a Markdown table (also what is printed).
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| scenario | figure | measured | floor | ratio | target | met | note |\n|---|---|---:|---:|---:|---|---|---|\n",
        );
        for r in &self.rows {
            let unit = if r.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", r.unit)
            };
            let measured = match r.measured {
                Some(_) => format!("{}{unit}", fmt(r.measured)),
                None => "skipped".into(),
            };
            let floor = match r.floor {
                Some(_) => format!("{}{unit}", fmt(r.floor)),
                None => "–".into(),
            };
            let ratio = r.ratio.map_or("–".into(), |v| format!("{v:.2}x"));
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.scenario,
                r.figure,
                measured,
                floor,
                ratio,
                r.target.as_deref().unwrap_or("–"),
                met,
                r.note
            ));
        }
        out
    }

    /// Writes results.json (latest) and results-<unix time>.json; returns the latter.
    pub fn write_json(&self, dir: &Path) -> Result<PathBuf> {
        let text = serde_json::to_string_pretty(self)?;
        let path = dir.join(format!("results-{}.json", self.started_unix));
        std::fs::write(&path, &text).map_err(io(format!("writing {}", path.display())))?;
        std::fs::write(dir.join("results.json"), &text).map_err(io("writing results.json"))?;
        std::fs::write(dir.join("results.md"), self.markdown())
            .map_err(io("writing results.md"))?;
        Ok(path)
    }

    /// The block that goes into docs/benchmarks.md.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Measured on: {}. Load average {} at the start, {} at the end. Run took {:.0} s. Settings: `{}`.\n\n",
            self.machine.line(),
            self.load_start,
            self.load_end,
            self.duration_seconds,
            self.settings_line()
        );
        out.push_str(&self.table());
        if let Some(serde_json::Value::Array(steps)) = self.details.get("operator_timeline") {
            let parts: Vec<String> = steps
                .iter()
                .filter_map(|st| {
                    Some(format!(
                        "{} {:.1} MiB",
                        st.get("after")?.as_str()?,
                        st.get("rss_mib")?.as_f64()?
                    ))
                })
                .collect();
            out.push_str(&format!(
                "\nOperator RSS after each step: {}.\n",
                parts.join("; ")
            ));
        }
        for e in &self.errors {
            out.push_str(&format!("\nNot finished: {e}\n"));
        }
        out
    }

    fn settings_line(&self) -> String {
        match &self.settings {
            serde_json::Value::Object(m) => m
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        }
    }

    /// Replaces the text between the bench markers of `docs`, if it has them.
    pub fn update_docs(&self, docs: &Path) -> Result<bool> {
        const BEGIN: &str = "<!-- bench:results:begin -->";
        const END: &str = "<!-- bench:results:end -->";
        let Ok(text) = std::fs::read_to_string(docs) else {
            return Ok(false);
        };
        let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
            return Ok(false);
        };
        if e < b {
            return Ok(false);
        }
        let new = format!("{}{BEGIN}\n{}{}", &text[..b], self.markdown(), &text[e..]);
        std::fs::write(docs, new).map_err(io(format!("writing {}", docs.display())))?;
        Ok(true)
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
