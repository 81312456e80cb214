//! The `k8s-oci-operator` binary: `run` starts the controller, `crd` prints
//! the CustomResourceDefinition generated from the Rust types.

use clap::{Parser, Subcommand};
use k8s_oci_operator::crd::crd_yaml;

#[derive(Parser)]
#[command(version, about = "Manage OCI reserved public IPs as Kubernetes ReservedIP resources")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ReservedIP CustomResourceDefinition as YAML.
    Crd,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", crd_yaml()?),
    }
    Ok(())
}
