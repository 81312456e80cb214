//! The Kubernetes API of the operator: the `ReservedIP` resource and its
//! status conditions. Everything else reads and writes ReservedIPs through
//! these types.

pub mod conditions;
pub mod crd;
pub mod tags;
