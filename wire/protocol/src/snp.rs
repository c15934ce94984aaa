//! Facts of AMD's SEV-SNP attestation report that both sides need: its size, the signed
//! range, the products (EPYC generations) and how a TCB_VERSION decodes for each.
//! The full report parser is the verifier's; the host and the simulator need only these.

use std::fmt;

/// Size of an attestation report in bytes.
pub const REPORT_SIZE: usize = 0x4A0;
/// The signature covers bytes `0..SIGNED_LEN`.
pub const SIGNED_LEN: usize = 0x2A0;

/// The AMD EPYC generation that produced a report (and whose keys sign it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// EPYC 7003 (family 0x19, models 0x00-0x0F).
    Milan,
    /// EPYC 9004 (family 0x19, models 0x10-0x1F, 0xA0-0xAF).
    Genoa,
    /// EPYC 9005 (family 0x1A, models 0x00-0x11).
    Turin,
}

impl Product {
    /// The name AMD uses in certificate names and KDS URLs ("Milan", "Genoa", "Turin").
    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// The product for CPUID family/model, as in virtee/sev `Generation::identify_cpu`.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Product::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Product::Genoa),
            (0x1A, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }

    /// The product named by a certificate productName ("Milan-B0", "Genoa", "Turin", ...).
    pub fn from_product_name(name: &str) -> Option<Product> {
        let line = name.split('-').next().unwrap_or(name);
        [Product::Milan, Product::Genoa, Product::Turin]
            .into_iter()
            .find(|p| p.name() == line)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A TCB_VERSION as the 8 raw bytes of the report; its meaning depends on the [`Product`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawTcb(pub [u8; 8]);

impl RawTcb {
    /// Decode for a product: Milan/Genoa `[bl, tee, 0, 0, 0, 0, snp, ucode]`,
    /// Turin `[fmc, bl, tee, snp, 0, 0, 0, ucode]`.
    pub fn decode(self, product: Product) -> Tcb {
        let b = self.0;
        match product {
            Product::Milan | Product::Genoa => Tcb {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            Product::Turin => Tcb {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
        }
    }
}

impl RawTcb {
    /// The byte indexes that are reserved (must be zero) in this product's layout:
    /// Milan/Genoa 2..=5, Turin 4..=6.
    pub fn reserved_bytes(product: Product) -> std::ops::RangeInclusive<usize> {
        match product {
            Product::Milan | Product::Genoa => 2..=5,
            Product::Turin => 4..=6,
        }
    }

    /// The index of the first reserved byte (for `product`'s layout) that is not zero.
    pub fn first_nonzero_reserved(self, product: Product) -> Option<usize> {
        RawTcb::reserved_bytes(product).find(|&i| self.0.get(i).is_some_and(|&b| b != 0))
    }
}

/// A decoded TCB version: the security patch level of each firmware component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tcb {
    /// FMC SPL (Turin and later only).
    pub fmc: Option<u8>,
    /// Bootloader SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl Tcb {
    /// The components as `(name, value)`, FMC only when present.
    pub fn components(&self) -> Vec<(&'static str, u8)> {
        let mut v = Vec::with_capacity(5);
        if let Some(fmc) = self.fmc {
            v.push(("fmc", fmc));
        }
        v.push(("bootloader", self.bootloader));
        v.push(("tee", self.tee));
        v.push(("snp", self.snp));
        v.push(("microcode", self.microcode));
        v
    }
}
