//! The OCI emulator as a separate process, and its admin API (call counts).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::calls::Calls;
use crate::error::{Error, Result, io};

pub struct Emulator {
    child: Child,
    pid: u32,
    pub url: String,
    http: reqwest::Client,
}

impl Emulator {
    /// Starts `bin` with `seed` on a free port; returns once it listens.
    pub async fn start(bin: &Path, seed: &Path, dir: &Path) -> Result<Self> {
        let log =
            std::fs::File::create(dir.join("emulator.log")).map_err(io("creating emulator.log"))?;
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--seed"])
            .arg(seed)
            // `BENCH_EMULATOR_LOG=oci_emulator=debug` logs every call with its time.
            .env(
                "RUST_LOG",
                std::env::var("BENCH_EMULATOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("starting {}", bin.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Process("the emulator exited at once".into()))?;
        std::fs::write(dir.join("emulator.pid"), pid.to_string())
            .map_err(io("writing emulator.pid"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Process("no stdout from the emulator".into()))?;
        // It prints exactly one line, "oci-emulator listening on http://...".
        let mut lines = BufReader::new(stdout).lines();
        let wait = Duration::from_secs(30);
        let line = tokio::time::timeout(wait, lines.next_line())
            .await
            .map_err(|_| Error::Timeout(wait, "the emulator to listen".into()))?
            .map_err(io("reading the emulator's stdout"))?
            .ok_or_else(|| {
                Error::Process("the emulator exited before listening; see emulator.log".into())
            })?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| Error::Process(format!("unexpected emulator output: {line}")))?
            .to_string();
        Ok(Self {
            child,
            pid,
            url,
            http: reqwest::Client::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub async fn calls(&self) -> Result<Calls> {
        self.get("calls").await
    }

    /// The emulator's lifecycle timing (`/_emulator/timing`, camelCase ms).
    pub async fn timing(&self) -> Result<serde_json::Value> {
        self.get("timing").await
    }

    /// A GET of the admin API's `/_emulator/<what>`.
    async fn get<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        Ok(self
            .http
            .get(format!("{}/_emulator/{what}", self.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Replaces the lifecycle timing: changes made from now on take these times.
    pub async fn set_timing(&self, timing: &serde_json::Value) -> Result<()> {
        self.http
            .put(format!("{}/_emulator/timing", self.url))
            .json(timing)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Waits until no OCI call has been made for `quiet`; returns the counts
    /// and when the last change was seen (the end of the work).
    pub async fn settle(&self, quiet: Duration, max: Duration) -> Result<(Calls, Instant)> {
        let start = Instant::now();
        let mut last = self.calls().await?;
        let mut changed = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.calls().await?;
            if now != last {
                last = now;
                changed = Instant::now();
            } else if changed.elapsed() >= quiet {
                return Ok((last, changed));
            }
            if start.elapsed() > max {
                return Err(Error::Timeout(max, "OCI calls to stop".into()));
            }
        }
    }

    pub async fn stop(mut self, dir: &Path) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_file(dir.join("emulator.pid"));
    }
}
