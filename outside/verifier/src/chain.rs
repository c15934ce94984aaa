//! The AMD certificate chain: ARK (root) -> ASK/ASVK (intermediate) -> VCEK/VLEK.
//!
//! Certificates are parsed with `x509-parser` (names, validity, algorithm parameters, AMD
//! extensions) and their RSASSA-PSS signatures are checked with the `sev` crate (RustCrypto
//! `rsa`, SHA-384, salt length 48).
//!
//! AMD's chains are always RSASSA-PSS. A root the caller adds with
//! [`TrustedRoot::new_ecdsa_p384`] (the Cloister SNP simulator's) is instead signed with
//! ECDSA P-384 / SHA-384 on every link; the algorithm is a property of the trusted root, so
//! an AMD root never accepts an ECDSA link and a simulator root never accepts an RSA one.

use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_HASH_SHA384, OID_SIG_ECDSA_WITH_SHA384,
};
use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::SignatureAlgorithm;

use cloister_display::quoted;

use crate::error::{RootFailure, VerifyError};
use crate::report::{EndorsementKind, Product, Tcb};

const MILAN_ASVK_PEM: &[u8] = include_bytes!("../certs/milan_asvk.pem");
const GENOA_ASVK_PEM: &[u8] = include_bytes!("../certs/genoa_asvk.pem");
const TURIN_ASVK_PEM: &[u8] = include_bytes!("../certs/turin_asvk.pem");

const OID_MGF1: &str = "1.2.840.113549.1.1.8";
const AMD_OID_PREFIX: &str = "1.3.6.1.4.1.3704.1.";

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Decode every `CERTIFICATE` block of a PEM text to DER, in order.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, VerifyError> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| VerifyError::CertificateParse {
            which: "PEM",
            reason: e.to_string(),
        })?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(VerifyError::CertificateParse {
            which: "PEM",
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(out)
}

fn first_pem(pem: &[u8]) -> Option<Vec<u8>> {
    certificates_from_pem(pem).ok()?.into_iter().next()
}

/// The signature algorithm every link of a chain (ARK self-signature, ARK -> ASK/ASVK,
/// ASK/ASVK -> VCEK/VLEK) must use. It is fixed by the trusted root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkAlgorithm {
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384 and salt length 48: AMD's chains.
    RsaPss,
    /// ECDSA P-384 with SHA-384 (`ecdsa-with-SHA384`): only for caller-added roots such as
    /// the Cloister SNP simulator's. Never used by AMD.
    EcdsaP384,
}

/// One trusted root (ARK) for a product, with the intermediates to use when evidence
/// does not carry them. Intermediates are always verified against the ARK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    product: Product,
    ark_der: Vec<u8>,
    ask_der: Option<Vec<u8>>,
    asvk_der: Option<Vec<u8>>,
    algorithm: LinkAlgorithm,
}

impl TrustedRoot {
    /// A root for `product` from its ARK certificate (DER). Its self-signature and validity
    /// are checked at each verification.
    /// Its chain must be signed with RSASSA-PSS, as AMD's are.
    pub fn new(product: Product, ark_der: Vec<u8>) -> Self {
        TrustedRoot {
            product,
            ark_der,
            ask_der: None,
            asvk_der: None,
            algorithm: LinkAlgorithm::RsaPss,
        }
    }

    /// A root for `product` whose chain is signed with ECDSA P-384 / SHA-384 instead of
    /// RSASSA-PSS: the Cloister SNP simulator's root. Trusting it means trusting whoever
    /// holds its key to sign any report; only do so in tests and development.
    pub fn new_ecdsa_p384(product: Product, ark_der: Vec<u8>) -> Self {
        TrustedRoot {
            algorithm: LinkAlgorithm::EcdsaP384,
            ..TrustedRoot::new(product, ark_der)
        }
    }

    /// The signature algorithm this root's chain must use.
    pub fn link_algorithm(&self) -> LinkAlgorithm {
        self.algorithm
    }

    /// Set the default ASK (DER), used when evidence carries no intermediate for a VCEK.
    pub fn with_ask(mut self, ask_der: Vec<u8>) -> Self {
        self.ask_der = Some(ask_der);
        self
    }

    /// Set the default ASVK (DER), used when evidence carries no intermediate for a VLEK.
    pub fn with_asvk(mut self, asvk_der: Vec<u8>) -> Self {
        self.asvk_der = Some(asvk_der);
        self
    }

    /// The built-in ASK and ASVK, if any.
    pub(crate) fn intermediates(&self) -> [Option<&[u8]>; 2] {
        [self.ask_der.as_deref(), self.asvk_der.as_deref()]
    }

    /// A name that tells this root apart from every other: its common name, its chain
    /// algorithm and the start of the SHA-256 of its certificate, e.g.
    /// `ARK-Milan (RSASSA-PSS, sha256:1a2b3c4d5e6f7a8b)`.
    pub fn label(&self) -> String {
        use sha2::Digest;
        let cn = X509Certificate::from_der(&self.ark_der)
            .map(|(_, c)| common_name(&c, true))
            .unwrap_or_default();
        let cn = if cn.is_empty() {
            "ARK".to_owned()
        } else {
            quoted(&cn)
        };
        let digest = sha2::Sha256::digest(&self.ark_der);
        let algorithm = match self.algorithm {
            LinkAlgorithm::RsaPss => "RSASSA-PSS",
            LinkAlgorithm::EcdsaP384 => "ECDSA P-384, simulator",
        };
        let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{cn} ({algorithm}, sha256:{short})")
    }

    /// The product this root is for.
    pub fn product(&self) -> Product {
        self.product
    }

    /// The ARK certificate (DER).
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    fn amd(product: Product) -> Option<Self> {
        use sev::certs::snp::builtin::{genoa, milan, turin};
        let (ark, ask, asvk) = match product {
            Product::Milan => (milan::ARK, milan::ASK, MILAN_ASVK_PEM),
            Product::Genoa => (genoa::ARK, genoa::ASK, GENOA_ASVK_PEM),
            Product::Turin => (turin::ARK, turin::ASK, TURIN_ASVK_PEM),
        };
        let mut root = TrustedRoot::new(product, first_pem(ark)?);
        root.ask_der = first_pem(ask);
        root.asvk_der = first_pem(asvk);
        Some(root)
    }
}

/// The set of roots a verifier trusts. Nothing is trusted implicitly: [`TrustedRoots::amd`]
/// (also the [`Default`]) holds AMD's ARKs for Milan, Genoa and Turin, with their ASKs (from
/// the `sev` crate) and ASVKs; any other root, such as a simulator's, must be added
/// explicitly with [`TrustedRoots::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoots {
    roots: Vec<TrustedRoot>,
}

impl TrustedRoots {
    /// AMD's production roots for Milan, Genoa and Turin.
    pub fn amd() -> Self {
        TrustedRoots {
            roots: [Product::Milan, Product::Genoa, Product::Turin]
                .into_iter()
                .filter_map(TrustedRoot::amd)
                .collect(),
        }
    }

    /// No roots at all (every verification fails until one is added).
    pub fn empty() -> Self {
        TrustedRoots { roots: Vec::new() }
    }

    /// Trust one more root.
    pub fn add(&mut self, root: TrustedRoot) -> &mut Self {
        self.roots.push(root);
        self
    }

    /// Trust one more root (builder form).
    pub fn with(mut self, root: TrustedRoot) -> Self {
        self.roots.push(root);
        self
    }

    /// The trusted roots, in the order they are tried.
    pub fn roots(&self) -> &[TrustedRoot] {
        &self.roots
    }
}

impl Default for TrustedRoots {
    fn default() -> Self {
        TrustedRoots::amd()
    }
}

/// The AMD-specific extensions of a VCEK or VLEK certificate (VCEK spec 57230, ch. 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VekExtensions {
    /// structVersion (.1.1).
    pub struct_version: Option<u8>,
    /// productName (.1.2), e.g. "Milan-B0", "Genoa", "Turin".
    pub product_name: Option<String>,
    /// The TCB the key was derived for: blSPL (.3.1), teeSPL (.3.2), snpSPL (.3.3),
    /// ucodeSPL (.3.8) and, when present, fmcSPL (.3.9).
    pub tcb: Tcb,
    /// hwID (.4): the chip id (64 bytes; 8 for Turin). VCEK only.
    pub hw_id: Option<Vec<u8>>,
    /// csp_id (.5): the cloud provider. VLEK only.
    pub csp_id: Option<String>,
}

impl VekExtensions {
    /// The stepping encoded in productName ("Milan-B1" -> 1, "Genoa" -> None).
    pub fn stepping(&self) -> Option<u8> {
        let name = self.product_name.as_deref()?;
        let (_, suffix) = name.split_once('-')?;
        let mut chars = suffix.chars();
        let letter = chars.next()?;
        let digits: String = chars.collect();
        if !letter.is_ascii_uppercase() || digits.is_empty() {
            return None;
        }
        digits.parse().ok()
    }
}

/// A VCEK/VLEK certificate whose chain to a trusted root verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedVek {
    /// VCEK or VLEK.
    pub kind: EndorsementKind,
    /// The product whose root it chains to.
    pub product: Product,
    /// The AMD extensions.
    pub extensions: VekExtensions,
    /// The EC P-384 public key, SEC1 encoded.
    pub public_key_sec1: Vec<u8>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

struct Parsed<'a> {
    which: &'static str,
    x509: X509Certificate<'a>,
}

/// The critical extensions this verifier recognises (RFC 5280 section 4.2: a certificate
/// with any other critical extension must be rejected). AMD's ARKs, ASKs and ASVKs mark
/// exactly these two critical; VCEKs and VLEKs have no critical extension.
const RECOGNISED_CRITICAL: [&str; 2] = [
    "2.5.29.15", // keyUsage
    "2.5.29.19", // basicConstraints
];

fn parse<'a>(which: &'static str, der: &'a [u8]) -> Result<Parsed<'a>, VerifyError> {
    let err = |reason: String| VerifyError::CertificateParse { which, reason };
    let (rest, x509) = X509Certificate::from_der(der).map_err(|e| err(e.to_string()))?;
    if !rest.is_empty() {
        return Err(err("trailing bytes after the certificate".into()));
    }
    check_extensions(which, &x509)?;
    Ok(Parsed { which, x509 })
}

/// RFC 5280 section 4.2 for every certificate of the chain: no extension appears twice
/// (x509-parser keeps them all, and a lookup would see only one of them), and every
/// critical extension is one this verifier recognises and that parses.
fn check_extensions(which: &'static str, cert: &X509Certificate<'_>) -> Result<(), VerifyError> {
    let bad = |oid: String, reason: &'static str| VerifyError::CertificateExtension {
        which,
        oid,
        reason,
    };
    let extensions = cert.extensions();
    for (i, ext) in extensions.iter().enumerate() {
        let oid = ext.oid.to_id_string();
        if extensions[..i].iter().any(|e| e.oid == ext.oid) {
            return Err(bad(
                oid,
                "appears more than once (RFC 5280 4.2: at most one instance of an extension)",
            ));
        }
        if ext.critical {
            if !RECOGNISED_CRITICAL.contains(&oid.as_str()) {
                return Err(bad(
                    oid,
                    "is critical and not recognised (RFC 5280 4.2: such a certificate must be rejected)",
                ));
            }
            if matches!(
                ext.parsed_extension(),
                ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. }
            ) {
                return Err(bad(oid, "is critical and does not parse"));
            }
        }
    }
    Ok(())
}

fn common_name(cert: &X509Certificate<'_>, subject: bool) -> String {
    let name = if subject {
        cert.subject()
    } else {
        cert.issuer()
    };
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string()
}

fn check_validity(cert: &Parsed<'_>, now: i64) -> Result<(), VerifyError> {
    let validity = cert.x509.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    if now < not_before {
        return Err(VerifyError::CertificateNotYetValid {
            which: cert.which,
            not_before,
            now,
        });
    }
    if now > not_after {
        return Err(VerifyError::CertificateExpired {
            which: cert.which,
            not_after,
            now,
        });
    }
    Ok(())
}

/// Check `signer` signs `signee`: names chain, the algorithm is the root's (RSASSA-PSS with
/// SHA-384, MGF1-SHA-384 and salt 48 for AMD; ECDSA P-384 with SHA-384 for a caller-added
/// simulator root), and the signature verifies.
fn check_link(
    link: &'static str,
    algorithm: LinkAlgorithm,
    signer: &Parsed<'_>,
    signee: &Parsed<'_>,
) -> Result<(), VerifyError> {
    let bad = |reason: String| VerifyError::ChainInvalid { link, reason };
    if signee.x509.issuer().as_raw() != signer.x509.subject().as_raw() {
        return Err(bad(format!(
            "issuer {} of the {} is not the subject {} of the {}",
            quoted(&common_name(&signee.x509, false)),
            signee.which,
            quoted(&common_name(&signer.x509, true)),
            signer.which
        )));
    }
    if signee.x509.signature_algorithm != signee.x509.tbs_certificate.signature {
        return Err(bad("outer and inner signature algorithms differ".into()));
    }
    if algorithm == LinkAlgorithm::EcdsaP384 {
        return check_ecdsa_link(signer, signee).map_err(bad);
    }
    match SignatureAlgorithm::try_from(&signee.x509.signature_algorithm) {
        Ok(SignatureAlgorithm::RSASSA_PSS(params)) => {
            if *params.hash_algorithm_oid() != OID_NIST_HASH_SHA384 {
                return Err(bad("RSASSA-PSS hash is not SHA-384".into()));
            }
            let mgf = params
                .mask_gen_algorithm()
                .map_err(|e| bad(format!("RSASSA-PSS mask generation: {e}")))?;
            if mgf.mgf.to_id_string() != OID_MGF1 || mgf.hash != OID_NIST_HASH_SHA384 {
                return Err(bad("RSASSA-PSS mask generation is not MGF1-SHA-384".into()));
            }
            if params.salt_length() != 48 {
                return Err(bad(format!(
                    "RSASSA-PSS salt length is {}, not 48",
                    params.salt_length()
                )));
            }
        }
        Ok(_) => {
            return Err(bad(
                "signature algorithm is not RSASSA-PSS (the root's chain algorithm)".into(),
            ))
        }
        Err(e) => return Err(bad(format!("signature algorithm: {e}"))),
    }
    // ring's RSASSA-PSS verification uses MGF1 with the same hash and a salt as long as
    // the hash (48 bytes for SHA-384): exactly the parameters checked above.
    let rsa_key = &signer.x509.public_key().subject_public_key.data;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PSS_2048_8192_SHA384, rsa_key)
        .verify(
            signee.x509.tbs_certificate.as_ref(),
            &signee.x509.signature_value.data,
        )
        .map_err(|_| bad("signature does not verify".into()))
}

/// The ECDSA P-384 / SHA-384 link of a simulator chain.
fn check_ecdsa_link(signer: &Parsed<'_>, signee: &Parsed<'_>) -> Result<(), String> {
    let alg = &signee.x509.signature_algorithm;
    if alg.algorithm != OID_SIG_ECDSA_WITH_SHA384 {
        return Err(
            "signature algorithm is not ecdsa-with-SHA384 (the root's chain algorithm)".into(),
        );
    }
    if alg.parameters.is_some() {
        return Err("ecdsa-with-SHA384 must have no parameters".into());
    }
    let key = p384_key(&signer.x509).map_err(|e| format!("signer key: {e}"))?;
    p384::ecdsa::VerifyingKey::from_sec1_bytes(&key)
        .map_err(|_| "signer key is not a point on P-384".to_string())?;
    p384::ecdsa::DerSignature::from_bytes(&signee.x509.signature_value.data)
        .map_err(|_| "signature is not a DER ECDSA P-384 signature".to_string())?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_ASN1, &key)
        .verify(
            signee.x509.tbs_certificate.as_ref(),
            &signee.x509.signature_value.data,
        )
        .map_err(|_| "signature does not verify".to_string())
}

fn check_cn(cert: &Parsed<'_>, expected: &str) -> Result<(), VerifyError> {
    let actual = common_name(&cert.x509, true);
    if actual != expected {
        return Err(VerifyError::WrongCertificateKind {
            which: cert.which,
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Verify the chain ARK -> ASK -> VCEK (or ARK -> ASVK -> VLEK) for `product` at `now`.
///
/// * `ark_der`: the root carried by the evidence, if any. It is only accepted if it is
///   byte-identical to one of `roots` for `product`; when absent, every trusted root for the
///   product is tried.
/// * `intermediate_der`: the ASK (for a VCEK) or ASVK (for a VLEK); when absent, the trusted
///   root's built-in one is used.
/// * `vek_der`: the VCEK or VLEK; `kind` says which one the report claims.
///
/// Checked, in order, for the first root that succeeds: ARK self-signature and validity;
/// intermediate common name (`SEV-<Product>` / `SEV-VLEK-<Product>`), issuer, RSASSA-PSS
/// parameters, signature and validity; VEK issuer, parameters, signature, validity, common
/// name (`SEV-VCEK` / `SEV-VLEK`), P-384 key and AMD extensions.
pub fn verify_chain(
    roots: &TrustedRoots,
    ark_der: Option<&[u8]>,
    intermediate_der: Option<&[u8]>,
    vek_der: &[u8],
    product: Product,
    kind: EndorsementKind,
    now: SystemTime,
) -> Result<VerifiedVek, VerifyError> {
    let candidates: Vec<&TrustedRoot> = roots
        .roots
        .iter()
        .filter(|r| r.product == product)
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::NoTrustedRoot { product });
    }
    let candidates: Vec<&TrustedRoot> = match ark_der {
        Some(ark) => candidates
            .into_iter()
            .filter(|r| r.ark_der.as_slice() == ark)
            .collect(),
        None => claimed_roots(candidates, intermediate_der, vek_der, kind),
    };
    let mut failures = Vec::new();
    for root in &candidates {
        match verify_with_root(root, intermediate_der, vek_der, kind, now) {
            Ok(v) => return Ok(v),
            Err(e) => failures.push(RootFailure {
                root: root.label(),
                error: Box::new(e),
            }),
        }
    }
    match failures.len() {
        0 => Err(VerifyError::UntrustedRoot { product }),
        1 => Err(*failures.remove(0).error),
        _ => Err(VerifyError::NoRootVerifies { product, failures }),
    }
}

/// The roots the evidence claims when it carries no ARK: those whose subject is the issuer
/// of the intermediate it carries (and whose subjectKeyIdentifier is the intermediate's
/// authorityKeyIdentifier, when both are present), or, without an intermediate, those whose
/// built-in intermediate issued the VCEK/VLEK. When nothing matches, every candidate is
/// kept, so that the failure of each is reported.
fn claimed_roots<'r>(
    candidates: Vec<&'r TrustedRoot>,
    intermediate_der: Option<&[u8]>,
    vek_der: &[u8],
    kind: EndorsementKind,
) -> Vec<&'r TrustedRoot> {
    let Ok((_, vek)) = X509Certificate::from_der(vek_der) else {
        return candidates;
    };
    let claimed: Vec<&TrustedRoot> = match intermediate_der {
        Some(inter_der) => {
            let Ok((_, inter)) = X509Certificate::from_der(inter_der) else {
                return candidates;
            };
            let aki = authority_key_id(&inter);
            candidates
                .iter()
                .copied()
                .filter(|root| {
                    let Ok((_, ark)) = X509Certificate::from_der(&root.ark_der) else {
                        return false;
                    };
                    let keys_agree = match (aki, subject_key_id(&ark)) {
                        (Some(a), Some(s)) => a == s,
                        _ => true,
                    };
                    ark.subject().as_raw() == inter.issuer().as_raw() && keys_agree
                })
                .collect()
        }
        None => candidates
            .iter()
            .copied()
            .filter(|root| {
                let default = match kind {
                    EndorsementKind::Vcek => root.ask_der.as_deref(),
                    EndorsementKind::Vlek => root.asvk_der.as_deref(),
                };
                default
                    .and_then(|d| X509Certificate::from_der(d).ok())
                    .is_some_and(|(_, inter)| inter.subject().as_raw() == vek.issuer().as_raw())
            })
            .collect(),
    };
    if claimed.is_empty() {
        candidates
    } else {
        claimed
    }
}

fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
}

fn authority_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(k) => k.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        })
}

fn verify_with_root(
    root: &TrustedRoot,
    intermediate_der: Option<&[u8]>,
    vek_der: &[u8],
    kind: EndorsementKind,
    now: SystemTime,
) -> Result<VerifiedVek, VerifyError> {
    let now = unix_seconds(now);
    let product = root.product;
    let (link_root, link_vek) = match kind {
        EndorsementKind::Vcek => ("ARK->ASK", "ASK->VCEK"),
        EndorsementKind::Vlek => ("ARK->ASVK", "ASVK->VLEK"),
    };

    let algorithm = root.algorithm;
    let ark = parse("ARK", &root.ark_der)?;
    check_link("ARK", algorithm, &ark, &ark)?;
    check_validity(&ark, now)?;

    let inter_name = kind.intermediate_name();
    let default_inter = match kind {
        EndorsementKind::Vcek => root.ask_der.as_deref(),
        EndorsementKind::Vlek => root.asvk_der.as_deref(),
    };
    let inter_der = intermediate_der
        .or(default_inter)
        .ok_or(VerifyError::MissingIntermediate { which: inter_name })?;
    let inter = parse(inter_name, inter_der)?;
    let expected_inter_cn = match kind {
        EndorsementKind::Vcek => format!("SEV-{}", product.name()),
        EndorsementKind::Vlek => format!("SEV-VLEK-{}", product.name()),
    };
    check_cn(&inter, &expected_inter_cn)?;
    check_link(link_root, algorithm, &ark, &inter)?;
    check_validity(&inter, now)?;

    let vek = parse(kind.name(), vek_der)?;
    check_link(link_vek, algorithm, &inter, &vek)?;
    check_validity(&vek, now)?;
    check_cn(&vek, &format!("SEV-{}", kind.name()))?;

    let public_key_sec1 = p384_key(&vek.x509)?;
    let extensions = vek_extensions(&vek.x509, product, kind)?;
    let validity = vek.x509.validity();
    Ok(VerifiedVek {
        kind,
        product,
        extensions,
        public_key_sec1,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

fn p384_key(cert: &X509Certificate<'_>) -> Result<Vec<u8>, VerifyError> {
    let spki = cert.public_key();
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return Err(VerifyError::VekKeyInvalid("not an EC public key".into()));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if curve.as_ref() != Some(&OID_NIST_EC_P384) {
        return Err(VerifyError::VekKeyInvalid("curve is not P-384".into()));
    }
    let sec1 = spki.subject_public_key.data.to_vec();
    p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| VerifyError::VekKeyInvalid("not a point on P-384".into()))?;
    Ok(sec1)
}

/// Parse a DER TLV with a short or long (one/two byte) length; returns (tag, content).
fn der_tlv(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = match len0 {
        0x00..=0x7F => (usize::from(len0), rest),
        0x81 => {
            let (&l, rest) = rest.split_first()?;
            (usize::from(l), rest)
        }
        0x82 => {
            let (l, rest) = rest.split_at_checked(2)?;
            (usize::from(u16::from_be_bytes([l[0], l[1]])), rest)
        }
        _ => return None,
    };
    (rest.len() == len).then_some((tag, rest))
}

fn der_u8(field: &'static str, value: &[u8]) -> Result<u8, VerifyError> {
    let bad = |reason: &str| VerifyError::VekExtension {
        field,
        reason: reason.into(),
    };
    let (tag, content) = der_tlv(value).ok_or_else(|| bad("not a DER value"))?;
    if tag != 0x02 || content.is_empty() {
        return Err(bad("not an INTEGER"));
    }
    if content[0] & 0x80 != 0 {
        return Err(bad("negative"));
    }
    let mut v: u64 = 0;
    for &b in content.iter().skip_while(|&&b| b == 0) {
        v = v
            .checked_mul(256)
            .and_then(|v| v.checked_add(u64::from(b)))
            .ok_or_else(|| bad("too large"))?;
    }
    u8::try_from(v).map_err(|_| bad("larger than 255"))
}

fn der_ia5(field: &'static str, value: &[u8]) -> Result<String, VerifyError> {
    let bad = |reason: &str| VerifyError::VekExtension {
        field,
        reason: reason.into(),
    };
    let (tag, content) = der_tlv(value).ok_or_else(|| bad("not a DER value"))?;
    if tag != 0x16 || !content.is_ascii() {
        return Err(bad("not an IA5String"));
    }
    Ok(String::from_utf8_lossy(content).into_owned())
}

/// hwID is stored raw by AMD KDS (no DER header); accept a DER OCTET STRING too.
fn hw_id(value: &[u8]) -> Result<Vec<u8>, VerifyError> {
    if value.len() == 64 || value.len() == 8 {
        return Ok(value.to_vec());
    }
    match der_tlv(value) {
        Some((0x04, content)) if content.len() == 64 || content.len() == 8 => Ok(content.to_vec()),
        _ => Err(VerifyError::VekExtension {
            field: "hwID",
            reason: format!("{} bytes, expected 64 (or 8 on Turin)", value.len()),
        }),
    }
}

fn vek_extensions(
    cert: &X509Certificate<'_>,
    product: Product,
    kind: EndorsementKind,
) -> Result<VekExtensions, VerifyError> {
    let mut struct_version = None;
    let mut product_name = None;
    let (mut bl, mut tee, mut snp, mut ucode, mut fmc) = (None, None, None, None, None);
    let mut hw = None;
    let mut csp_id = None;
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        let Some(suffix) = oid.strip_prefix(AMD_OID_PREFIX) else {
            continue;
        };
        let v = ext.value;
        let (slot, value): (&mut Option<u8>, &'static str) = match suffix {
            "1" => (&mut struct_version, "structVersion"),
            "3.1" => (&mut bl, "blSPL"),
            "3.2" => (&mut tee, "teeSPL"),
            "3.3" => (&mut snp, "snpSPL"),
            "3.8" => (&mut ucode, "ucodeSPL"),
            "3.9" => (&mut fmc, "fmcSPL"),
            "2" => {
                product_name = Some(der_ia5("productName", v)?);
                continue;
            }
            "4" => {
                hw = Some(hw_id(v)?);
                continue;
            }
            "5" => {
                csp_id = Some(der_ia5("csp_id", v)?);
                continue;
            }
            _ => continue,
        };
        if slot.is_some() {
            return Err(VerifyError::VekExtension {
                field: value,
                reason: "duplicate".into(),
            });
        }
        *slot = Some(der_u8(value, v)?);
    }
    let need = |v: Option<u8>, field: &'static str| {
        v.ok_or(VerifyError::VekExtension {
            field,
            reason: "missing".into(),
        })
    };
    let fmc = match product {
        Product::Turin => Some(need(fmc, "fmcSPL")?),
        Product::Milan | Product::Genoa => None,
    };
    let tcb = Tcb {
        fmc,
        bootloader: need(bl, "blSPL")?,
        tee: need(tee, "teeSPL")?,
        snp: need(snp, "snpSPL")?,
        microcode: need(ucode, "ucodeSPL")?,
    };
    if let Some(name) = &product_name {
        if Product::from_product_name(name) != Some(product) {
            return Err(VerifyError::VekExtension {
                field: "productName",
                reason: format!("{} is not a {product} product", quoted(name)),
            });
        }
    }
    if kind == EndorsementKind::Vcek && hw.is_none() {
        return Err(VerifyError::VekExtension {
            field: "hwID",
            reason: "missing in a VCEK".into(),
        });
    }
    Ok(VekExtensions {
        struct_version,
        product_name,
        tcb,
        hw_id: hw,
        csp_id,
    })
}

/// The product named by a VCEK/VLEK certificate (productName extension, else the issuer
/// common name `SEV-<Product>` / `SEV-VLEK-<Product>`). Unauthenticated: only used to pick
/// the root to verify against.
pub fn product_from_vek(vek_der: &[u8]) -> Option<Product> {
    let (_, cert) = X509Certificate::from_der(vek_der).ok()?;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == "1.3.6.1.4.1.3704.1.2" {
            if let Ok(name) = der_ia5("productName", ext.value) {
                return Product::from_product_name(&name);
            }
        }
    }
    let issuer = common_name(&cert, false);
    let name = issuer
        .strip_prefix("SEV-VLEK-")
        .or_else(|| issuer.strip_prefix("SEV-"))?;
    Product::from_product_name(name)
}

/// The product of an ARK certificate, from its subject common name `ARK-<Product>`.
/// Unauthenticated: only used to file a caller-supplied root under its product.
pub fn product_from_ark(ark_der: &[u8]) -> Option<Product> {
    let (_, cert) = X509Certificate::from_der(ark_der).ok()?;
    let subject = common_name(&cert, true);
    Product::from_product_name(subject.strip_prefix("ARK-")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/vectors/snp/trustee")
            .join(name);
        std::fs::read(path).expect("fixture")
    }

    #[test]
    fn der_integers() {
        assert_eq!(der_u8("x", &[0x02, 0x01, 0x08]), Ok(8));
        assert_eq!(der_u8("x", &[0x02, 0x02, 0x00, 0xDB]), Ok(219));
        assert!(der_u8("x", &[0x02, 0x01, 0x80]).is_err()); // negative
        assert!(der_u8("x", &[0x02, 0x02, 0x01, 0x00]).is_err()); // 256
        assert!(der_u8("x", &[0x04, 0x01, 0x08]).is_err()); // not an INTEGER
        assert!(der_u8("x", &[0x02, 0x05, 0x08]).is_err()); // truncated
        assert!(der_u8("x", &[]).is_err());
        assert_eq!(der_ia5("x", b"\x16\x05Genoa"), Ok("Genoa".to_string()));
        assert!(der_ia5("x", b"\x0c\x05Genoa").is_err());
    }

    #[test]
    fn hw_id_raw_or_wrapped() {
        assert_eq!(hw_id(&[7u8; 64]).map(|v| v.len()), Ok(64));
        assert_eq!(hw_id(&[7u8; 8]).map(|v| v.len()), Ok(8));
        let mut wrapped = vec![0x04, 0x40];
        wrapped.extend([9u8; 64]);
        assert_eq!(hw_id(&wrapped), Ok(vec![9u8; 64]));
        assert!(hw_id(&[1, 2, 3]).is_err());
    }

    /// The trustee parse-only fixtures: extensions parse (hwID raw, and wrapped in an
    /// OCTET STRING), although the certificates are not signed by AMD.
    #[test]
    fn invalid_fixtures_parse() {
        let expected_hw: Vec<u8> = (0u8..64).collect();
        for name in ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"] {
            let der = fixture(name);
            let (_, cert) = X509Certificate::from_der(&der).expect("parse");
            let ext = vek_extensions(&cert, Product::Milan, EndorsementKind::Vcek).expect(name);
            assert_eq!(ext.hw_id.as_deref(), Some(expected_hw.as_slice()), "{name}");
            assert_eq!(ext.product_name.as_deref(), Some("Milan-B0"));
            assert_eq!(ext.stepping(), Some(0));
        }
    }

    #[test]
    fn stepping_from_product_name() {
        let ext = |name: &str| VekExtensions {
            struct_version: None,
            product_name: Some(name.to_string()),
            tcb: Tcb::default(),
            hw_id: None,
            csp_id: None,
        };
        assert_eq!(ext("Milan-B1").stepping(), Some(1));
        assert_eq!(ext("Genoa").stepping(), None);
        assert_eq!(ext("Milan-").stepping(), None);
    }
}
