//! A **simulated** AMD SEV-SNP platform, for tests and development without SNP hardware.
//!
//! A [`Simulator`] is one simulated chip: it generates its own ARK -> ASK -> VCEK chain
//! (ECDSA P-384 keys; every certificate signed with ECDSA P-384 / SHA-384, where AMD uses
//! RSASSA-PSS for ARK and ASK) and produces attestation reports in AMD's exact binary layout
//! (1184 bytes, versions 3 and 5, firmware ABI spec 56860), signed by its VCEK exactly as
//! firmware signs them: ECDSA P-384 over SHA-384 of bytes `0..0x2A0`, R and S little-endian
//! and zero-padded to 72 bytes.
//!
//! Its output is the [`cloister_protocol::Evidence`] the verifier consumes. The verifier
//! rejects it unless the caller trusts this simulator's root **explicitly** (its
//! `TrustedRoot::new_ecdsa_p384` with [`Simulator::ark_der`], and [`Simulator::ask_der`] as
//! the intermediate): AMD's default roots fail with the verifier's `UntrustedRoot`, and
//! every simulator instance is a different chip with a different root.
//!
//! This crate never depends on the verifier. [`SimulatedSnp`] (module `provider`) makes the
//! simulator an evidence provider of the host: the development host `cloister-host-dev`
//! links it, the production host `cloister-host` does not (`scripts/check-boundary`).
//!
//! # Shape of the certificates
//!
//! Like AMD's (VCEK spec 57230): issuer/subject names `C=US, ST=CA, L=Santa Clara, O=..,
//! OU=.., CN=ARK-<Product> | SEV-<Product> | SEV-VCEK`, but O and OU carry the
//! [`SIMULATED_MARKER`] (`O="SIMULATED Cloister SEV-SNP simulator - not AMD"`,
//! `OU="SIMULATED"`). ARK and ASK carry basicConstraints `cA=TRUE`. The VCEK has serial
//! number 0 (as AMD's do) and AMD's extensions under `1.3.6.1.4.1.3704.1`: `.1`
//! structVersion = 1, `.2` productName (IA5String "Milan-B0", "Genoa", "Turin"), `.3.1`
//! blSPL, `.3.2` teeSPL, `.3.3` snpSPL, `.3.8` ucodeSPL, `.3.9` fmcSPL (Turin only; all
//! INTEGERs; `.3.4`..`.3.7` are present and zero, in AMD's order), `.4` hwID (the raw CHIP_ID: 64 bytes, 8 on Turin).
//!
//! # Shape of the reports
//!
//! VERSION 3 or 5; POLICY [`DEFAULT_POLICY`] (`0x30000`: SMT allowed and reserved bit 17
//! set, as real firmware requires; no debug, no migration agent) unless the request asks for
//! another; VMPL 0; SIGNATURE_ALGO 1; KEY_INFO 0 (VCEK, chip id not masked);
//! PLATFORM_INFO `0x25` (SMT, ECC, alias check complete); CURRENT, REPORTED, COMMITTED and
//! LAUNCH TCB all equal to the VCEK's SPL extensions; CPUID family/model/stepping of a
//! real part (Milan 19h/01h/1, Genoa 19h/11h/1, Turin 1Ah/02h/1); a random REPORT_ID and
//! REPORT_ID_MA all 0xFF; all reserved fields zero.
//!
//! Apart from randomness (keys, serials, chip id, REPORT_ID) everything here is pure: no
//! clock (validity is in [`SimConfig`]), no files, no devices. ECDSA signatures are
//! deterministic (RFC 6979).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod der;
mod provider;

pub use provider::SimulatedSnp;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloister_protocol::{Evidence, Product, Tcb, REPORT_SIZE, SIGNED_LEN};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, Signature, SigningKey};
use p384::elliptic_curve::rand_core::TryCryptoRng;
use p384::elliptic_curve::Generate;

/// The marker every simulated certificate carries in its O and OU.
pub const SIMULATED_MARKER: &str = "SIMULATED";
/// The organization (O) of every simulated certificate.
pub const SIM_ORGANIZATION: &str = "SIMULATED Cloister SEV-SNP simulator - not AMD";
/// The organizational unit (OU) of every simulated certificate.
pub const SIM_ORGANIZATIONAL_UNIT: &str = "SIMULATED";

/// The guest POLICY a simulated report carries by default: ABI 0.0, SMT allowed (bit 16),
/// reserved bit 17 set (firmware requires it); not debuggable, no migration agent.
pub const DEFAULT_POLICY: u64 = (1 << 16) | (1 << 17);
/// POLICY.DEBUG (bit 19): set it in [`ReportRequest::policy`] to simulate a debuggable guest.
pub const POLICY_DEBUG: u64 = 1 << 19;
/// PLATFORM_INFO of simulated reports: SMT_EN, ECC_EN, ALIAS_CHECK_COMPLETE.
pub const PLATFORM_INFO: u64 = 0x25;

/// Why the simulator could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The random number generator failed.
    #[error("the random number generator failed: {0}")]
    Rng(String),
    /// ECDSA signing failed.
    #[error("ECDSA P-384 signing of the {what} failed")]
    Signing {
        /// What was being signed: "ARK", "ASK", "VCEK" or "report".
        what: &'static str,
    },
    /// Only report versions 3 and 5 are simulated.
    #[error("report version {0} is not simulated (only 3 and 5)")]
    UnsupportedVersion(u32),
    /// notAfter is before notBefore.
    #[error("certificate validity is empty: notAfter is before notBefore")]
    InvalidValidity,
    /// The TCB does not fit the product (Turin needs an FMC SPL; Milan and Genoa have none).
    #[error("the TCB does not fit {product}: {reason}")]
    InvalidTcb {
        /// The product.
        product: Product,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What to simulate: the chip's product, its TCB and the validity of its certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Milan, Genoa or Turin.
    pub product: Product,
    /// The TCB the VCEK is "derived" for: its SPL extensions and every TCB in the reports.
    pub tcb: Tcb,
    /// notBefore of all three certificates.
    pub not_before: SystemTime,
    /// notAfter of all three certificates.
    pub not_after: SystemTime,
    /// Extensions appended to the certificates, after the usual ones (default none):
    /// tests use them to build chains with duplicated or unknown critical extensions.
    pub extra_extensions: Vec<ExtraExtension>,
}

/// An extension [`SimConfig::extra_extensions`] appends to one of the certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraExtension {
    /// "ARK", "ASK" or "VCEK".
    pub certificate: &'static str,
    /// The extension's OID, as arcs.
    pub oid: Vec<u64>,
    /// The critical flag.
    pub critical: bool,
    /// The extnValue's content (the bytes inside the OCTET STRING).
    pub value: Vec<u8>,
}

impl SimConfig {
    /// A chip of `product` with a TCB seen on real hardware, and certificates valid from a
    /// day before `now` for 25 years (AMD's ARKs are valid for 25 years).
    pub fn new(product: Product, now: SystemTime) -> Self {
        const DAY: Duration = Duration::from_secs(86_400);
        SimConfig {
            product,
            tcb: default_tcb(product),
            not_before: now.checked_sub(DAY).unwrap_or(now),
            not_after: now
                .checked_add(DAY * 365 * 25)
                .unwrap_or(UNIX_EPOCH + Duration::from_secs(253_402_300_799)),
            extra_extensions: Vec::new(),
        }
    }
}

/// A TCB seen in real reports of that product (LAYOUT.txt examples).
fn default_tcb(product: Product) -> Tcb {
    match product {
        Product::Milan => Tcb {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        },
        Product::Genoa => Tcb {
            fmc: None,
            bootloader: 10,
            tee: 0,
            snp: 25,
            microcode: 84,
        },
        Product::Turin => Tcb {
            fmc: Some(0),
            bootloader: 1,
            tee: 0,
            snp: 2,
            microcode: 71,
        },
    }
}

/// The TCB_VERSION bytes of a TCB for a product (inverse of `RawTcb::decode`).
fn encode_tcb(product: Product, tcb: &Tcb) -> [u8; 8] {
    match product {
        Product::Milan | Product::Genoa => {
            [tcb.bootloader, tcb.tee, 0, 0, 0, 0, tcb.snp, tcb.microcode]
        }
        Product::Turin => [
            tcb.fmc.unwrap_or(0),
            tcb.bootloader,
            tcb.tee,
            tcb.snp,
            0,
            0,
            0,
            tcb.microcode,
        ],
    }
}

/// CPUID family, model, stepping and the VCEK productName of a real part.
fn part(product: Product) -> ([u8; 3], &'static str) {
    match product {
        Product::Milan => ([0x19, 0x01, 0x01], "Milan-B0"),
        Product::Genoa => ([0x19, 0x11, 0x01], "Genoa"),
        Product::Turin => ([0x1A, 0x02, 0x01], "Turin"),
    }
}

/// What a report should say: the guest-controlled and launch-time fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// VERSION: 3 or 5 (default 5).
    pub version: u32,
    /// REPORT_DATA, chosen by the guest.
    pub report_data: [u8; 64],
    /// MEASUREMENT, the launch digest.
    pub measurement: [u8; 48],
    /// POLICY (default [`DEFAULT_POLICY`]).
    pub policy: u64,
    /// VMPL (default 0).
    pub vmpl: u32,
    /// GUEST_SVN (default 0).
    pub guest_svn: u32,
    /// HOST_DATA (default zero).
    pub host_data: [u8; 32],
}

impl ReportRequest {
    /// A version 5 report with these REPORT_DATA and MEASUREMENT and every other field at
    /// its default.
    pub fn new(report_data: [u8; 64], measurement: [u8; 48]) -> Self {
        ReportRequest {
            version: 5,
            report_data,
            measurement,
            policy: DEFAULT_POLICY,
            vmpl: 0,
            guest_svn: 0,
            host_data: [0; 32],
        }
    }

    /// The same request with another VERSION (3 or 5).
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// The same request with another POLICY.
    pub fn with_policy(mut self, policy: u64) -> Self {
        self.policy = policy;
        self
    }
}

/// One simulated chip: its certificate chain, its VCEK private key and its CHIP_ID.
#[derive(Clone)]
pub struct Simulator {
    product: Product,
    tcb: Tcb,
    chip_id: [u8; 64],
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
    vcek_der: Vec<u8>,
    vcek: SigningKey,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("product", &self.product)
            .field("tcb", &self.tcb)
            .field("simulated", &true)
            .finish_non_exhaustive()
    }
}

/// Unix seconds, negative before the epoch.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn rng_err(e: impl fmt::Display) -> SimError {
    SimError::Rng(e.to_string())
}

/// An AMD-shaped distinguished name with the simulator's marker and this common name.
fn name(common_name: &str) -> Vec<u8> {
    let atv = |arcs: &[u64], tag: u8, value: &str| {
        der::tlv(
            der::SET,
            &der::seq(&[&der::oid(arcs), &der::tlv(tag, value.as_bytes())]),
        )
    };
    der::seq(&[
        &atv(&[2, 5, 4, 11], der::UTF8_STRING, SIM_ORGANIZATIONAL_UNIT),
        &atv(&[2, 5, 4, 6], der::PRINTABLE_STRING, "US"),
        &atv(&[2, 5, 4, 7], der::UTF8_STRING, "Santa Clara"),
        &atv(&[2, 5, 4, 8], der::UTF8_STRING, "CA"),
        &atv(&[2, 5, 4, 10], der::UTF8_STRING, SIM_ORGANIZATION),
        &atv(&[2, 5, 4, 3], der::UTF8_STRING, common_name),
    ])
}

fn extension(arcs: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    let oid = der::oid(arcs);
    let value = der::tlv(der::OCTET_STRING, value);
    if critical {
        der::seq(&[&oid, &der::tlv(der::BOOLEAN, &[0xFF]), &value])
    } else {
        der::seq(&[&oid, &value])
    }
}

/// basicConstraints cA=TRUE, critical.
fn ca_extension() -> Vec<u8> {
    extension(
        &[2, 5, 29, 19],
        true,
        &der::seq(&[&der::tlv(der::BOOLEAN, &[0xFF])]),
    )
}

/// An AMD extension `1.3.6.1.4.1.3704.1.<suffix>`.
fn amd_extension(suffix: &[u64], value: &[u8]) -> Vec<u8> {
    let mut arcs = vec![1, 3, 6, 1, 4, 1, 3704, 1];
    arcs.extend_from_slice(suffix);
    extension(&arcs, false, value)
}

struct CertSpec<'a> {
    which: &'static str,
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    not_before: i64,
    not_after: i64,
    subject_key: &'a SigningKey,
    extensions: Vec<Vec<u8>>,
}

/// Build and sign a v3 certificate with ecdsa-with-SHA384.
fn certificate(spec: CertSpec<'_>, issuer_key: &SigningKey) -> Result<Vec<u8>, SimError> {
    let sig_alg = der::seq(&[&der::oid(&[1, 2, 840, 10045, 4, 3, 3])]);
    let point = spec.subject_key.verifying_key().to_sec1_point(false);
    let spki = der::seq(&[
        &der::seq(&[
            &der::oid(&[1, 2, 840, 10045, 2, 1]),
            &der::oid(&[1, 3, 132, 0, 34]),
        ]),
        &der::bit_string(point.as_bytes()),
    ]);
    let extensions = der::explicit(
        3,
        &der::seq(
            &spec
                .extensions
                .iter()
                .map(Vec::as_slice)
                .collect::<Vec<_>>(),
        ),
    );
    let tbs = der::seq(&[
        &der::explicit(0, &der::uint(&[2])),
        &der::uint(spec.serial),
        &sig_alg,
        spec.issuer,
        &der::seq(&[&der::time(spec.not_before), &der::time(spec.not_after)]),
        spec.subject,
        &spki,
        &extensions,
    ]);
    let signature: DerSignature = issuer_key
        .try_sign(&tbs)
        .map_err(|_| SimError::Signing { what: spec.which })?;
    Ok(der::seq(&[
        &tbs,
        &sig_alg,
        &der::bit_string(signature.as_bytes()),
    ]))
}

impl Simulator {
    /// A new simulated chip, with keys, serials and CHIP_ID from the operating system's
    /// random number generator.
    pub fn new(config: &SimConfig) -> Result<Self, SimError> {
        Simulator::with_rng(config, &mut getrandom::SysRng)
    }

    /// A new simulated chip, with keys, serials and CHIP_ID drawn from `rng`.
    pub fn with_rng<R: TryCryptoRng + ?Sized>(
        config: &SimConfig,
        rng: &mut R,
    ) -> Result<Self, SimError> {
        let product = config.product;
        match (product, config.tcb.fmc) {
            (Product::Turin, None) => {
                return Err(SimError::InvalidTcb {
                    product,
                    reason: "Turin needs an FMC SPL",
                })
            }
            (Product::Milan | Product::Genoa, Some(_)) => {
                return Err(SimError::InvalidTcb {
                    product,
                    reason: "only Turin has an FMC SPL",
                })
            }
            _ => {}
        }
        let not_before = unix_seconds(config.not_before);
        let not_after = unix_seconds(config.not_after);
        if not_after < not_before {
            return Err(SimError::InvalidValidity);
        }

        let ark = SigningKey::try_generate_from_rng(rng).map_err(rng_err)?;
        let ask = SigningKey::try_generate_from_rng(rng).map_err(rng_err)?;
        let vcek = SigningKey::try_generate_from_rng(rng).map_err(rng_err)?;

        let mut serials = [[0u8; 16]; 2];
        for s in &mut serials {
            rng.try_fill_bytes(s).map_err(rng_err)?;
            // Positive and minimal: top bit clear, first byte non-zero.
            s[0] = (s[0] & 0x7F) | 0x40;
        }
        let mut chip_id = [0u8; 64];
        let hw_len = if product == Product::Turin { 8 } else { 64 };
        rng.try_fill_bytes(&mut chip_id[..hw_len])
            .map_err(rng_err)?;

        let extra = |which: &str| -> Vec<Vec<u8>> {
            config
                .extra_extensions
                .iter()
                .filter(|e| e.certificate == which)
                .map(|e| extension(&e.oid, e.critical, &e.value))
                .collect()
        };
        let ark_name = name(&format!("ARK-{}", product.name()));
        let ask_name = name(&format!("SEV-{}", product.name()));
        let vcek_name = name("SEV-VCEK");

        let ark_der = certificate(
            CertSpec {
                which: "ARK",
                serial: &serials[0],
                issuer: &ark_name,
                subject: &ark_name,
                not_before,
                not_after,
                subject_key: &ark,
                extensions: [vec![ca_extension()], extra("ARK")].concat(),
            },
            &ark,
        )?;
        let ask_der = certificate(
            CertSpec {
                which: "ASK",
                serial: &serials[1],
                issuer: &ark_name,
                subject: &ask_name,
                not_before,
                not_after,
                subject_key: &ask,
                extensions: [vec![ca_extension()], extra("ASK")].concat(),
            },
            &ark,
        )?;

        let (_, product_name) = part(product);
        let tcb = config.tcb;
        let int = |v: u8| der::uint(&[v]);
        let mut extensions = vec![
            amd_extension(&[1], &int(1)),
            amd_extension(&[2], &der::tlv(der::IA5_STRING, product_name.as_bytes())),
            amd_extension(&[3, 1], &int(tcb.bootloader)),
            amd_extension(&[3, 2], &int(tcb.tee)),
            amd_extension(&[3, 4], &int(0)),
            amd_extension(&[3, 5], &int(0)),
            amd_extension(&[3, 6], &int(0)),
            amd_extension(&[3, 7], &int(0)),
            amd_extension(&[3, 3], &int(tcb.snp)),
            amd_extension(&[3, 8], &int(tcb.microcode)),
        ];
        if let Some(fmc) = tcb.fmc {
            extensions.push(amd_extension(&[3, 9], &int(fmc)));
        }
        extensions.push(amd_extension(&[4], &chip_id[..hw_len]));
        extensions.extend(extra("VCEK"));
        let vcek_der = certificate(
            CertSpec {
                which: "VCEK",
                serial: &[0],
                issuer: &ask_name,
                subject: &vcek_name,
                not_before,
                not_after,
                subject_key: &vcek,
                extensions,
            },
            &ask,
        )?;

        Ok(Simulator {
            product,
            tcb,
            chip_id,
            ark_der,
            ask_der,
            vcek_der,
            vcek,
        })
    }

    /// The simulated product.
    pub fn product(&self) -> Product {
        self.product
    }

    /// The TCB of the chip (VCEK SPL extensions, and every TCB field of its reports).
    pub fn tcb(&self) -> Tcb {
        self.tcb
    }

    /// CHIP_ID (Turin: 8 bytes then zeros), equal to the VCEK's hwID.
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.chip_id
    }

    /// The simulated ARK certificate (DER, self-signed, ECDSA P-384).
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    /// The simulated ASK certificate (DER, signed by the ARK).
    pub fn ask_der(&self) -> &[u8] {
        &self.ask_der
    }

    /// The simulated VCEK certificate (DER, signed by the ASK).
    pub fn vcek_der(&self) -> &[u8] {
        &self.vcek_der
    }

    /// A signed attestation report (1184 bytes) in AMD's layout.
    pub fn report(&self, request: &ReportRequest) -> Result<Vec<u8>, SimError> {
        self.report_with_rng(request, &mut getrandom::SysRng)
    }

    /// A signed attestation report whose REPORT_ID is drawn from `rng`.
    pub fn report_with_rng<R: TryCryptoRng + ?Sized>(
        &self,
        request: &ReportRequest,
        rng: &mut R,
    ) -> Result<Vec<u8>, SimError> {
        if request.version != 3 && request.version != 5 {
            return Err(SimError::UnsupportedVersion(request.version));
        }
        let mut report_id = [0u8; 32];
        rng.try_fill_bytes(&mut report_id).map_err(rng_err)?;

        let tcb = encode_tcb(self.product, &self.tcb);
        let (cpuid, _) = part(self.product);
        let mut r = vec![0u8; REPORT_SIZE];
        let mut put = |offset: usize, bytes: &[u8]| {
            r[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(0x000, &request.version.to_le_bytes());
        put(0x004, &request.guest_svn.to_le_bytes());
        put(0x008, &request.policy.to_le_bytes());
        // FAMILY_ID, IMAGE_ID: zero (no ID block).
        put(0x030, &request.vmpl.to_le_bytes());
        put(0x034, &1u32.to_le_bytes()); // SIGNATURE_ALGO: ECDSA P-384 with SHA-384
        put(0x038, &tcb); // CURRENT_TCB
        put(0x040, &PLATFORM_INFO.to_le_bytes());
        put(0x048, &0u32.to_le_bytes()); // KEY_INFO: VCEK, chip key not masked
        put(0x050, &request.report_data);
        put(0x090, &request.measurement);
        put(0x0C0, &request.host_data);
        // ID_KEY_DIGEST, AUTHOR_KEY_DIGEST: zero (no ID block).
        put(0x140, &report_id);
        put(0x160, &[0xFF; 32]); // REPORT_ID_MA: no migration agent
        put(0x180, &tcb); // REPORTED_TCB
        put(0x188, &cpuid); // CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP
        put(0x1A0, &self.chip_id);
        put(0x1E0, &tcb); // COMMITTED_TCB
        put(0x1E8, &[0x15, 0x37, 0x01]); // CURRENT build 21, minor 55, major 1
        put(0x1EC, &[0x15, 0x37, 0x01]); // COMMITTED build, minor, major
        put(0x1F0, &tcb); // LAUNCH_TCB
                          // v5 LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR: zero (none).

        self.resign(&mut r)?;
        Ok(r)
    }

    /// Sign `report` (bytes `0..0x2A0`) again with this chip's VCEK, writing R and S
    /// little-endian at 0x2A0 and 0x2E8 and leaving every other byte alone. Tests use it to
    /// forge any signed field (KEY_INFO, CHIP_ID, reserved bytes, TCBs) with a valid
    /// signature. A report shorter than 1184 bytes is left unchanged and refused.
    pub fn resign(&self, report: &mut [u8]) -> Result<(), SimError> {
        if report.len() != REPORT_SIZE {
            return Err(SimError::Signing { what: "report" });
        }
        let signature: Signature = self
            .vcek
            .try_sign(&report[..SIGNED_LEN])
            .map_err(|_| SimError::Signing { what: "report" })?;
        let (sr, ss) = signature.split_bytes();
        report[0x2A0..0x330].fill(0);
        for (i, b) in sr.iter().rev().enumerate() {
            report[0x2A0 + i] = *b;
        }
        for (i, b) in ss.iter().rev().enumerate() {
            report[0x2E8 + i] = *b;
        }
        Ok(())
    }

    /// Evidence for the verifier: a signed report and the whole simulated chain (VCEK, ASK
    /// and ARK).
    pub fn evidence(&self, request: &ReportRequest) -> Result<Evidence, SimError> {
        Ok(Evidence {
            report: self.report(request)?,
            vek_der: self.vcek_der.clone(),
            intermediate_der: Some(self.ask_der.clone()),
            ark_der: Some(self.ark_der.clone()),
        })
    }
}
