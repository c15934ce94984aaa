//! The expected SNP launch measurement of a Cloister CVM image.
//!
//! An image is launched by QEMU with SNP measured direct boot: the firmware (OVMF's AmdSev
//! build, whose `SNP_KERNEL_HASHES` page receives the hashes of the kernel, initramfs and
//! command line), the vCPUs' initial state (VMSA: vCPU count and type, guest features) and
//! the VMM type determine the launch digest the chip puts in every report's MEASUREMENT.
//! [`launch_digest`] computes it from those inputs with the `sev` crate's measurement module
//! (no OpenSSL); [`ImageManifest`] records them, each file pinned by SHA-256, and
//! [`ImageManifest::measure`] refuses to compute from a file whose bytes differ from its pin.
//!
//! The computation agrees with all 14 SNP cases of virtee/sev's own tests
//! (`../shared/vectors/snp/measurement`, `tests/vectors.rs`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

pub mod build;
pub mod initramfs;
pub mod kernel;

use cloister_display::{Excerpt, Quoted};
use serde::{Deserialize, Serialize};
use sev::measurement::snp::{snp_calc_launch_digest, SnpMeasurementArgs};
use sev::measurement::vcpu_types::CpuType;
use sev::measurement::vmsa::{GuestFeatures, VMMType};
use sha2::{Digest, Sha256};

/// The `format` of a v1 image manifest.
pub const MANIFEST_FORMAT: &str = "cloister-image-manifest/v1";

/// Why a launch measurement could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// An input file is missing or unreadable.
    #[error("cannot read the image input {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An input file's bytes are not the ones the manifest pins.
    #[error("the image input {path} has SHA-256 {actual}, but the manifest pins {expected}")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pin.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// The vCPU type is not one the measurement knows.
    #[error("unsupported vCPU type {}: supported are {supported}", Quoted(.found))]
    UnsupportedVcpuType {
        /// What was given.
        found: String,
        /// The supported names.
        supported: String,
    },
    /// The VMM type is not QEMU, EC2 or KRUN.
    #[error("unsupported VMM type {}: supported are QEMU, EC2 and KRUN", Quoted(.0))]
    UnsupportedVmm(String),
    /// The firmware cannot be measured with these inputs (for example an OVMF without the
    /// SNP metadata, or without an SNP_KERNEL_HASHES page while a kernel is given).
    #[error("cannot measure with this firmware and these inputs: {}", Excerpt(.0))]
    Measurement(String),
    /// The manifest is malformed.
    #[error("malformed image manifest: {}", Excerpt(.0))]
    Manifest(String),
}

/// Everything the launch digest depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementInputs {
    /// The firmware image (OVMF, AmdSev build for measured direct boot).
    pub ovmf: PathBuf,
    /// The kernel, for measured direct boot.
    pub kernel: Option<PathBuf>,
    /// The initramfs.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: Option<String>,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// vCPU type, as QEMU names it (`EPYC-v4`, `EPYC-Milan`, `EPYC-Genoa`, …).
    pub vcpu_type: String,
    /// The VMSA SEV_FEATURES (bit 0 SNPActive; 0x1 for QEMU's default SNP guest).
    pub guest_features: u64,
    /// `QEMU`, `EC2` or `KRUN`.
    pub vmm: String,
}

/// Every vCPU type the measurement supports (listed here: sev 8's `TryFrom<u8>` skips
/// `EPYC-v2`).
const CPU_TYPES: [CpuType; 18] = [
    CpuType::Epyc,
    CpuType::EpycV1,
    CpuType::EpycV2,
    CpuType::EpycIBPB,
    CpuType::EpycV3,
    CpuType::EpycV4,
    CpuType::EpycRome,
    CpuType::EpycRomeV1,
    CpuType::EpycRomeV2,
    CpuType::EpycRomeV3,
    CpuType::EpycMilan,
    CpuType::EpycMilanV1,
    CpuType::EpycMilanV2,
    CpuType::EpycGenoa,
    CpuType::EpycGenoaV1,
    CpuType::EpycTurin,
    CpuType::EpycTurinV1,
    CpuType::EpycTurinV2,
];

/// Every vCPU type name the measurement supports, as QEMU names them.
pub fn vcpu_types() -> Vec<String> {
    CPU_TYPES.iter().map(|c| c.to_string()).collect()
}

pub(crate) fn parse_vcpu_type(name: &str) -> Result<CpuType, ImageError> {
    CPU_TYPES
        .into_iter()
        .find(|c| c.to_string().eq_ignore_ascii_case(name))
        .ok_or_else(|| ImageError::UnsupportedVcpuType {
            found: name.chars().take(64).collect(),
            supported: vcpu_types().join(", "),
        })
}

pub(crate) fn parse_vmm(name: &str) -> Result<VMMType, ImageError> {
    name.parse::<VMMType>()
        .map_err(|_| ImageError::UnsupportedVmm(name.chars().take(64).collect()))
}

fn readable(path: &Path) -> Result<(), ImageError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| ImageError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

const FOOTER_GUID: [u8; 16] = [
    0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d,
];
const SEV_METADATA_GUID: [u8; 16] = [
    0x66, 0x65, 0x88, 0xdc, 0x4a, 0x98, 0x98, 0x47, 0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc,
];
const SEV_ES_RESET_GUID: [u8; 16] = [
    0xde, 0x71, 0xf7, 0x00, 0x7e, 0x1a, 0xcb, 0x4f, 0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e,
];

/// Checks, with bounds-checked arithmetic, the structures of an OVMF image that the `sev`
/// crate's parser reads with unchecked arithmetic (it panics on a file that is not OVMF):
/// the GUID-ed footer table ending 32 bytes before the end, its entries, the SEV-ES reset
/// block and the SEV metadata header and section descriptors. Also refuses a firmware
/// without SEV metadata: it cannot launch an SNP guest.
pub fn check_ovmf(data: &[u8]) -> Result<(), ImageError> {
    const ENTRY: usize = 18; // u16 size + 16-byte GUID
    let bad = |why: &str| {
        Err(ImageError::Measurement(format!(
            "not an SNP-capable OVMF image: {why}"
        )))
    };
    let size = data.len();
    let Some(footer_start) = size.checked_sub(32 + ENTRY) else {
        return bad("too short");
    };
    let entry_at = |at: usize| -> Option<(usize, [u8; 16])> {
        let b = data.get(at..at + ENTRY)?;
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&b[2..]);
        Some((u16::from_le_bytes([b[0], b[1]]) as usize, guid))
    };
    let Some((footer_size, footer_guid)) = entry_at(footer_start) else {
        return bad("too short");
    };
    if footer_guid != FOOTER_GUID {
        return bad("no GUID-ed footer table 32 bytes before the end");
    }
    let Some(table_size) = footer_size.checked_sub(ENTRY) else {
        return bad("footer table size too small");
    };
    let Some(table_start) = footer_start.checked_sub(table_size) else {
        return bad("footer table larger than the image");
    };
    let mut entries: Vec<([u8; 16], &[u8])> = Vec::new();
    let mut offset = table_size;
    while offset >= ENTRY {
        let Some((entry_size, guid)) = entry_at(table_start + offset - ENTRY) else {
            return bad("footer table entry out of bounds");
        };
        if entry_size < ENTRY {
            return bad("footer table entry too small");
        }
        if offset < entry_size {
            break;
        }
        let Some(payload) =
            data.get(table_start + offset - entry_size..table_start + offset - ENTRY)
        else {
            return bad("footer table entry out of bounds");
        };
        entries.push((guid, payload));
        offset -= entry_size;
    }
    let find = |g: [u8; 16]| entries.iter().find(|(guid, _)| *guid == g).map(|(_, p)| *p);
    if find(SEV_ES_RESET_GUID).is_none_or(|p| p.len() < 4) {
        return bad("no SEV-ES reset block");
    }
    let Some(meta) = find(SEV_METADATA_GUID).filter(|p| p.len() >= 4) else {
        return bad("no SEV metadata (not an AmdSev/SNP build)");
    };
    let from_end = i32::from_le_bytes([meta[0], meta[1], meta[2], meta[3]]);
    let Some(header_start) = usize::try_from(from_end)
        .ok()
        .and_then(|o| size.checked_sub(o))
    else {
        return bad("SEV metadata offset out of bounds");
    };
    let Some(h) = data.get(header_start..header_start + 16) else {
        return bad("SEV metadata header out of bounds");
    };
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as usize;
    let (meta_size, items) = (word(4), word(12));
    if &h[..4] != b"ASEV" || word(8) != 1 {
        return bad("SEV metadata header signature or version");
    }
    let fits = header_start
        .checked_add(meta_size)
        .is_some_and(|end| end <= size && meta_size >= 16)
        && items.checked_mul(12).is_some_and(|n| n <= meta_size - 16);
    if !fits {
        return bad("SEV metadata sections out of bounds");
    }
    Ok(())
}

/// Refuses a command line that the `sev` crate would measure differently from QEMU.
///
/// QEMU (`kernel-hashes=on`) hashes the command line exactly as given, plus a NUL; the
/// `sev` crate trims surrounding whitespace before hashing. With surrounding whitespace the
/// computed measurement would not be the chip's, so such a line is refused rather than
/// measured wrongly. A NUL would end the line early in QEMU, and control characters have
/// no place in it.
pub fn check_cmdline(cmdline: &str) -> Result<(), ImageError> {
    if cmdline.trim() != cmdline {
        return Err(ImageError::Manifest(format!(
            "the kernel command line {} has leading or trailing whitespace: QEMU measures it \
             as given but the sev crate trims it, so the computed measurement would not be \
             the chip's; remove the whitespace",
            Quoted(cmdline)
        )));
    }
    if cmdline.chars().any(char::is_control) {
        return Err(ImageError::Manifest(format!(
            "the kernel command line {} contains a control character",
            Quoted(cmdline)
        )));
    }
    Ok(())
}

/// The SNP launch digest (MEASUREMENT) of a guest launched with these inputs.
pub fn launch_digest(inputs: &MeasurementInputs) -> Result<[u8; 48], ImageError> {
    if inputs.vcpus == 0 || inputs.vcpus > 512 {
        return Err(ImageError::Manifest(format!(
            "{} vCPUs is not between 1 and 512",
            inputs.vcpus
        )));
    }
    let vcpu_type = parse_vcpu_type(&inputs.vcpu_type)?;
    let vmm = parse_vmm(&inputs.vmm)?;
    let ovmf = std::fs::read(&inputs.ovmf).map_err(|e| ImageError::Read {
        path: inputs.ovmf.clone(),
        reason: e.to_string(),
    })?;
    check_ovmf(&ovmf)?;
    for p in [&inputs.kernel, &inputs.initrd].into_iter().flatten() {
        readable(p)?;
    }
    if inputs.kernel.is_none() && (inputs.initrd.is_some() || inputs.cmdline.is_some()) {
        return Err(ImageError::Manifest(
            "an initramfs or command line without a kernel is not measured".into(),
        ));
    }
    if let Some(cmdline) = &inputs.cmdline {
        check_cmdline(cmdline)?;
    }
    // check_ovmf covers the structures the parser reads; the guard stays for anything it
    // might still trip on (a panic here would be a bug in the sev crate, reported as an error).
    let args = SnpMeasurementArgs {
        vcpus: inputs.vcpus,
        vcpu_type,
        ovmf_file: inputs.ovmf.clone(),
        guest_features: GuestFeatures(inputs.guest_features),
        kernel_file: inputs.kernel.clone(),
        initrd_file: inputs.initrd.clone(),
        append: inputs.cmdline.as_deref(),
        ovmf_hash_str: None,
        vmm_type: Some(vmm),
    };
    let digest = std::panic::catch_unwind(move || snp_calc_launch_digest(args))
        .map_err(|_| {
            ImageError::Measurement("the sev crate's measurement failed on these inputs".into())
        })?
        .map_err(|e| ImageError::Measurement(e.to_string()))?;
    let bytes = bincode_free_bytes(&digest.get_hex_ld())?;
    Ok(bytes)
}

fn bincode_free_bytes(hex_ld: &str) -> Result<[u8; 48], ImageError> {
    let mut out = [0u8; 48];
    hex::decode_to_slice(hex_ld, &mut out)
        .map_err(|e| ImageError::Measurement(format!("the launch digest is not 48 bytes: {e}")))?;
    Ok(out)
}

/// A file input of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    /// The file, relative to the manifest.
    pub file: String,
    /// Its SHA-256 (64 lowercase hex).
    pub sha256: String,
}

/// The inputs of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestInputs {
    /// The firmware.
    pub ovmf: PinnedFile,
    /// The kernel.
    pub kernel: Option<PinnedFile>,
    /// The initramfs.
    pub initrd: Option<PinnedFile>,
    /// The kernel command line.
    pub cmdline: Option<String>,
}

/// The image manifest (`cloister-image-manifest/v1`): every input of the launch measurement,
/// each file pinned by SHA-256, and the launch parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// `production` (no simulator) or `development` (simulator built in, never a release).
    pub variant: String,
    /// The inputs.
    pub inputs: ManifestInputs,
    /// vCPU count.
    pub vcpus: u32,
    /// vCPU type.
    pub vcpu_type: String,
    /// VMSA SEV_FEATURES.
    pub guest_features: u64,
    /// VMM type.
    pub vmm: String,
    /// The QEMU version the image is launched with (recorded; the digest does not depend on
    /// it for these inputs, but a launch must use a QEMU that measures the same way).
    pub qemu_version: String,
    /// The kernel package the kernel and modules come from (written by `cloister-image
    /// build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_package: Option<KernelPackage>,
    /// Every file of the initramfs, in archive order (written by `cloister-image build`):
    /// what an auditor compares with their own build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initrd_contents: Vec<ContentEntry>,
    /// The launch measurement the build computed (96 hex). When present, [`Self::measure`]
    /// refuses a manifest whose inputs give another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
}

/// The Debian package the kernel comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelPackage {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// SHA-256 of the `.deb`.
    pub sha256: String,
}

/// One file of the initramfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentEntry {
    /// Absolute path in the image.
    pub path: String,
    /// Permission bits (octal).
    pub mode: String,
    /// SHA-256 of the contents.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

fn sha256_file(path: &Path) -> Result<String, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

impl ImageManifest {
    /// Parses a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ImageError> {
        let m: ImageManifest =
            serde_json::from_slice(bytes).map_err(|e| ImageError::Manifest(e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(ImageError::Manifest(format!(
                "format {} is not {MANIFEST_FORMAT}",
                Quoted(&m.format)
            )));
        }
        if m.variant != "production" && m.variant != "development" {
            return Err(ImageError::Manifest(format!(
                "variant {} is not production or development",
                Quoted(&m.variant)
            )));
        }
        Ok(m)
    }

    /// Computes the launch digest from the files next to the manifest (`base`), after
    /// checking every file against its pin.
    pub fn measure(&self, base: &Path) -> Result<[u8; 48], ImageError> {
        let check = |p: &PinnedFile| -> Result<PathBuf, ImageError> {
            let path = base.join(&p.file);
            let actual = sha256_file(&path)?;
            if actual != p.sha256 {
                return Err(ImageError::HashMismatch {
                    path,
                    expected: p.sha256.chars().take(64).collect(),
                    actual,
                });
            }
            Ok(path)
        };
        let ovmf = check(&self.inputs.ovmf)?;
        let kernel = self.inputs.kernel.as_ref().map(check).transpose()?;
        let initrd = self.inputs.initrd.as_ref().map(check).transpose()?;
        let digest = launch_digest(&MeasurementInputs {
            ovmf,
            kernel,
            initrd,
            cmdline: self.inputs.cmdline.clone(),
            vcpus: self.vcpus,
            vcpu_type: self.vcpu_type.clone(),
            guest_features: self.guest_features,
            vmm: self.vmm.clone(),
        })?;
        if let Some(recorded) = &self.measurement {
            if !recorded.eq_ignore_ascii_case(&hex::encode(digest)) {
                return Err(ImageError::Manifest(format!(
                    "the manifest records the measurement {}, but its inputs measure {}",
                    recorded.chars().take(96).collect::<String>(),
                    hex::encode(digest)
                )));
            }
        }
        Ok(digest)
    }
}
