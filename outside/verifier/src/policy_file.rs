//! The policy file: a relying party's [`Policy`] and trusted roots, written in TOML.
//!
//! # Format
//!
//! ```toml
//! allow_debug = false            # accept POLICY.DEBUG (default false)
//! allow_migration_agent = false  # accept POLICY.MIGRATE_MA (default false)
//! allow_smt = true               # accept PLATFORM_INFO.SMT_EN (default true)
//! require_single_socket = false  # require POLICY.SINGLE_SOCKET (default false)
//! allow_vlek = true              # accept VLEK-signed reports (default true)
//! allowed_vmpls = [0]            # default [0]
//! minimum_guest_svn = 0          # default 0
//! # Launch measurements (96 hex characters each). Absent: any measurement is accepted;
//! # an empty list accepts none.
//! measurements = ["<96 hex>"]
//! # Accept any plugin / model in the measurement log (development only; default false).
//! allow_any_plugin = false
//! allow_any_model = false
//! # Trust a Cloister SNP simulator's ARK (PEM or DER), in addition to AMD's roots. The
//! # path is relative to the policy file. Tests and development only.
//! trust_simulator_root = "sim-ark.pem"
//!
//! [transparency]                 # optional: require transparency-log proofs
//! tlog_policy = "tlog.policy"    # C2SP tlog-policy: log key, witness keys, quorum (relative path)
//! max_age_secs = 3600            # witness cosignatures older than this do not count (default 3600)
//! log = "http://log.example"     # optional: read the log's newest revocation list first, and
//!                                # refuse what it revokes even if the host's proofs are older
//! # With [transparency] and no [[plugin]]/[[model]]/allow_any_*, "in the log, witnessed, not
//! # revoked" is the whole artifact policy; and `measurements` may be left out: the launch
//! # measurement must then be a CVM image published in the log.
//!
//! [[minimum_tcb]]                # optional, one table per product; REPORTED, COMMITTED,
//!                                # CURRENT and LAUNCH TCB must all meet it
//! product = "Milan"              # "Milan", "Genoa" or "Turin"
//! bootloader = 3
//! tee = 0
//! snp = 8
//! microcode = 115
//! # fmc = 0                      # Turin only
//!
//! [[plugin]]                     # one table per allowed plugin release
//! name = "summarize"
//! version = "1.2.0"
//! sha256 = "<64 lowercase hex>"
//! signer_key_id = "<64 lowercase hex>"   # optional: require this release signer
//!
//! [[model]]                      # the same for models
//! name = "llama-3.2-1b"
//! version = "1"
//! sha256 = "<64 lowercase hex>"
//! ```
//!
//! Unknown keys are rejected, so a misspelt knob never silently falls back to its default.
//! Without any `[[plugin]]`/`[[model]]` table and without `allow_any_*`, a measurement log
//! with any plugin or model entry is rejected.
//!
//! The library does no I/O: [`PolicyFile::from_toml`] takes the text and
//! [`PolicyFile::to_policy`] takes the simulator root's bytes, which the caller reads from
//! [`PolicyFile::trust_simulator_root`].

use cloister_display::{Excerpt, Quoted};
use cloister_measurement::{EntryKind, MeasurementLog};
use serde::{Deserialize, Serialize};

use crate::chain::{certificates_from_pem, product_from_ark, TrustedRoot, TrustedRoots};
use crate::policy::{Allowed, AllowedArtifact, ArtifactAllowlist, MinimumTcb, Policy};
use crate::report::{Product, Tcb};

fn yes() -> bool {
    true
}

fn vmpl0() -> Vec<u32> {
    vec![0]
}

/// A policy file, parsed but not yet validated (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Accept POLICY.DEBUG.
    #[serde(default)]
    pub allow_debug: bool,
    /// Accept POLICY.MIGRATE_MA.
    #[serde(default)]
    pub allow_migration_agent: bool,
    /// Accept PLATFORM_INFO.SMT_EN.
    #[serde(default = "yes")]
    pub allow_smt: bool,
    /// Require POLICY.SINGLE_SOCKET.
    #[serde(default)]
    pub require_single_socket: bool,
    /// Accept VLEK-signed reports.
    #[serde(default = "yes")]
    pub allow_vlek: bool,
    /// Allowed VMPLs.
    #[serde(default = "vmpl0")]
    pub allowed_vmpls: Vec<u32>,
    /// Minimum GUEST_SVN.
    #[serde(default)]
    pub minimum_guest_svn: u32,
    /// Allowed launch measurements, hex; `None` accepts any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Vec<String>>,
    /// Minimum TCB per product.
    #[serde(default)]
    pub minimum_tcb: Vec<MinimumTcbEntry>,
    /// Accept any plugin in the measurement log.
    #[serde(default)]
    pub allow_any_plugin: bool,
    /// Accept any model in the measurement log.
    #[serde(default)]
    pub allow_any_model: bool,
    /// Allowed plugin releases (`[[plugin]]`).
    #[serde(default)]
    pub plugin: Vec<ArtifactEntry>,
    /// Allowed model releases (`[[model]]`).
    #[serde(default)]
    pub model: Vec<ArtifactEntry>,
    /// Path of a simulator ARK (PEM or DER) to trust, relative to the policy file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_simulator_root: Option<String>,
    /// Require transparency-log proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparency: Option<TransparencyTable>,
}

/// The `[transparency]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransparencyTable {
    /// Path of the tlog-policy file, relative to the policy file.
    pub tlog_policy: String,
    /// Maximum age of a counted witness cosignature, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Where the client fetches the log's newest checkpoint (an `http://` URL), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

fn default_max_age() -> u64 {
    3600
}

/// A `[[minimum_tcb]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumTcbEntry {
    /// "Milan", "Genoa" or "Turin".
    pub product: String,
    /// FMC SPL (Turin only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// Bootloader SPL.
    pub bootloader: u8,
    /// TEE SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

/// A `[[plugin]]` or `[[model]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactEntry {
    /// Release name.
    pub name: String,
    /// Release version.
    pub version: String,
    /// SHA-256 of the artifact, 64 lowercase hex characters.
    pub sha256: String,
    /// Required release signer's key id, 64 lowercase hex characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_key_id: Option<String>,
}

/// Why a policy file was rejected. Every variant names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// Not TOML of the policy file's shape.
    #[error("malformed policy file: {}", Excerpt(.reason))]
    Malformed {
        /// The parser's message (it names the key and line).
        reason: String,
    },
    /// An entry of `measurements` is not 96 hex characters.
    #[error("policy file: measurements[{index}] is not 96 hex characters (48 bytes)")]
    Measurement {
        /// Position in the list (0-based).
        index: usize,
    },
    /// A `[[minimum_tcb]]` names an unknown product.
    #[error("policy file: minimum_tcb[{index}].product {} is not Milan, Genoa or Turin", Quoted(.product))]
    UnknownProduct {
        /// Position (0-based).
        index: usize,
        /// The name found.
        product: String,
    },
    /// A `[[plugin]]` or `[[model]]` table is invalid.
    #[error("policy file: {kind}[{index}] ({}): {reason}", Quoted(.name))]
    Artifact {
        /// "plugin" or "model".
        kind: &'static str,
        /// Position (0-based).
        index: usize,
        /// The entry's name.
        name: String,
        /// Which key is wrong.
        reason: &'static str,
    },
    /// `trust_simulator_root` is set but the caller passed no bytes for it.
    #[error("policy file: trust_simulator_root is set but its certificate was not supplied")]
    SimulatorRootMissing,
    /// Simulator root bytes were passed but the file does not ask for one.
    #[error("policy file: a simulator root was supplied but trust_simulator_root is not set")]
    SimulatorRootNotRequested,
    /// `[transparency]` is set but the caller passed no tlog-policy text (or the reverse).
    #[error(
        "policy file: [transparency] and the tlog-policy text supplied disagree (one is missing)"
    )]
    TransparencyPolicyMismatch,
    /// The tlog-policy does not parse.
    #[error("policy file: transparency.tlog_policy: {0}")]
    TlogPolicy(cloister_tlog::TlogError),
    /// The simulator root is not a certificate named `ARK-<Product>`.
    #[error("policy file: trust_simulator_root: {}", Excerpt(.reason))]
    SimulatorRoot {
        /// What is wrong.
        reason: String,
    },
}

fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn artifacts(
    kind: EntryKind,
    entries: &[ArtifactEntry],
) -> Result<Vec<AllowedArtifact>, PolicyFileError> {
    let kind_name = kind.as_str();
    entries
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let bad = |reason| PolicyFileError::Artifact {
                kind: kind_name,
                index,
                name: e.name.clone(),
                reason,
            };
            if e.name.is_empty() {
                return Err(bad("name is empty"));
            }
            if e.version.is_empty() {
                return Err(bad("version is empty"));
            }
            if !is_lower_hex_64(&e.sha256) {
                return Err(bad("sha256 is not 64 lowercase hex characters"));
            }
            if let Some(k) = &e.signer_key_id {
                if !is_lower_hex_64(k) {
                    return Err(bad("signer_key_id is not 64 lowercase hex characters"));
                }
            }
            Ok(AllowedArtifact {
                kind,
                name: e.name.clone(),
                version: e.version.clone(),
                sha256: e.sha256.clone(),
                signer_key_id: e.signer_key_id.clone(),
            })
        })
        .collect()
}

/// A simulator ARK from PEM (the first CERTIFICATE block) or DER.
fn simulator_root(bytes: &[u8]) -> Result<TrustedRoot, PolicyFileError> {
    // DER always starts with a SEQUENCE tag; anything else is taken as PEM.
    let der = if bytes.first() != Some(&0x30) {
        certificates_from_pem(bytes)
            .map_err(|e| PolicyFileError::SimulatorRoot {
                reason: e.to_string(),
            })?
            .into_iter()
            .next()
            .unwrap_or_default()
    } else {
        bytes.to_vec()
    };
    let product = product_from_ark(&der).ok_or_else(|| PolicyFileError::SimulatorRoot {
        reason: "not a certificate with common name ARK-Milan, ARK-Genoa or ARK-Turin".into(),
    })?;
    Ok(TrustedRoot::new_ecdsa_p384(product, der))
}

/// A TOML error on one line: "line L, column C: message" (toml's own rendering quotes the
/// offending line of the file over several lines).
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

impl PolicyFile {
    /// The policy that accepts exactly what a host measured: one of `measurements` as the
    /// launch measurement, and every entry of `log` (each plugin and model by name, version,
    /// SHA-256 and, where the host checked one, release signer), nothing else. Every other
    /// knob keeps its default.
    pub fn for_measured_host(measurements: &[[u8; 48]], log: &MeasurementLog) -> Self {
        let entry = |e: &cloister_measurement::Entry| ArtifactEntry {
            name: e.name.clone(),
            version: e.version.clone(),
            sha256: e.sha256.clone(),
            signer_key_id: e.signer_key_id.clone(),
        };
        let of_kind = |kind: EntryKind| {
            log.entries()
                .iter()
                .filter(|e| e.kind == kind)
                .map(entry)
                .collect()
        };
        PolicyFile {
            measurements: Some(measurements.iter().map(hex::encode).collect()),
            plugin: of_kind(EntryKind::Plugin),
            model: of_kind(EntryKind::Model),
            ..PolicyFile::default()
        }
    }

    /// The file's TOML text, every knob written out (so a reader sees what is accepted).
    /// [`PolicyFile::from_toml`] reads it back to an equal value.
    pub fn to_toml(&self) -> String {
        // Plain data (strings, integers, booleans, arrays of tables) always serializes.
        toml::to_string(self).unwrap_or_default()
    }

    /// Parse a policy file's TOML text (shape only; [`PolicyFile::to_policy`] validates the
    /// values).
    pub fn from_toml(text: &str) -> Result<Self, PolicyFileError> {
        toml::from_str(text).map_err(|e| PolicyFileError::Malformed {
            reason: toml_reason(text, &e),
        })
    }

    /// The [`Policy`] and the trusted roots this file describes.
    ///
    /// The roots are AMD's, plus the simulator ARK (`simulator_root`, PEM or DER, whose
    /// product is taken from its common name `ARK-<Product>`) when and only when the file
    /// sets `trust_simulator_root`; the bytes are then required. The returned policy's
    /// [`Policy::trusted_roots`] are the same roots.
    ///
    /// `tlog_policy_text` is the text of the file `[transparency].tlog_policy` names; it is
    /// required when and only when the table is present.
    pub fn to_policy(
        &self,
        simulator_root_bytes: Option<&[u8]>,
        tlog_policy_text: Option<&str>,
    ) -> Result<(Policy, TrustedRoots), PolicyFileError> {
        let transparency = match (&self.transparency, tlog_policy_text) {
            (Some(t), Some(text)) => Some(crate::policy::TransparencyRequirement {
                tlog: cloister_tlog::Policy::parse(text).map_err(PolicyFileError::TlogPolicy)?,
                max_age_secs: Some(t.max_age_secs),
                newest: None,
            }),
            (None, None) => None,
            _ => return Err(PolicyFileError::TransparencyPolicyMismatch),
        };
        let mut roots = TrustedRoots::amd();
        match (&self.trust_simulator_root, simulator_root_bytes) {
            (Some(_), Some(bytes)) => {
                roots.add(simulator_root(bytes)?);
            }
            (Some(_), None) => return Err(PolicyFileError::SimulatorRootMissing),
            (None, Some(_)) => return Err(PolicyFileError::SimulatorRootNotRequested),
            (None, None) => {}
        }
        let allowed_measurements = match &self.measurements {
            None => Allowed::Any,
            Some(list) => Allowed::OneOf(
                list.iter()
                    .enumerate()
                    .map(|(index, text)| {
                        let mut m = [0u8; 48];
                        hex::decode_to_slice(text, &mut m)
                            .map(|()| m)
                            .map_err(|_| PolicyFileError::Measurement { index })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let minimum_tcb = self
            .minimum_tcb
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let product = [Product::Milan, Product::Genoa, Product::Turin]
                    .into_iter()
                    .find(|p| p.name().eq_ignore_ascii_case(&t.product))
                    .ok_or_else(|| PolicyFileError::UnknownProduct {
                        index,
                        product: t.product.clone(),
                    })?;
                Ok(MinimumTcb {
                    product,
                    tcb: Tcb {
                        fmc: t.fmc,
                        bootloader: t.bootloader,
                        tee: t.tee,
                        snp: t.snp,
                        microcode: t.microcode,
                    },
                })
            })
            .collect::<Result<_, PolicyFileError>>()?;
        let mut entries = artifacts(EntryKind::Plugin, &self.plugin)?;
        entries.extend(artifacts(EntryKind::Model, &self.model)?);

        let policy = Policy {
            trusted_roots: roots.clone(),
            allow_debug: self.allow_debug,
            allow_migration_agent: self.allow_migration_agent,
            allow_smt: self.allow_smt,
            require_single_socket: self.require_single_socket,
            allow_vlek: self.allow_vlek,
            allowed_vmpls: Allowed::OneOf(self.allowed_vmpls.clone()),
            minimum_guest_svn: self.minimum_guest_svn,
            allowed_measurements,
            minimum_tcb,
            artifacts: ArtifactAllowlist {
                allow_any_plugin: self.allow_any_plugin,
                allow_any_model: self.allow_any_model,
                entries,
            },
            transparency,
            ..Policy::default()
        };
        Ok((policy, roots))
    }
}

impl Default for PolicyFile {
    /// The policy of an empty file: strict guest configuration, AMD roots only, any
    /// measurement, no plugins or models.
    fn default() -> Self {
        PolicyFile {
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            require_single_socket: false,
            allow_vlek: true,
            allowed_vmpls: vmpl0(),
            minimum_guest_svn: 0,
            measurements: None,
            minimum_tcb: Vec::new(),
            allow_any_plugin: false,
            allow_any_model: false,
            plugin: Vec::new(),
            model: Vec::new(),
            trust_simulator_root: None,
            transparency: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::LinkAlgorithm;

    const MILAN_ARK_PEM: &[u8] = sev::certs::snp::builtin::milan::ARK;

    #[test]
    fn empty_file_is_the_default() -> Result<(), PolicyFileError> {
        let file = PolicyFile::from_toml("")?;
        assert_eq!(file, PolicyFile::default());
        let (policy, roots) = file.to_policy(None, None)?;
        assert_eq!(roots, TrustedRoots::amd());
        assert_eq!(policy, Policy::default());
        Ok(())
    }

    #[test]
    fn full_file() -> Result<(), PolicyFileError> {
        let text = format!(
            r#"
allow_debug = true
allow_migration_agent = true
allow_smt = false
require_single_socket = true
allow_vlek = false
allowed_vmpls = [0, 1]
minimum_guest_svn = 2
measurements = ["{m}"]
allow_any_model = true
trust_simulator_root = "ark.pem"

[[minimum_tcb]]
product = "Turin"
fmc = 1
bootloader = 2
tee = 3
snp = 4
microcode = 5

[[plugin]]
name = "summarize"
version = "1.2.0"
sha256 = "{b}"
signer_key_id = "{c}"

[[model]]
name = "llama"
version = "1"
sha256 = "{a}"
"#,
            m = "11".repeat(48),
            a = "a".repeat(64),
            b = "b".repeat(64),
            c = "c".repeat(64),
        );
        let file = PolicyFile::from_toml(&text)?;
        assert_eq!(file.trust_simulator_root.as_deref(), Some("ark.pem"));
        assert_eq!(
            file.to_policy(None, None),
            Err(PolicyFileError::SimulatorRootMissing)
        );
        let (policy, roots) = file.to_policy(Some(MILAN_ARK_PEM), None)?;
        assert_eq!(roots.roots().len(), TrustedRoots::amd().roots().len() + 1);
        let sim = roots
            .roots()
            .last()
            .map(|r| (r.product(), r.link_algorithm()));
        assert_eq!(sim, Some((Product::Milan, LinkAlgorithm::EcdsaP384)));
        assert_eq!(policy.trusted_roots, roots);
        assert!(policy.allow_debug && policy.allow_migration_agent && !policy.allow_smt);
        assert!(policy.require_single_socket && !policy.allow_vlek);
        assert_eq!(policy.allowed_vmpls, Allowed::OneOf(vec![0, 1]));
        assert_eq!(policy.minimum_guest_svn, 2);
        assert_eq!(
            policy.allowed_measurements,
            Allowed::OneOf(vec![[0x11; 48]])
        );
        assert_eq!(
            policy.minimum_tcb,
            vec![MinimumTcb {
                product: Product::Turin,
                tcb: Tcb {
                    fmc: Some(1),
                    bootloader: 2,
                    tee: 3,
                    snp: 4,
                    microcode: 5
                }
            }]
        );
        assert!(!policy.artifacts.allow_any_plugin && policy.artifacts.allow_any_model);
        assert_eq!(policy.artifacts.entries.len(), 2);
        assert_eq!(policy.artifacts.entries[0].kind, EntryKind::Plugin);
        assert_eq!(policy.artifacts.entries[1].signer_key_id, None);

        // DER works as well as PEM.
        let der = certificates_from_pem(MILAN_ARK_PEM)
            .ok()
            .and_then(|v| v.into_iter().next())
            .unwrap_or_default();
        let (_, roots_der) = file.to_policy(Some(&der), None)?;
        assert_eq!(roots_der, roots);
        Ok(())
    }

    #[test]
    fn errors_name_the_key() -> Result<(), PolicyFileError> {
        match PolicyFile::from_toml("alow_debug = true") {
            Err(PolicyFileError::Malformed { reason }) => {
                assert!(reason.contains("alow_debug"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(PolicyFile::from_toml("allow_debug = \"yes\"").is_err());
        let file = PolicyFile::from_toml(r#"measurements = ["00", "zz"]"#)?;
        assert_eq!(
            file.to_policy(None, None),
            Err(PolicyFileError::Measurement { index: 0 })
        );
        let file = PolicyFile::from_toml(
            "[[minimum_tcb]]\nproduct = \"Rome\"\nbootloader = 0\ntee = 0\nsnp = 0\nmicrocode = 0\n",
        )?;
        assert!(matches!(
            file.to_policy(None, None),
            Err(PolicyFileError::UnknownProduct { index: 0, .. })
        ));
        let file = PolicyFile::from_toml(&format!(
            "[[plugin]]\nname = \"x\"\nversion = \"1\"\nsha256 = \"{}\"\n",
            "B".repeat(64)
        ))?;
        assert!(matches!(
            file.to_policy(None, None),
            Err(PolicyFileError::Artifact {
                kind: "plugin",
                index: 0,
                ..
            })
        ));
        assert_eq!(
            PolicyFile::default().to_policy(Some(MILAN_ARK_PEM), None),
            Err(PolicyFileError::SimulatorRootNotRequested)
        );
        let file = PolicyFile::from_toml("trust_simulator_root = \"x\"")?;
        assert!(matches!(
            file.to_policy(Some(b"not a certificate"), None),
            Err(PolicyFileError::SimulatorRoot { .. })
        ));
        assert!(matches!(
            file.to_policy(Some(&[0x30, 0x03, 0x02, 0x01, 0x00]), None),
            Err(PolicyFileError::SimulatorRoot { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_policy_for_a_measured_host_round_trips_and_accepts_exactly_that_host() {
        use cloister_measurement::Entry;
        let mut log = MeasurementLog::new();
        for (kind, name, fill, signer) in [
            (EntryKind::Model, "all-minilm-l6-v2", 'a', None),
            (EntryKind::Plugin, "summarize", 'b', Some("c".repeat(64))),
        ] {
            log.push(Entry {
                kind,
                name: name.into(),
                version: "1.0.0".into(),
                sha256: fill.to_string().repeat(64),
                signer_key_id: signer,
            })
            .expect("valid entry");
        }
        let measurement = [0x5a; 48];
        let mut file = PolicyFile::for_measured_host(&[measurement], &log);
        file.trust_simulator_root = Some("sim-ark.pem".into());
        let text = file.to_toml();
        assert_eq!(PolicyFile::from_toml(&text), Ok(file.clone()));
        assert!(text.contains(&hex::encode(measurement)), "{text}");
        assert!(
            text.contains("[[plugin]]") && text.contains("[[model]]"),
            "{text}"
        );
        assert_eq!(file.plugin.len(), 1);
        assert_eq!(file.model.len(), 1);
        assert_eq!(
            file.plugin[0].signer_key_id.as_deref(),
            Some("c".repeat(64).as_str())
        );
        assert_eq!(file.model[0].signer_key_id, None);
        // Without the simulator root it is a plain AMD-rooted policy.
        let plain = PolicyFile::for_measured_host(&[measurement], &log);
        let (policy, _) = plain.to_policy(None, None).expect("valid policy");
        assert_eq!(policy.artifacts.entries.len(), 2);
        assert!(!policy.artifacts.allow_any_plugin && !policy.artifacts.allow_any_model);
    }

    /// Issue 11, class 7: unknown keys are refused in every table of the policy file, and
    /// so is a key given twice.
    #[test]
    fn unknown_and_duplicate_keys_are_refused_at_every_level() {
        let plugin = format!(
            "[[plugin]]\nname = \"x\"\nversion = \"1\"\nsha256 = \"{}\"\n",
            "b".repeat(64)
        );
        let tcb = "[[minimum_tcb]]\nproduct = \"Milan\"\nbootloader = 0\ntee = 0\nsnp = 0\nmicrocode = 0\n";
        assert!(PolicyFile::from_toml(&plugin).is_ok());
        assert!(PolicyFile::from_toml(tcb).is_ok());
        for text in [
            "extra = 1\n".to_owned(),
            format!("{plugin}extra = 1\n"),
            format!("{tcb}extra = 1\n"),
            format!(
                "[[model]]\nname = \"m\"\nversion = \"1\"\nsha256 = \"{}\"\nextra = 1\n",
                "a".repeat(64)
            ),
            "allow_debug = false\nallow_debug = true\n".to_owned(),
            format!("{plugin}name = \"y\"\n"),
        ] {
            assert!(
                matches!(
                    PolicyFile::from_toml(&text),
                    Err(PolicyFileError::Malformed { .. })
                ),
                "accepted: {text}"
            );
        }
    }
}
