//! The seed document (YAML or JSON) describing the world at start, and
//! building a [`World`] from it.
//!
//! The format is documented in the crate README. Secondary private IPs can be
//! given as address ranges (`range: 10.0.64.2-10.0.64.254`) so a node's pod
//! CIDR does not need hundreds of entries.

use crate::faults::FaultConfig;
use crate::lifecycle::{self, Timing};
use crate::model::*;
use crate::net::{AddressRange, Cidr};
use crate::signature::KeySpec;
use crate::world::World;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid seed document: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("invalid seed: {0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> SeedError {
    SeedError::Invalid(message.into())
}

/// The whole seed document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    pub tenancy_id: Option<String>,
    pub region: Option<String>,
    /// Availability domain of instances/subnets that do not name one.
    pub availability_domain: Option<String>,
    /// Known compartments; empty accepts any. The first is the default for
    /// resources that do not name one.
    #[serde(default)]
    pub compartments: Vec<String>,
    pub reserved_public_ip_limit: Option<usize>,
    /// CIDR blocks Oracle-chosen public addresses come from.
    #[serde(default)]
    pub oracle_public_ranges: Vec<String>,
    #[serde(default)]
    pub vcns: Vec<SeedVcn>,
    #[serde(default)]
    pub subnets: Vec<SeedSubnet>,
    #[serde(default)]
    pub instances: Vec<SeedInstance>,
    #[serde(default)]
    pub public_ip_pools: Vec<SeedPool>,
    #[serde(default)]
    pub public_ips: Vec<SeedPublicIp>,
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    pub timing: Option<Timing>,
    pub faults: Option<FaultConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVcn {
    pub id: String,
    pub display_name: Option<String>,
    pub compartment_id: Option<String>,
    pub cidr_block: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSubnet {
    pub id: String,
    pub display_name: Option<String>,
    pub compartment_id: Option<String>,
    pub vcn_id: String,
    pub cidr_block: String,
    #[serde(default)]
    pub prohibit_public_ip_on_vnic: bool,
    /// Set for an AD-specific subnet; regional otherwise.
    pub availability_domain: Option<String>,
    pub dns_label: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedInstance {
    pub id: String,
    pub display_name: Option<String>,
    pub compartment_id: Option<String>,
    pub availability_domain: Option<String>,
    pub shape: Option<String>,
    /// The first VNIC is the primary one (nicIndex 0).
    pub vnics: Vec<SeedVnic>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVnic {
    pub id: String,
    pub display_name: Option<String>,
    pub subnet_id: String,
    pub hostname_label: Option<String>,
    /// Address of the VNIC's primary private IP.
    pub primary_private_ip: String,
    /// OCID of the primary private IP; generated from the address if absent.
    pub primary_private_ip_id: Option<String>,
    /// `auto` or an address: an EPHEMERAL public IP on the primary private IP.
    pub ephemeral_public_ip: Option<String>,
    #[serde(default)]
    pub secondary_private_ips: Vec<SeedSecondaryIp>,
}

/// One secondary private IP (`ipAddress`, optional `id`) or a whole range of
/// them (`range: first-last`, ids generated).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecondaryIp {
    pub ip_address: Option<String>,
    pub id: Option<String>,
    pub range: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPool {
    pub id: String,
    pub display_name: Option<String>,
    pub compartment_id: Option<String>,
    pub cidr_blocks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPublicIp {
    pub id: Option<String>,
    pub compartment_id: Option<String>,
    /// Allocated like CreatePublicIp does if absent.
    pub ip_address: Option<String>,
    /// RESERVED (default) or EPHEMERAL.
    pub lifetime: Option<Lifetime>,
    pub display_name: Option<String>,
    #[serde(default)]
    pub freeform_tags: FreeformTags,
    #[serde(default)]
    pub defined_tags: DefinedTags,
    pub public_ip_pool_id: Option<String>,
    /// Assigned (ASSIGNED) to this private IP; AVAILABLE otherwise.
    pub private_ip_id: Option<String>,
}

impl Seed {
    /// Parses a YAML or JSON seed document.
    pub fn parse(text: &str) -> Result<Self, SeedError> {
        Ok(serde_yaml::from_str(text)?)
    }

    /// Reads a seed file. Relative `publicKeyFile` paths in it are made
    /// relative to the seed file's directory.
    pub fn from_file(path: &Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut seed = Self::parse(&text)?;
        if let Some(dir) = path.parent() {
            for key in &mut seed.keys {
                key.resolve_relative_to(dir);
            }
        }
        Ok(seed)
    }

    /// Builds the world the seed describes.
    pub fn build(&self, now: Instant) -> Result<World, SeedError> {
        Builder::new(self, now).build()
    }
}

struct Builder<'a> {
    seed: &'a Seed,
    now: Instant,
    world: World,
    default_compartment: String,
    default_ad: String,
    mac_counter: u32,
}

impl<'a> Builder<'a> {
    fn new(seed: &'a Seed, now: Instant) -> Self {
        let tenancy = seed
            .tenancy_id
            .clone()
            .unwrap_or_else(|| "ocid1.tenancy.oc1..emulator".to_string());
        let region = seed
            .region
            .clone()
            .unwrap_or_else(|| "us-emulator-1".to_string());
        let default_ad = seed
            .availability_domain
            .clone()
            .unwrap_or_else(|| format!("EMU:{}-AD-1", region.to_uppercase()));
        let default_compartment = seed
            .compartments
            .first()
            .cloned()
            .unwrap_or_else(|| tenancy.clone());
        Self {
            seed,
            now,
            world: World::empty(&tenancy, &region),
            default_compartment,
            default_ad,
            mac_counter: 0,
        }
    }

    fn compartment(&self, given: &Option<String>) -> Result<String, SeedError> {
        let compartment = given
            .clone()
            .unwrap_or_else(|| self.default_compartment.clone());
        self.world
            .check_compartment(&compartment)
            .map_err(|_| invalid(format!("unknown compartment {compartment}")))?;
        Ok(compartment)
    }

    fn build(mut self) -> Result<World, SeedError> {
        let seed = self.seed;
        self.world.compartments = seed.compartments.iter().cloned().collect();
        self.world.reserved_limit = seed.reserved_public_ip_limit.unwrap_or(50);
        self.world.timing = seed.timing.unwrap_or_default();
        let ranges = if seed.oracle_public_ranges.is_empty() {
            vec!["192.0.2.0/24".to_string()]
        } else {
            seed.oracle_public_ranges.clone()
        };
        for range in &ranges {
            let cidr: Cidr = range
                .parse()
                .map_err(|e| invalid(format!("oraclePublicRanges: {e}")))?;
            self.world.oracle_ranges.push(cidr);
        }
        for vcn in &seed.vcns {
            self.add_vcn(vcn)?;
        }
        for subnet in &seed.subnets {
            self.add_subnet(subnet)?;
        }
        for pool in &seed.public_ip_pools {
            self.add_pool(pool)?;
        }
        // Explicit public IPs first, so their addresses are taken before
        // ephemeral IPs of instances get allocated ones.
        let mut ephemeral = Vec::new();
        for instance in &seed.instances {
            ephemeral.extend(self.add_instance(instance)?);
        }
        for public_ip in &seed.public_ips {
            self.add_public_ip(public_ip)?;
        }
        for (private_ip_id, address) in ephemeral {
            let spec = SeedPublicIp {
                id: None,
                compartment_id: None,
                ip_address: (address != "auto").then_some(address),
                lifetime: Some(Lifetime::Ephemeral),
                display_name: None,
                freeform_tags: FreeformTags::new(),
                defined_tags: DefinedTags::new(),
                public_ip_pool_id: None,
                private_ip_id: Some(private_ip_id),
            };
            self.add_public_ip(&spec)?;
        }
        Ok(self.world)
    }

    fn add_vcn(&mut self, vcn: &SeedVcn) -> Result<(), SeedError> {
        let cidr: Cidr = vcn
            .cidr_block
            .parse()
            .map_err(|e| invalid(format!("VCN {}: {e}", vcn.id)))?;
        let compartment_id = self.compartment(&vcn.compartment_id)?;
        let record = Vcn {
            id: vcn.id.clone(),
            cidr_block: cidr.to_string(),
            cidr_blocks: vec![cidr.to_string()],
            compartment_id,
            display_name: vcn.display_name.clone().unwrap_or_else(|| vcn.id.clone()),
            lifecycle_state: "AVAILABLE".to_string(),
            time_created: now_rfc3339(),
        };
        insert_unique(&mut self.world.vcns, record.id.clone(), record, "VCN")
    }

    fn add_subnet(&mut self, subnet: &SeedSubnet) -> Result<(), SeedError> {
        let cidr: Cidr = subnet
            .cidr_block
            .parse()
            .map_err(|e| invalid(format!("subnet {}: {e}", subnet.id)))?;
        let vcn = self.world.vcns.get(&subnet.vcn_id).ok_or_else(|| {
            invalid(format!(
                "subnet {}: unknown VCN {}",
                subnet.id, subnet.vcn_id
            ))
        })?;
        let vcn_cidr: Cidr = vcn
            .cidr_block
            .parse()
            .map_err(|e| invalid(format!("VCN {}: {e}", vcn.id)))?;
        if !vcn_cidr.contains(cidr.first()) || !vcn_cidr.contains(cidr.last()) {
            return Err(invalid(format!(
                "subnet {} ({cidr}) is outside its VCN ({vcn_cidr})",
                subnet.id
            )));
        }
        let route_table_id = match vcn.id.strip_prefix("ocid1.vcn.") {
            Some(rest) => format!("ocid1.routetable.{rest}"),
            None => format!("ocid1.routetable.{}", vcn.id),
        };
        let compartment_id = self.compartment(&subnet.compartment_id)?;
        let record = Subnet {
            id: subnet.id.clone(),
            availability_domain: subnet.availability_domain.clone(),
            cidr_block: cidr.to_string(),
            compartment_id,
            display_name: subnet
                .display_name
                .clone()
                .unwrap_or_else(|| subnet.id.clone()),
            dns_label: subnet.dns_label.clone(),
            lifecycle_state: "AVAILABLE".to_string(),
            prohibit_internet_ingress: subnet.prohibit_public_ip_on_vnic,
            prohibit_public_ip_on_vnic: subnet.prohibit_public_ip_on_vnic,
            route_table_id,
            vcn_id: subnet.vcn_id.clone(),
            virtual_router_ip: cidr.gateway().to_string(),
            virtual_router_mac: "00:00:17:00:00:01".to_string(),
            time_created: now_rfc3339(),
        };
        insert_unique(&mut self.world.subnets, record.id.clone(), record, "subnet")
    }

    fn add_pool(&mut self, pool: &SeedPool) -> Result<(), SeedError> {
        let mut blocks = Vec::new();
        for block in &pool.cidr_blocks {
            let cidr: Cidr = block
                .parse()
                .map_err(|e| invalid(format!("pool {}: {e}", pool.id)))?;
            blocks.push(cidr.to_string());
        }
        let record = PublicIpPool {
            id: pool.id.clone(),
            cidr_blocks: blocks,
            compartment_id: self.compartment(&pool.compartment_id)?,
            display_name: pool.display_name.clone().unwrap_or_else(|| pool.id.clone()),
            lifecycle_state: "ACTIVE".to_string(),
            time_created: now_rfc3339(),
        };
        insert_unique(
            &mut self.world.pools,
            record.id.clone(),
            record,
            "public IP pool",
        )
    }

    /// Adds an instance, its VNICs, attachments and private IPs. Returns the
    /// ephemeral public IPs to create: (primary private IP id, address or "auto").
    fn add_instance(
        &mut self,
        instance: &SeedInstance,
    ) -> Result<Vec<(String, String)>, SeedError> {
        let compartment_id = self.compartment(&instance.compartment_id)?;
        let ad = instance
            .availability_domain
            .clone()
            .unwrap_or_else(|| self.default_ad.clone());
        let record = Instance {
            id: instance.id.clone(),
            availability_domain: ad.clone(),
            compartment_id: compartment_id.clone(),
            display_name: instance
                .display_name
                .clone()
                .unwrap_or_else(|| instance.id.clone()),
            lifecycle_state: "RUNNING".to_string(),
            region: self.world.region.clone(),
            shape: instance
                .shape
                .clone()
                .unwrap_or_else(|| "VM.Standard.E4.Flex".to_string()),
            time_created: now_rfc3339(),
        };
        insert_unique(
            &mut self.world.instances,
            record.id.clone(),
            record,
            "instance",
        )?;
        if instance.vnics.is_empty() {
            return Err(invalid(format!("instance {} has no VNICs", instance.id)));
        }
        let mut ephemeral = Vec::new();
        for (index, vnic) in instance.vnics.iter().enumerate() {
            let context = VnicContext {
                instance_id: &instance.id,
                compartment_id: &compartment_id,
                availability_domain: &ad,
                nic_index: index as u32,
            };
            if let Some(e) = self.add_vnic(vnic, &context)? {
                ephemeral.push(e);
            }
        }
        Ok(ephemeral)
    }

    fn add_vnic(
        &mut self,
        vnic: &SeedVnic,
        context: &VnicContext<'_>,
    ) -> Result<Option<(String, String)>, SeedError> {
        if !self.world.subnets.contains_key(&vnic.subnet_id) {
            return Err(invalid(format!(
                "VNIC {}: unknown subnet {}",
                vnic.id, vnic.subnet_id
            )));
        }
        self.mac_counter += 1;
        let mac = format!(
            "02:00:17:{:02X}:{:02X}:{:02X}",
            (self.mac_counter >> 16) & 0xff,
            (self.mac_counter >> 8) & 0xff,
            self.mac_counter & 0xff
        );
        let record = Vnic {
            id: vnic.id.clone(),
            availability_domain: context.availability_domain.to_string(),
            compartment_id: context.compartment_id.to_string(),
            display_name: vnic.display_name.clone().unwrap_or_else(|| vnic.id.clone()),
            hostname_label: vnic.hostname_label.clone(),
            is_primary: context.nic_index == 0,
            lifecycle_state: "AVAILABLE".to_string(),
            mac_address: mac,
            private_ip: vnic.primary_private_ip.clone(),
            public_ip: None,
            subnet_id: vnic.subnet_id.clone(),
            skip_source_dest_check: false,
            freeform_tags: FreeformTags::new(),
            defined_tags: DefinedTags::new(),
            time_created: now_rfc3339(),
        };
        insert_unique(&mut self.world.vnics, record.id.clone(), record, "VNIC")?;
        let attachment = VnicAttachment {
            id: derived_id(&vnic.id, "vnic", "vnicattachment"),
            availability_domain: context.availability_domain.to_string(),
            compartment_id: context.compartment_id.to_string(),
            display_name: format!("{}-attachment", vnic.id),
            instance_id: context.instance_id.to_string(),
            lifecycle_state: "ATTACHED".to_string(),
            nic_index: context.nic_index,
            subnet_id: vnic.subnet_id.clone(),
            vnic_id: vnic.id.clone(),
            time_created: now_rfc3339(),
        };
        insert_unique(
            &mut self.world.vnic_attachments,
            attachment.id.clone(),
            attachment,
            "VNIC attachment",
        )?;

        let primary_id = self.add_private_ip(
            vnic,
            context,
            &vnic.primary_private_ip,
            vnic.primary_private_ip_id.clone(),
            true,
        )?;
        for secondary in &vnic.secondary_private_ips {
            match (&secondary.ip_address, &secondary.range) {
                (Some(address), None) => {
                    self.add_private_ip(vnic, context, address, secondary.id.clone(), false)?;
                }
                (None, Some(range)) if secondary.id.is_none() => {
                    let range: AddressRange = range
                        .parse()
                        .map_err(|e| invalid(format!("VNIC {}: {e}", vnic.id)))?;
                    for address in range.iter() {
                        self.add_private_ip(vnic, context, &address.to_string(), None, false)?;
                    }
                }
                _ => {
                    return Err(invalid(format!(
                        "VNIC {}: a secondary private IP needs either ipAddress (optionally with id) or range",
                        vnic.id
                    )));
                }
            }
        }
        Ok(vnic
            .ephemeral_public_ip
            .clone()
            .map(|address| (primary_id, address)))
    }

    fn add_private_ip(
        &mut self,
        vnic: &SeedVnic,
        context: &VnicContext<'_>,
        address: &str,
        id: Option<String>,
        is_primary: bool,
    ) -> Result<String, SeedError> {
        let parsed: Ipv4Addr = address
            .parse()
            .map_err(|_| invalid(format!("VNIC {}: invalid address {address:?}", vnic.id)))?;
        let subnet = self
            .world
            .subnets
            .get(&vnic.subnet_id)
            .ok_or_else(|| invalid(format!("unknown subnet {}", vnic.subnet_id)))?;
        let cidr: Cidr = subnet
            .cidr_block
            .parse()
            .map_err(|e| invalid(format!("subnet {}: {e}", subnet.id)))?;
        if !cidr.contains(parsed) {
            return Err(invalid(format!(
                "VNIC {}: {address} is outside subnet {} ({cidr})",
                vnic.id, subnet.id
            )));
        }
        // OCI reserves the network address, the virtual router (first host)
        // and the broadcast address of every subnet.
        if parsed == cidr.first() || parsed == cidr.gateway() || parsed == cidr.last() {
            return Err(invalid(format!(
                "VNIC {}: {address} is reserved in subnet {} ({cidr})",
                vnic.id, subnet.id
            )));
        }
        let vcn_id = subnet.vcn_id.clone();
        let taken = self.world.private_ips.values().any(|p| {
            p.ip_address == address
                && self
                    .world
                    .subnets
                    .get(&p.subnet_id)
                    .is_some_and(|s| s.vcn_id == vcn_id)
        });
        if taken {
            return Err(invalid(format!(
                "private IP {address} is used twice in VCN {vcn_id}"
            )));
        }
        let id = id.unwrap_or_else(|| {
            format!(
                "ocid1.privateip.oc1.{}.{}",
                self.world.region,
                address.replace('.', "-")
            )
        });
        let record = PrivateIp {
            id: id.clone(),
            ip_address: address.to_string(),
            is_primary,
            subnet_id: vnic.subnet_id.clone(),
            vnic_id: vnic.id.clone(),
            compartment_id: context.compartment_id.to_string(),
            availability_domain: context.availability_domain.to_string(),
            display_name: address.to_string(),
            hostname_label: if is_primary {
                vnic.hostname_label.clone()
            } else {
                None
            },
            ip_state: "ASSIGNED".to_string(),
            lifetime: Lifetime::Ephemeral,
            freeform_tags: FreeformTags::new(),
            defined_tags: DefinedTags::new(),
            time_created: now_rfc3339(),
        };
        insert_unique(
            &mut self.world.private_ips,
            id.clone(),
            record,
            "private IP",
        )?;
        Ok(id)
    }

    fn add_public_ip(&mut self, spec: &SeedPublicIp) -> Result<(), SeedError> {
        let lifetime = spec.lifetime.unwrap_or(Lifetime::Reserved);
        let mut body = serde_json::json!({
            "compartmentId": self.compartment(&spec.compartment_id)?,
            "lifetime": lifetime,
            "freeformTags": spec.freeform_tags,
            "definedTags": spec.defined_tags,
        });
        let set = |body: &mut serde_json::Value, key: &str, value: &Option<String>| {
            if let Some(value) = value {
                body[key] = serde_json::Value::String(value.clone());
            }
        };
        set(&mut body, "displayName", &spec.display_name);
        set(&mut body, "publicIpPoolId", &spec.public_ip_pool_id);
        set(&mut body, "privateIpId", &spec.private_ip_id);
        let describe = |e: crate::error::ApiError| {
            invalid(format!(
                "public IP {}: {}",
                spec.id
                    .as_deref()
                    .or(spec.ip_address.as_deref())
                    .unwrap_or("(unnamed)"),
                e.message
            ))
        };
        // Same rules as the API; then settle the new IP into its stable state.
        let created = self
            .world
            .create_public_ip(self.now, &body, None)
            .map_err(describe)?;
        if let Some(address) = &spec.ip_address {
            let parsed: Result<Ipv4Addr, _> = address.parse();
            if parsed.is_err() {
                return Err(invalid(format!("public IP: invalid address {address:?}")));
            }
            if self
                .world
                .public_ips
                .values()
                .any(|ip| ip.ip_address == *address && ip.id != created.id)
            {
                return Err(invalid(format!(
                    "public IP address {address} is used twice"
                )));
            }
        }
        let mut ip = self
            .world
            .public_ips
            .remove(&created.id)
            .ok_or_else(|| invalid("public IP vanished while seeding"))?;
        if let Some(id) = &spec.id {
            ip.id = id.clone();
        }
        if let Some(address) = &spec.ip_address {
            ip.ip_address = address.clone();
        }
        let stable = if ip.assigned_entity_id.is_some() {
            PublicIpState::Assigned
        } else {
            PublicIpState::Available
        };
        lifecycle::enter(&mut ip, stable, self.now, &self.world.timing);
        if self.world.public_ips.contains_key(&ip.id) {
            return Err(invalid(format!("public IP {} is defined twice", ip.id)));
        }
        self.world.public_ips.insert(ip.id.clone(), ip);
        Ok(())
    }
}

struct VnicContext<'a> {
    instance_id: &'a str,
    compartment_id: &'a str,
    availability_domain: &'a str,
    nic_index: u32,
}

/// `ocid1.vnic.oc1.x.node0` -> `ocid1.vnicattachment.oc1.x.node0`.
fn derived_id(id: &str, from: &str, to: &str) -> String {
    match id.strip_prefix(&format!("ocid1.{from}.")) {
        Some(rest) => format!("ocid1.{to}.{rest}"),
        None => format!("ocid1.{to}.oc1..{id}"),
    }
}

fn insert_unique<T>(
    map: &mut BTreeMap<String, T>,
    id: String,
    value: T,
    kind: &str,
) -> Result<(), SeedError> {
    if map.contains_key(&id) {
        return Err(invalid(format!("{kind} {id} is defined twice")));
    }
    map.insert(id, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
tenancyId: ocid1.tenancy.oc1..t
region: r1
compartments: [c1]
oraclePublicRanges: [198.51.100.0/24]
vcns: [{id: vcn1, cidrBlock: 10.0.0.0/16}]
subnets:
  - {id: pub, vcnId: vcn1, cidrBlock: 10.0.0.0/24}
  - {id: priv, vcnId: vcn1, cidrBlock: 10.0.1.0/24, prohibitPublicIpOnVnic: true}
instances:
  - id: i1
    vnics:
      - id: ocid1.vnic.oc1.r1.v1
        subnetId: pub
        primaryPrivateIp: 10.0.0.10
        ephemeralPublicIp: auto
        secondaryPrivateIps:
          - range: 10.0.0.20-10.0.0.29
          - {ipAddress: 10.0.0.40, id: p40}
publicIpPools: [{id: pool1, cidrBlocks: [203.0.113.0/30]}]
publicIps:
  - {id: r77, ipAddress: 198.51.100.77}
  - {id: rp, publicIpPoolId: pool1, privateIpId: p40}
"#;

    #[test]
    fn builds_a_small_world() {
        let world = Seed::parse(SMALL)
            .expect("parses")
            .build(Instant::now())
            .expect("builds");
        assert_eq!(world.private_ips.len(), 12);
        assert!(
            world
                .private_ips
                .contains_key("ocid1.privateip.oc1.r1.10-0-0-25")
        );
        assert_eq!(world.vnic_attachments.len(), 1);
        assert!(
            world
                .vnic_attachments
                .contains_key("ocid1.vnicattachment.oc1.r1.v1")
        );
        let r77 = &world.public_ips["r77"];
        assert_eq!(r77.lifecycle_state, PublicIpState::Available);
        let rp = &world.public_ips["rp"];
        assert_eq!(rp.lifecycle_state, PublicIpState::Assigned);
        assert_eq!(rp.ip_address, "203.0.113.0");
        assert_eq!(rp.private_ip_id.as_deref(), Some("p40"));
        let ephemeral: Vec<_> = world
            .public_ips
            .values()
            .filter(|ip| ip.lifetime == Lifetime::Ephemeral)
            .collect();
        assert_eq!(ephemeral.len(), 1);
        assert_eq!(ephemeral[0].lifecycle_state, PublicIpState::Assigned);
        assert_ne!(ephemeral[0].ip_address, "198.51.100.77");
    }

    #[test]
    fn rejects_inconsistent_seeds() {
        let outside = SMALL.replace("primaryPrivateIp: 10.0.0.10", "primaryPrivateIp: 10.9.0.10");
        assert!(
            Seed::parse(&outside)
                .expect("parses")
                .build(Instant::now())
                .is_err()
        );
        let gateway = SMALL.replace("primaryPrivateIp: 10.0.0.10", "primaryPrivateIp: 10.0.0.1");
        assert!(
            Seed::parse(&gateway)
                .expect("parses")
                .build(Instant::now())
                .is_err()
        );
        let unknown = SMALL.replace("subnetId: pub", "subnetId: nope");
        assert!(
            Seed::parse(&unknown)
                .expect("parses")
                .build(Instant::now())
                .is_err()
        );
        assert!(Seed::parse("bogusField: 1").is_err());
    }
}
