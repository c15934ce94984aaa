//! Pinned code generation and ahead-of-time compiled plugins: the plugin
//! runtime's only `unsafe` code, kept in this crate so that it is small,
//! named and audited on its own (the runtime and the host are
//! `#![forbid(unsafe_code)]`).
//!
//! This crate runs **inside the confidential VM**. It does two things:
//!
//! 1. **Pins code generation** ([`pin_code_generation`]): Cranelift compiles for
//!    `x86_64-unknown-linux-gnu` with a fixed feature set ([`ISA_FLAGS`], the
//!    x86-64-v3 level every SEV-SNP EPYC has) instead of whatever the build
//!    machine's CPU offers. The same component therefore compiles to the same
//!    machine code on every machine, which is what lets an auditor rebuild a
//!    precompiled artifact, and the CVM image that carries it, bit for bit.
//!    Setting Cranelift flags is `unsafe` in wasmtime because a wrong flag can
//!    break invariants; these are Cranelift's documented x86 ISA flags, and
//!    wasmtime checks at compile time and again at load time that the CPU it
//!    runs on really has each of them (a CPU without one gets an error, never
//!    code it cannot run). [`check_cpu`] says so first, in our words.
//! 2. **Loads precompiled components from the measured image**
//!    ([`load_precompiled`]). Deserializing an artifact is `unsafe` because its
//!    bytes are machine code that wasmtime maps executable without validating
//!    it: whoever can write the file can run anything in the host. It is safe
//!    here only because of where the file is:
//!    * the artifacts are built by `cloister-image build` (which runs
//!      `cloister-host precompile` with the deployment's configuration) into the
//!      CVM's initramfs, and the initramfs is covered by the SEV-SNP launch
//!      measurement (OVMF's kernel-hashes): an artifact is as measured as the
//!      host binary that loads it, and a client that accepts the measurement
//!      accepts both;
//!    * the directory is named only on the host's command line, which
//!      `cloister-init` takes from its configuration in the same measured
//!      initramfs; no deployment file, request or operator setting can name
//!      another one inside the CVM;
//!    * an artifact is looked up by the SHA-256 of the component whose
//!      signature the host has just verified, so it can only stand in for
//!      that component, and wasmtime refuses it unless its engine version,
//!      target, Cranelift flags, limits and WebAssembly features are exactly
//!      the running engine's;
//!    * nothing in the CVM writes the initramfs after boot (the host is the
//!      only process, and it opens the file read-only), which is the other
//!      half of wasmtime's contract for a memory-mapped artifact.
//!
//!    A [`MeasuredDir`] is the type that carries that claim; see its docs.
#![deny(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

/// The target triple code is generated for.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Cranelift's x86 ISA flags enabled, and no others: x86-64-v3 (SSE4.2,
/// POPCNT, CMPXCHG16B, AVX, AVX2, FMA, BMI1, BMI2, LZCNT). Every AMD EPYC with
/// SEV-SNP (Zen 3 Milan and later) has all of them.
pub const ISA_FLAGS: &[&str] = &[
    "has_sse3",
    "has_ssse3",
    "has_cmpxchg16b",
    "has_sse41",
    "has_sse42",
    "has_popcnt",
    "has_avx",
    "has_avx2",
    "has_fma",
    "has_bmi1",
    "has_bmi2",
    "has_lzcnt",
];

/// The file name of a component's precompiled artifact: its SHA-256 (lowercase
/// hex) and `.cwasm`.
pub fn artifact_name(component_sha256_hex: &str) -> String {
    format!("{component_sha256_hex}.cwasm")
}

/// Why code generation cannot be pinned, or an artifact cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AotError {
    /// The host is not x86-64 Linux.
    #[error("code generation is pinned to {TARGET} (the SEV-SNP platform); this host is {host}")]
    UnsupportedHost {
        /// `std::env::consts::ARCH`-`OS`.
        host: String,
    },
    /// The CPU lacks a feature the pinned code generation uses.
    #[error("this CPU lacks {feature}, which this build and the pinned code generation need (x86-64-v3: every SEV-SNP EPYC has it)")]
    MissingCpuFeature {
        /// The feature, as the CPU manual names it.
        feature: &'static str,
    },
    /// The component is not the one the caller named (a bad hash string).
    #[error("{0:?} is not a SHA-256 in lowercase hex")]
    BadDigest(String),
    /// The artifact file is missing or unreadable.
    #[error("cannot open the precompiled artifact {path}: {reason}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// wasmtime refused the artifact (not an artifact, another wasmtime
    /// version, other flags or limits).
    #[error("the precompiled artifact {path} was refused: {reason}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// wasmtime's reason.
        reason: String,
    },
}

/// Checks that this machine can run pinned code and this build: x86-64 Linux
/// with every feature of [`ISA_FLAGS`], and the rest of x86-64-v3 (F16C,
/// MOVBE, XSAVE), which the workspace's Rust code is compiled for
/// (`.cargo/config.toml`). `cloister-host` calls it first thing, so that a
/// CPU below that gets this error instead of an illegal instruction.
pub fn check_cpu() -> Result<(), AotError> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let features: [(&'static str, bool); 15] = [
            ("SSE3", std::arch::is_x86_feature_detected!("sse3")),
            ("SSSE3", std::arch::is_x86_feature_detected!("ssse3")),
            (
                "CMPXCHG16B",
                std::arch::is_x86_feature_detected!("cmpxchg16b"),
            ),
            ("SSE4.1", std::arch::is_x86_feature_detected!("sse4.1")),
            ("SSE4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("POPCNT", std::arch::is_x86_feature_detected!("popcnt")),
            ("AVX", std::arch::is_x86_feature_detected!("avx")),
            ("AVX2", std::arch::is_x86_feature_detected!("avx2")),
            ("FMA", std::arch::is_x86_feature_detected!("fma")),
            ("BMI1", std::arch::is_x86_feature_detected!("bmi1")),
            ("BMI2", std::arch::is_x86_feature_detected!("bmi2")),
            ("LZCNT", std::arch::is_x86_feature_detected!("lzcnt")),
            ("F16C", std::arch::is_x86_feature_detected!("f16c")),
            ("MOVBE", std::arch::is_x86_feature_detected!("movbe")),
            ("XSAVE", std::arch::is_x86_feature_detected!("xsave")),
        ];
        match features.iter().find(|(_, has)| !has) {
            Some((feature, _)) => Err(AotError::MissingCpuFeature { feature }),
            None => Ok(()),
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        Err(AotError::UnsupportedHost {
            host: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        })
    }
}

/// Pins `config`'s code generation to [`TARGET`] and [`ISA_FLAGS`] (see the
/// crate docs), after [`check_cpu`].
pub fn pin_code_generation(config: &mut wasmtime::Config) -> Result<(), AotError> {
    check_cpu()?;
    config
        .target(TARGET)
        .map_err(|e| AotError::UnsupportedHost {
            host: format!("{TARGET} rejected by wasmtime: {e}"),
        })?;
    for flag in ISA_FLAGS {
        // SAFETY: each name is one of Cranelift's x86 ISA flags (cranelift-codegen's
        // `isa/x86` settings), a boolean CPU-feature switch. wasmtime validates the name
        // when the engine is built, and refuses to run code that uses a feature the
        // running CPU lacks (checked above too), so no flag here can produce code this
        // machine executes wrongly.
        #[allow(unsafe_code)]
        unsafe {
            config.cranelift_flag_enable(flag);
        }
    }
    Ok(())
}

/// A directory of precompiled artifacts that is part of the measured CVM
/// image.
///
/// Constructing one is the claim that makes [`load_precompiled`] safe: the
/// directory's files are covered by the launch measurement (they are in the
/// initramfs) and nothing writes them while the host runs. The host builds one
/// only from its `--precompiled` command-line option, which in the CVM comes
/// from `cloister-init`'s measured configuration. Do not build one from a path
/// that anything outside the measurement can write: its files would run as
/// native code in the host.
#[derive(Debug, Clone)]
pub struct MeasuredDir {
    path: PathBuf,
}

impl MeasuredDir {
    /// See the type's docs for what this claims.
    pub fn new(path: impl Into<PathBuf>) -> MeasuredDir {
        MeasuredDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the artifact of the component with this SHA-256 is.
    pub fn artifact(&self, component_sha256_hex: &str) -> Result<PathBuf, AotError> {
        if component_sha256_hex.len() != 64
            || !component_sha256_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(AotError::BadDigest(component_sha256_hex.to_owned()));
        }
        Ok(self.path.join(artifact_name(component_sha256_hex)))
    }
}

/// Loads the precompiled artifact of the component whose verified SHA-256 is
/// `component_sha256_hex` from `dir`, memory-mapped (its data segments serve
/// as copy-on-write memory images straight from the file).
///
/// The caller must have verified the component's signature and hash, and
/// must still check the loaded component's imports as it would for a
/// compiled one.
pub fn load_precompiled(
    engine: &wasmtime::Engine,
    dir: &MeasuredDir,
    component_sha256_hex: &str,
) -> Result<wasmtime::component::Component, AotError> {
    let path = dir.artifact(component_sha256_hex)?;
    // Open first, for an error that says "missing" rather than wasmtime's.
    std::fs::File::open(&path).map_err(|e| AotError::Missing {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    // SAFETY: `dir` is a `MeasuredDir`: its files are part of the measured image and
    // nothing writes them while the host runs (see the crate docs), so the artifact is
    // one `cloister-host precompile` made from the component whose hash names it, and it
    // stays unchanged for the life of the mapping. wasmtime still checks its header,
    // version, target, flags, limits and features against this engine.
    #[allow(unsafe_code)]
    let loaded = unsafe { wasmtime::component::Component::deserialize_file(engine, &path) };
    loaded.map_err(|e| AotError::Refused {
        path,
        reason: format!("{e:#}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_are_named_by_a_well_formed_digest_only() {
        let dir = MeasuredDir::new("/usr/lib/cloister/precompiled");
        let h = "ab".repeat(32);
        assert_eq!(
            dir.artifact(&h).unwrap(),
            Path::new("/usr/lib/cloister/precompiled").join(format!("{h}.cwasm"))
        );
        for bad in [
            "../../etc/passwd".to_owned(),
            "AB".repeat(32),
            "ab".repeat(31),
            format!("{}/x", "a".repeat(62)),
            String::new(),
        ] {
            assert!(
                matches!(dir.artifact(&bad), Err(AotError::BadDigest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn pinned_code_generation_builds_an_engine_here() {
        // CI machines and every SEV-SNP host have x86-64-v3.
        let mut config = wasmtime::Config::new();
        pin_code_generation(&mut config).unwrap();
        wasmtime::Engine::new(&config).unwrap();
    }
}
