//! The operator process's HTTP endpoints, as the kubelet and Prometheus see
//! them: probe status codes and `/metrics` samples.

use std::time::{Duration, Instant};

use anyhow::Result;
use test_support::wait_until;

/// A port nothing listens on now, for the operator's probes.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The status code of `GET http://127.0.0.1:<port><path>` (0: no answer).
pub async fn status_of(port: u16, path: &str) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build();
    match client {
        Ok(c) => match c.get(format!("http://127.0.0.1:{port}{path}")).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        },
        Err(_) => 0,
    }
}

/// The body of `GET http://127.0.0.1:<port><path>`, whatever the status.
pub async fn text_of(port: u16, path: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await?;
    Ok(response.text().await?)
}

/// Waits up to `limit` for `path` to answer `code`; how long it took.
pub async fn answers(port: u16, path: &str, code: u16, limit: Duration) -> Result<Duration> {
    let began = Instant::now();
    if wait_until(limit, || async { Ok(status_of(port, path).await == code) })
        .await
        .is_err()
    {
        let last = status_of(port, path).await;
        anyhow::bail!("{path} never answered {code} within {limit:?} (last: {last})");
    }
    Ok(began.elapsed())
}

/// The text of `GET http://127.0.0.1:<port>/metrics`.
pub async fn scrape(port: u16) -> Result<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await?
        .error_for_status()?;
    Ok(response.text().await?)
}

/// The value of the sample `series` (name and labels exactly as served,
/// e.g. `x_total{result="ok"}`) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

/// The families a scrape declares (`# TYPE <name> <type>`), with their type.
pub fn families(scrape: &str) -> Vec<(String, String)> {
    scrape
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split(' ');
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}
