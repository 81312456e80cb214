//! `oci-emulator`: the OCI networking emulator as a standalone process.

use oci_emulator::{Emulator, EmulatorConfig, IdentityConfig, KeySpec, Seed};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
Usage: oci-emulator [--listen ADDR] [--seed FILE] [--keys-file FILE]
                    [--no-verify-signatures] [--random-seed N]
                    [--proxymux-listen ADDR] [--session-ttl SECONDS]
                    [--service-account-token TOKEN]... [--cluster-ca-out FILE]

  --listen ADDR             where to listen (default 127.0.0.1:9090; port 0 picks one)
  --seed FILE               seed document (YAML or JSON); see README.md
  --keys-file FILE          extra API keys: a YAML/JSON list of
                            {keyId | tenancyId+userId, publicKeyPem | publicKeyFile}
  --no-verify-signatures    accept unsigned requests
  --random-seed N           make probabilistic faults reproducible
  --proxymux-listen ADDR    the proxymux's TLS listener (default 127.0.0.1:0: a free port)
  --session-ttl SECONDS     lifetime of session tokens (default 1200)
  --service-account-token TOKEN
                            a bearer token the proxymux accepts (repeatable;
                            without any, every non-empty token is accepted)
  --cluster-ca-out FILE     write the CA of the proxymux's certificate (PEM) here

Prints `oci-emulator listening on URL` and `oci-emulator proxymux on URL`.
Logs go to stderr (RUST_LOG=oci_emulator=debug for every call).";

struct Args {
    listen: SocketAddr,
    seed: Option<PathBuf>,
    keys_file: Option<PathBuf>,
    verify_signatures: bool,
    random_seed: Option<u64>,
    identity: IdentityConfig,
    cluster_ca_out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
        seed: None,
        keys_file: None,
        verify_signatures: true,
        random_seed: None,
        identity: IdentityConfig::default(),
        cluster_ca_out: None,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = |name: &str| iter.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let text = value("--listen")?;
                args.listen = text
                    .parse()
                    .map_err(|_| format!("--listen: not an address: {text}"))?;
            }
            "--seed" => args.seed = Some(PathBuf::from(value("--seed")?)),
            "--keys-file" => args.keys_file = Some(PathBuf::from(value("--keys-file")?)),
            "--no-verify-signatures" => args.verify_signatures = false,
            "--random-seed" => {
                let text = value("--random-seed")?;
                args.random_seed = Some(
                    text.parse()
                        .map_err(|_| format!("--random-seed: not a number: {text}"))?,
                );
            }
            "--proxymux-listen" => {
                let text = value("--proxymux-listen")?;
                args.identity.proxymux_listen = text
                    .parse()
                    .map_err(|_| format!("--proxymux-listen: not an address: {text}"))?;
            }
            "--session-ttl" => {
                let text = value("--session-ttl")?;
                let seconds: u64 = text
                    .parse()
                    .map_err(|_| format!("--session-ttl: not a number of seconds: {text}"))?;
                args.identity.session_ttl = Duration::from_secs(seconds);
            }
            "--service-account-token" => {
                let token = value("--service-account-token")?;
                if token.is_empty() {
                    return Err("--service-account-token: empty".into());
                }
                args.identity.service_account_tokens.push(token);
            }
            "--cluster-ca-out" => {
                args.cluster_ca_out = Some(PathBuf::from(value("--cluster-ca-out")?));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn read_keys(path: &Path) -> Result<Vec<KeySpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut keys: Vec<KeySpec> =
        serde_yaml::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display()))?;
    if let Some(dir) = path.parent() {
        for key in &mut keys {
            key.resolve_relative_to(dir);
        }
    }
    Ok(keys)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("oci_emulator=info")),
        )
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("oci-emulator: {message}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let seed = match &args.seed {
        Some(path) => match Seed::from_file(path) {
            Ok(seed) => seed,
            Err(e) => {
                eprintln!("oci-emulator: {e}");
                return ExitCode::from(2);
            }
        },
        None => Seed::default(),
    };
    let keys = match &args.keys_file {
        Some(path) => match read_keys(path) {
            Ok(keys) => keys,
            Err(e) => {
                eprintln!("oci-emulator: {e}");
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    let config = EmulatorConfig {
        listen: args.listen,
        seed,
        keys,
        verify_signatures: args.verify_signatures,
        random_seed: args.random_seed,
        identity: args.identity,
        ..EmulatorConfig::default()
    };
    let handle = match Emulator::start(config).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("oci-emulator: {e}");
            return ExitCode::from(1);
        }
    };
    // Written before the listening line, so whoever waits for that line can
    // read the file.
    if let Some(path) = &args.cluster_ca_out
        && let Err(e) = std::fs::write(path, handle.cluster_ca_pem())
    {
        eprintln!("oci-emulator: cannot write {}: {e}", path.display());
        handle.shutdown().await;
        return ExitCode::from(1);
    }
    // The sandbox scripts wait for the first line. One write for both lines,
    // and write errors ignored: a reader that takes the first line and closes
    // the pipe must not make the second one fail (println! would panic).
    let banner = format!(
        "oci-emulator listening on {}\noci-emulator proxymux on {}\n",
        handle.base_url(),
        handle.proxymux_url()
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes());
    let _ = stdout.flush();
    drop(stdout);
    wait_for_signal().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
