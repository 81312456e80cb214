//! A TCP proxy to the API server that can be switched off: what an API
//! server outage looks like to the operator (connections cut, new ones
//! refused), used by the outage, probe and shutdown tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to the API server that can be switched off. Off, it closes
/// its listening socket (new connections are refused, as by a host that is
/// down) and drops every open connection; on, it listens again on the same
/// address.
pub struct Outage {
    up: watch::Sender<bool>,
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // The address is taken again after each outage.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// Starts the proxy to `upstream` (host:port); its `https://` URL and switch.
async fn proxy(upstream: String) -> Result<(String, Outage)> {
    let first = listen("127.0.0.1:0".parse()?)?;
    let addr = first.local_addr()?;
    let (up, mut state) = watch::channel(true);
    tokio::spawn(async move {
        let mut listener = Some(first);
        loop {
            let Some(open) = listener.take() else {
                // Down: wait for the way back, then listen again.
                if state.wait_for(|up| *up).await.is_err() {
                    return;
                }
                listener = listen(addr).ok();
                continue;
            };
            let mut watching = state.clone();
            tokio::select! {
                accepted = open.accept() => {
                    listener = Some(open);
                    let Ok((mut client, _)) = accepted else { continue };
                    let upstream = upstream.clone();
                    let mut state = state.clone();
                    state.mark_unchanged();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = state.wait_for(|up| !*up) => {}
                        }
                    });
                }
                // Down: the listener is dropped (refusing), connections cut.
                down = watching.wait_for(|up| !*up) => {
                    if down.is_err() {
                        return; // the test is over
                    }
                }
            }
        }
    });
    Ok((format!("https://{addr}"), Outage { up }))
}

impl Outage {
    pub fn down(&self) {
        self.up.send_replace(false);
    }
    pub fn up(&self) {
        self.up.send_replace(true);
    }
}

/// The proxy in front of the API server the environment's kubeconfig names,
/// and the client configuration that goes through it.
pub async fn api_server_proxy() -> Result<(kube::Config, Outage)> {
    let mut config = kube::Config::infer().await?;
    let upstream = config
        .cluster_url
        .authority()
        .context("API server address")?
        .to_string();
    let (url, outage) = proxy(upstream).await?;
    config.cluster_url = url.parse()?;
    Ok((config, outage))
}

/// [`api_server_proxy`], and a kubeconfig file that goes through it (for an
/// operator process).
pub async fn in_front_of_the_api_server() -> Result<(Outage, PathBuf)> {
    let (config, outage) = api_server_proxy().await?;
    let url = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let path = std::env::var("KUBECONFIG").context("KUBECONFIG (source the sandbox env)")?;
    let mut kubeconfig: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
    if let Some(clusters) = kubeconfig["clusters"].as_sequence_mut() {
        for c in clusters {
            c["cluster"]["server"] = serde_yaml::Value::String(url.clone());
        }
    }
    let port = url.rsplit(':').next().unwrap_or("0");
    let through =
        std::env::temp_dir().join(format!("kubeconfig-outage-{}-{port}", std::process::id()));
    std::fs::write(&through, serde_yaml::to_string(&kubeconfig)?)?;
    Ok((outage, through))
}
