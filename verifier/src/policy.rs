//! What a verifier accepts beyond "genuine AMD hardware signed this".

use crate::chain::TrustedRoots;
use crate::report::{Product, Tcb};

/// A set of allowed values, or explicitly any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed<T> {
    /// Any value is accepted.
    Any,
    /// Only these values are accepted (an empty list accepts nothing).
    OneOf(Vec<T>),
}

impl<T: PartialEq> Allowed<T> {
    /// Whether `value` is accepted.
    pub fn allows(&self, value: &T) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::OneOf(list) => list.contains(value),
        }
    }
}

/// What REPORT_DATA must contain.
///
/// Marked non-exhaustive: the binding to a TLS session and a measurement log (DESIGN.md
/// section 5) will be added as further variants.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportDataExpectation {
    /// Not checked here (the caller checks [`VerifiedReport::report_data`](crate::VerifiedReport)).
    Any,
    /// Must equal these 64 bytes exactly.
    Exact([u8; 64]),
}

/// A minimum TCB for one product (the layout and numbering differ per product).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinimumTcb {
    /// The product this minimum applies to.
    pub product: Product,
    /// Each component must be at least this; `fmc` is only compared when both sides have it.
    pub tcb: Tcb,
}

/// A product (and optionally a stepping) the policy requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedProduct {
    /// The product.
    pub product: Product,
    /// The stepping encoded in the VCEK productName ("Milan-B0" -> 0), if required.
    pub stepping: Option<u8>,
}

/// The verifier's acceptance policy.
///
/// [`Policy::default`] is strict about the guest configuration (no debug, no migration
/// agent, VMPL 0 only, VCEK or VLEK from AMD's roots) but accepts **any** measurement and any
/// REPORT_DATA: a relying party must set [`Policy::allowed_measurements`] and
/// [`Policy::report_data`] for its own use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// The roots the chain must end in. Default: AMD's ARKs only.
    pub trusted_roots: TrustedRoots,
    /// Accept POLICY.DEBUG (default false).
    pub allow_debug: bool,
    /// Accept POLICY.MIGRATE_MA (default false).
    pub allow_migration_agent: bool,
    /// Accept PLATFORM_INFO.SMT_EN (default true).
    pub allow_smt: bool,
    /// Require POLICY.SINGLE_SOCKET (default false).
    pub require_single_socket: bool,
    /// Accept reports signed by a VLEK (default true).
    pub allow_vlek: bool,
    /// Allowed VMPLs (default: only 0).
    pub allowed_vmpls: Allowed<u32>,
    /// Allowed launch measurements (default: any).
    pub allowed_measurements: Allowed<[u8; 48]>,
    /// Minimum TCB per product, checked against REPORTED_TCB, COMMITTED_TCB and CURRENT_TCB
    /// (default: none).
    pub minimum_tcb: Vec<MinimumTcb>,
    /// Minimum GUEST_SVN (default 0).
    pub minimum_guest_svn: u32,
    /// Required product and stepping (default: none).
    pub expected_product: Option<ExpectedProduct>,
    /// What REPORT_DATA must be (default: not checked).
    pub report_data: ReportDataExpectation,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            trusted_roots: TrustedRoots::amd(),
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            require_single_socket: false,
            allow_vlek: true,
            allowed_vmpls: Allowed::OneOf(vec![0]),
            allowed_measurements: Allowed::Any,
            minimum_tcb: Vec::new(),
            minimum_guest_svn: 0,
            expected_product: None,
            report_data: ReportDataExpectation::Any,
        }
    }
}

impl Policy {
    /// The default policy, accepting only these launch measurements.
    pub fn for_measurements(measurements: Vec<[u8; 48]>) -> Self {
        Policy {
            allowed_measurements: Allowed::OneOf(measurements),
            ..Policy::default()
        }
    }
}
