//! `cloister-init`: the first process of the Cloister CVM image (**inside the CVM**).
//!
//! The image has no shell and no init system: this program is `/init` in the initramfs.
//! It does exactly what the host needs from an operating system, in this order, and
//! nothing else:
//!
//! 1. mounts `/proc`, `/sys` and `/dev` (devtmpfs);
//! 2. loads the kernel modules the image pins, in the order its configuration lists them
//!    (the SNP guest driver for `/dev/sev-guest`, the virtio network driver);
//! 3. brings up loopback and the one network interface with a static address;
//! 4. runs `cloister-host` with the arguments the image fixed, and waits for it;
//! 5. powers the VM off when the host exits, whatever the reason.
//!
//! A module or the network that fails is reported on the console and the host is still
//! started: the host is what fails closed (the production host refuses to start without
//! `/dev/sev-guest`, and says why). The configuration, `/etc/cloister/init.toml`, is in the
//! initramfs and so covered by the launch measurement; nothing here reads anything the
//! hypervisor controls.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use serde::Deserialize;
use std::net::Ipv4Addr;

/// Where the image puts the configuration.
pub const CONFIG_PATH: &str = "/etc/cloister/init.toml";

/// Why the configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not valid TOML, or an unknown or missing field.
    #[error("invalid {CONFIG_PATH}: {0}")]
    Parse(String),
    /// A field is out of range.
    #[error("invalid {CONFIG_PATH}: {0}")]
    Invalid(String),
}

/// `/etc/cloister/init.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// Kernel modules (absolute paths of uncompressed `.ko` files in the initramfs), loaded
    /// in this order.
    #[serde(default)]
    pub modules: Vec<String>,
    /// The network interface, if the image has one.
    pub network: Option<Network>,
    /// The host's command line: the program (absolute path) and its arguments.
    pub host: Vec<String>,
}

/// A static IPv4 address on one interface.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The interface name, e.g. `eth0`.
    pub interface: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl InitConfig {
    /// Parses and checks the configuration.
    pub fn parse(text: &str) -> Result<InitConfig, ConfigError> {
        let c: InitConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        match c.host.first() {
            None => return Err(ConfigError::Invalid("`host` is empty".into())),
            Some(p) if !p.starts_with('/') => {
                return Err(ConfigError::Invalid(format!(
                    "the host program {p:?} is not an absolute path"
                )))
            }
            Some(_) => {}
        }
        if let Some(m) = c
            .modules
            .iter()
            .find(|m| !m.starts_with('/') || !m.ends_with(".ko"))
        {
            return Err(ConfigError::Invalid(format!(
                "module {m:?} is not an absolute path to an uncompressed .ko file"
            )));
        }
        if let Some(n) = &c.network {
            if n.prefix > 32 {
                return Err(ConfigError::Invalid(format!(
                    "network prefix /{} is longer than 32",
                    n.prefix
                )));
            }
            if n.interface.is_empty() || n.interface.len() > 15 || n.interface.contains('/') {
                return Err(ConfigError::Invalid(format!(
                    "{:?} is not an interface name",
                    n.interface
                )));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
modules = ["/lib/modules/failover.ko", "/lib/modules/virtio_net.ko"]
host = ["/usr/bin/cloister-host", "serve", "--config", "/etc/cloister/host.toml", "--tee", "snp"]

[network]
interface = "eth0"
address = "10.0.2.15"
prefix = 24
"#;

    #[test]
    fn a_full_configuration_parses() {
        let c = InitConfig::parse(GOOD).unwrap();
        assert_eq!(c.modules.len(), 2);
        assert_eq!(c.host[0], "/usr/bin/cloister-host");
        let n = c.network.unwrap();
        assert_eq!((n.interface.as_str(), n.prefix), ("eth0", 24));
        assert_eq!(n.address, Ipv4Addr::new(10, 0, 2, 15));
    }

    #[test]
    fn bad_configurations_are_refused_with_the_reason() {
        let cases = [
            ("host = []", "empty"),
            ("host = [\"cloister-host\"]", "absolute"),
            ("host = [\"/h\"]\nmodules = [\"/m.ko.xz\"]", "uncompressed"),
            ("host = [\"/h\"]\nmodules = [\"m.ko\"]", "absolute"),
            ("host = [\"/h\"]\nshell = true", "unknown field"),
            (
                "host = [\"/h\"]\n[network]\ninterface = \"eth0\"\naddress = \"10.0.2.15\"\nprefix = 33",
                "32",
            ),
            (
                "host = [\"/h\"]\n[network]\ninterface = \"../x\"\naddress = \"10.0.2.15\"\nprefix = 24",
                "interface",
            ),
            (
                "host = [\"/h\"]\n[network]\ninterface = \"eth0\"\naddress = \"10.0.2\"\nprefix = 24",
                "invalid",
            ),
            ("", "missing field"),
        ];
        for (text, want) in cases {
            let err = InitConfig::parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
