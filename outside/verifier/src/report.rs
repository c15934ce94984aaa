//! The SEV-SNP attestation report (firmware ABI spec 56860, table "ATTESTATION_REPORT").
//!
//! All integers are little-endian. The layout of versions 2, 3/4 and 5 is the same except
//! that bytes 0x188..0x18B (CPUID) are zero in v2 and 0x1F8..0x207 (mitigation vectors) are
//! zero before v5.
//!
//! [`AttestationReport::parse`] also enforces, field by field, what the ABI spec (56860,
//! table ATTESTATION_REPORT) says must be zero (see [`RESERVED_RANGES`] and
//! [`AttestationReport::parse`]), so that no byte of a report that verifies can carry
//! anything but what the firmware would have put there.

use crate::error::VerifyError;

pub use cloister_protocol::snp::{Product, RawTcb, Tcb, REPORT_SIZE, SIGNED_LEN};

/// The guest POLICY (u64) the guest was launched with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bits 63:26, reserved (must be zero).
    pub const RESERVED_MASK: u64 = !((1u64 << 26) - 1);

    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
    /// Minimum firmware ABI minor version (bits 7:0).
    pub fn abi_minor(self) -> u8 {
        (self.0 & 0xFF) as u8
    }
    /// Minimum firmware ABI major version (bits 15:8).
    pub fn abi_major(self) -> u8 {
        ((self.0 >> 8) & 0xFF) as u8
    }
    /// SMT is allowed (bit 16).
    pub fn smt_allowed(self) -> bool {
        self.bit(16)
    }
    /// Reserved bit 17, which must be one.
    pub fn reserved_bit17(self) -> bool {
        self.bit(17)
    }
    /// A migration agent may be associated (bit 18).
    pub fn migrate_ma(self) -> bool {
        self.bit(18)
    }
    /// Debugging is allowed: the hypervisor can read and write guest memory (bit 19).
    pub fn debug(self) -> bool {
        self.bit(19)
    }
    /// The guest may only run on a single socket (bit 20).
    pub fn single_socket(self) -> bool {
        self.bit(20)
    }
    /// CXL may be populated with guest memory (bit 21).
    pub fn cxl_allowed(self) -> bool {
        self.bit(21)
    }
    /// AES-256-XTS memory encryption is required (bit 22).
    pub fn mem_aes_256_xts(self) -> bool {
        self.bit(22)
    }
    /// Running Average Power Limit must be disabled (bit 23).
    pub fn rapl_disabled(self) -> bool {
        self.bit(23)
    }
    /// Ciphertext hiding must be enabled (bit 24).
    pub fn ciphertext_hiding(self) -> bool {
        self.bit(24)
    }
    /// Page swap (SNP_PAGE_MOVE etc.) is disabled (bit 25, v5).
    pub fn page_swap_disabled(self) -> bool {
        self.bit(25)
    }
}

/// PLATFORM_INFO (u64): how the platform is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    /// Bits 63:8, reserved (must be zero). Bit 6 is reserved in older revisions of the
    /// spec too, but AMD's firmware sets it on Turin (the real Turin report in the test
    /// vectors has PLATFORM_INFO 0x67), so it is accepted.
    pub const RESERVED_MASK: u64 = !0xFF;

    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
    /// SMT is enabled (bit 0).
    pub fn smt_enabled(self) -> bool {
        self.bit(0)
    }
    /// Transparent SME is enabled (bit 1).
    pub fn tsme_enabled(self) -> bool {
        self.bit(1)
    }
    /// ECC memory is in use (bit 2).
    pub fn ecc_enabled(self) -> bool {
        self.bit(2)
    }
    /// RAPL is disabled (bit 3).
    pub fn rapl_disabled(self) -> bool {
        self.bit(3)
    }
    /// Ciphertext hiding is enabled (bit 4).
    pub fn ciphertext_hiding_enabled(self) -> bool {
        self.bit(4)
    }
    /// The alias check completed (bit 5).
    pub fn alias_check_complete(self) -> bool {
        self.bit(5)
    }
    /// SEV-TIO is enabled (bit 7).
    pub fn tio_enabled(self) -> bool {
        self.bit(7)
    }
}

/// Which key signed a report (KEY_INFO.SIGNING_KEY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndorsementKind {
    /// Versioned Chip Endorsement Key, certified by the ASK.
    Vcek,
    /// Versioned Loaded Endorsement Key (cloud provider), certified by the ASVK.
    Vlek,
}

impl EndorsementKind {
    /// "VCEK" or "VLEK".
    pub fn name(self) -> &'static str {
        match self {
            EndorsementKind::Vcek => "VCEK",
            EndorsementKind::Vlek => "VLEK",
        }
    }
    /// The intermediate that certifies it: "ASK" or "ASVK".
    pub fn intermediate_name(self) -> &'static str {
        match self {
            EndorsementKind::Vcek => "ASK",
            EndorsementKind::Vlek => "ASVK",
        }
    }
}

/// KEY_INFO (u32) at 0x48.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyInfo(pub u32);

impl KeyInfo {
    /// Bits 31:5, reserved (must be zero).
    pub const RESERVED_MASK: u32 = !0x1F;

    /// AUTHOR_KEY_EN (bit 0): AUTHOR_KEY_DIGEST is present.
    pub fn author_key_en(self) -> bool {
        self.0 & 1 == 1
    }
    /// MASK_CHIP_KEY (bit 1): CHIP_ID is zeroed.
    pub fn mask_chip_key(self) -> bool {
        (self.0 >> 1) & 1 == 1
    }
    /// SIGNING_KEY (bits 4:2), raw: 0 VCEK, 1 VLEK, 7 none.
    pub fn signing_key_raw(self) -> u8 {
        ((self.0 >> 2) & 0x7) as u8
    }
    /// The signing key, or why there is none.
    pub fn signing_key(self) -> Result<EndorsementKind, VerifyError> {
        match self.signing_key_raw() {
            0 => Ok(EndorsementKind::Vcek),
            1 => Ok(EndorsementKind::Vlek),
            7 => Err(VerifyError::ReportNotSigned),
            n => Err(VerifyError::UnsupportedSigningKey(n)),
        }
    }
}

/// CPUID family, model and stepping of the chip (report v3 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cpuid {
    /// Extended family + family (0x19 Milan/Genoa, 0x1A Turin).
    pub family: u8,
    /// Extended model + model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A firmware version (build, minor, major).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirmwareVersion {
    /// Build number.
    pub build: u8,
    /// Minor version.
    pub minor: u8,
    /// Major version.
    pub major: u8,
}

/// A parsed (not yet verified) SNP attestation report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationReport {
    /// VERSION (2, 3, 4 or 5).
    pub version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// POLICY.
    pub policy: GuestPolicy,
    /// FAMILY_ID from the ID block.
    pub family_id: [u8; 16],
    /// IMAGE_ID from the ID block.
    pub image_id: [u8; 16],
    /// VMPL the report was requested from.
    pub vmpl: u32,
    /// SIGNATURE_ALGO (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// CURRENT_TCB.
    pub current_tcb: RawTcb,
    /// PLATFORM_INFO.
    pub platform_info: PlatformInfo,
    /// KEY_INFO.
    pub key_info: KeyInfo,
    /// REPORT_DATA, chosen by the guest.
    pub report_data: [u8; 64],
    /// MEASUREMENT: the launch digest.
    pub measurement: [u8; 48],
    /// HOST_DATA, chosen by the hypervisor at launch.
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST (SHA-384 of the ID key), zero without an ID block.
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST, zero unless AUTHOR_KEY_EN.
    pub author_key_digest: [u8; 48],
    /// REPORT_ID.
    pub report_id: [u8; 32],
    /// REPORT_ID_MA (all 0xFF without a migration agent).
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB: the TCB the signing key was derived for.
    pub reported_tcb: RawTcb,
    /// CPUID family/model/stepping (v3 and later; `None` for v2).
    pub cpuid: Option<Cpuid>,
    /// CHIP_ID (zero if masked; Turin: 8 bytes then zeros).
    pub chip_id: [u8; 64],
    /// COMMITTED_TCB.
    pub committed_tcb: RawTcb,
    /// Current firmware version.
    pub current_version: FirmwareVersion,
    /// Committed firmware version.
    pub committed_version: FirmwareVersion,
    /// LAUNCH_TCB.
    pub launch_tcb: RawTcb,
    /// LAUNCH_MIT_VECTOR (v5 and later).
    pub launch_mit_vector: Option<u64>,
    /// CURRENT_MIT_VECTOR (v5 and later).
    pub current_mit_vector: Option<u64>,
    /// Signature R, little-endian, zero-padded to 72 bytes.
    pub signature_r: [u8; 72],
    /// Signature S, little-endian, zero-padded to 72 bytes.
    pub signature_s: [u8; 72],
    raw: Vec<u8>,
}

/// Byte ranges of the signed area that are reserved in every report version and must be
/// zero: `(field, start, end)`, end exclusive. Version-dependent ranges (CPUID in v2, the
/// mitigation vectors before v5) are checked by [`AttestationReport::parse`] as well.
pub const RESERVED_RANGES: [(&str, usize, usize); 5] = [
    ("reserved after KEY_INFO", 0x04C, 0x050),
    ("reserved after CPUID", 0x18B, 0x1A0),
    ("reserved after CURRENT_VERSION", 0x1EB, 0x1EC),
    ("reserved after COMMITTED_VERSION", 0x1EF, 0x1F0),
    ("reserved before the signature", 0x208, SIGNED_LEN),
];

/// The bytes of the signature area after R and S (0x330..0x4A0): covered by no signature,
/// so they must be zero (with SIGNATURE_ALGO 1, the spec reserves them).
pub const UNSIGNED_TAIL: (usize, usize) = (0x330, REPORT_SIZE);

fn first_nonzero(b: &[u8], start: usize, end: usize) -> Option<usize> {
    match b.get(start..end) {
        Some(s) => s.iter().position(|&x| x != 0).map(|i| start + i),
        None => Some(start),
    }
}

/// Every structural rule of the spec that does not depend on the product: reserved bytes
/// and bits are zero, POLICY bit 17 is one, a masked CHIP_ID is zero, and the bytes after
/// the signature's R and S are zero.
fn check_structure(b: &[u8], version: u32) -> Result<(), VerifyError> {
    let key_info = u32_at(b, 0x48);
    if key_info & KeyInfo::RESERVED_MASK != 0 {
        return Err(VerifyError::ReservedBitsSet {
            field: "KEY_INFO",
            bits: u64::from(key_info & KeyInfo::RESERVED_MASK),
        });
    }
    let policy = u64_at(b, 0x08);
    if policy & GuestPolicy::RESERVED_MASK != 0 {
        return Err(VerifyError::ReservedBitsSet {
            field: "POLICY",
            bits: policy & GuestPolicy::RESERVED_MASK,
        });
    }
    if !GuestPolicy(policy).reserved_bit17() {
        return Err(VerifyError::GuestPolicyBit17Clear);
    }
    let platform_info = u64_at(b, 0x40);
    if platform_info & PlatformInfo::RESERVED_MASK != 0 {
        return Err(VerifyError::ReservedBitsSet {
            field: "PLATFORM_INFO",
            bits: platform_info & PlatformInfo::RESERVED_MASK,
        });
    }
    let mut ranges: Vec<(&'static str, usize, usize)> = RESERVED_RANGES.to_vec();
    if version < 3 {
        ranges.push(("CPUID (absent before version 3)", 0x188, 0x18B));
    }
    if version < 5 {
        ranges.push(("mitigation vectors (absent before version 5)", 0x1F8, 0x208));
    }
    for (field, start, end) in ranges {
        if let Some(offset) = first_nonzero(b, start, end) {
            return Err(VerifyError::ReservedNotZero { field, offset });
        }
    }
    if KeyInfo(key_info).mask_chip_key() && first_nonzero(b, 0x1A0, 0x1E0).is_some() {
        return Err(VerifyError::MaskedChipIdNotZero);
    }
    if let Some(offset) = first_nonzero(b, UNSIGNED_TAIL.0, UNSIGNED_TAIL.1) {
        return Err(VerifyError::UnsignedBytesNotZero { offset });
    }
    Ok(())
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(off..off + N) {
        a.copy_from_slice(s);
    }
    a
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(arr(b, off))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(arr(b, off))
}

impl AttestationReport {
    /// Parse a report. Checks the size, that VERSION is 2, 3, 4 or 5, and the structure the
    /// spec fixes for every product: the reserved ranges [`RESERVED_RANGES`], CPUID zero in
    /// v2, the mitigation vectors zero before v5, the reserved bits of KEY_INFO (31:5),
    /// POLICY (63:26; bit 17 must be one) and PLATFORM_INFO (63:8), CHIP_ID all zero when
    /// KEY_INFO.MASK_CHIP_KEY is set, and the unsigned bytes after R and S
    /// ([`UNSIGNED_TAIL`]) zero. The reserved bytes of the TCB_VERSION fields depend on the
    /// product and are checked by [`verify`](crate::verify). Nothing here is authenticated
    /// until [`verify`](crate::verify) succeeds.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() != REPORT_SIZE {
            return Err(VerifyError::ReportLength {
                expected: REPORT_SIZE,
                actual: bytes.len(),
            });
        }
        let b = bytes;
        let version = u32_at(b, 0x00);
        if !(2..=5).contains(&version) {
            return Err(VerifyError::UnsupportedReportVersion(version));
        }
        check_structure(b, version)?;
        let cpuid = (version >= 3).then(|| Cpuid {
            family: b[0x188],
            model: b[0x189],
            stepping: b[0x18A],
        });
        let v5 = version >= 5;
        Ok(AttestationReport {
            version,
            guest_svn: u32_at(b, 0x04),
            policy: GuestPolicy(u64_at(b, 0x08)),
            family_id: arr(b, 0x10),
            image_id: arr(b, 0x20),
            vmpl: u32_at(b, 0x30),
            signature_algo: u32_at(b, 0x34),
            current_tcb: RawTcb(arr(b, 0x38)),
            platform_info: PlatformInfo(u64_at(b, 0x40)),
            key_info: KeyInfo(u32_at(b, 0x48)),
            report_data: arr(b, 0x50),
            measurement: arr(b, 0x90),
            host_data: arr(b, 0xC0),
            id_key_digest: arr(b, 0xE0),
            author_key_digest: arr(b, 0x110),
            report_id: arr(b, 0x140),
            report_id_ma: arr(b, 0x160),
            reported_tcb: RawTcb(arr(b, 0x180)),
            cpuid,
            chip_id: arr(b, 0x1A0),
            committed_tcb: RawTcb(arr(b, 0x1E0)),
            current_version: FirmwareVersion {
                build: b[0x1E8],
                minor: b[0x1E9],
                major: b[0x1EA],
            },
            committed_version: FirmwareVersion {
                build: b[0x1EC],
                minor: b[0x1ED],
                major: b[0x1EE],
            },
            launch_tcb: RawTcb(arr(b, 0x1F0)),
            launch_mit_vector: v5.then(|| u64_at(b, 0x1F8)),
            current_mit_vector: v5.then(|| u64_at(b, 0x200)),
            signature_r: arr(b, 0x2A0),
            signature_s: arr(b, 0x2E8),
            raw: bytes.to_vec(),
        })
    }

    /// The report exactly as received (1184 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The signed part of the report (bytes `0..0x2A0`).
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..SIGNED_LEN).unwrap_or(&[])
    }

    /// The product according to the CPUID fields (v3 and later), if known.
    pub fn product_from_cpuid(&self) -> Option<Product> {
        self.cpuid
            .and_then(|c| Product::from_cpuid(c.family, c.model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcb_layouts() {
        let milan = RawTcb([3, 0, 0, 0, 0, 0, 8, 115]).decode(Product::Milan);
        assert_eq!(
            milan,
            Tcb {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115
            }
        );
        let turin = RawTcb([0, 1, 0, 2, 0, 0, 0, 0x47]).decode(Product::Turin);
        assert_eq!(
            turin,
            Tcb {
                fmc: Some(0),
                bootloader: 1,
                tee: 0,
                snp: 2,
                microcode: 71
            }
        );
        assert_eq!(turin.components().len(), 5);
        assert_eq!(milan.components().len(), 4);
    }

    #[test]
    fn products() {
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0xA0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1A, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x1A, 0x50), None);
        assert_eq!(Product::from_cpuid(0x17, 0x01), None);
        assert_eq!(Product::from_product_name("Milan-B0"), Some(Product::Milan));
        assert_eq!(Product::from_product_name("Venice"), None);
    }

    #[test]
    fn key_info() {
        assert_eq!(KeyInfo(0).signing_key(), Ok(EndorsementKind::Vcek));
        assert_eq!(KeyInfo(4).signing_key(), Ok(EndorsementKind::Vlek));
        assert_eq!(
            KeyInfo(7 << 2).signing_key(),
            Err(VerifyError::ReportNotSigned)
        );
        assert_eq!(
            KeyInfo(2 << 2).signing_key(),
            Err(VerifyError::UnsupportedSigningKey(2))
        );
        assert!(KeyInfo(2).mask_chip_key());
    }
}
