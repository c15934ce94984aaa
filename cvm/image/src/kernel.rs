//! The pinned kernel: a Debian `linux-image-*-cloud-amd64` package, taken apart in
//! memory. A `.deb` is an `ar` archive whose `data.tar.xz` holds `boot/vmlinuz-*` and the
//! modules as `.ko.xz`; the modules are decompressed here, at build time, so that the
//! guest's init loads plain `.ko` files (the module signatures, appended to the
//! uncompressed bytes, are kept).
//!
//! Pure: package bytes in, kernel and modules out. Fetching and caching the package is
//! [`crate::build`]'s job.

use std::collections::BTreeMap;
use std::io::Read;

/// Why the kernel package cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// Not a Debian package, or one without `data.tar.xz`.
    #[error("the kernel package is not a Debian package with data.tar.xz: {0}")]
    NotADeb(String),
    /// The data archive is damaged.
    #[error("the kernel package's data.tar.xz cannot be read: {0}")]
    Data(String),
    /// A file the recipe names is not in the package.
    #[error("the kernel package has no {0}")]
    Missing(String),
    /// A module cannot be decompressed.
    #[error("the module {0} cannot be decompressed: {1}")]
    Module(String, String),
}

/// What the image takes from the package.
#[derive(Debug, Clone)]
pub struct KernelParts {
    /// The kernel (bzImage).
    pub vmlinuz: Vec<u8>,
    /// Each requested module, by its path in the package (`.ko.xz`), decompressed.
    pub modules: Vec<(String, Vec<u8>)>,
}

/// Limits against a hostile or damaged package: no file we take is near these.
const MAX_FILE: u64 = 256 << 20;

/// Takes `vmlinuz` (a path in the package, e.g. `boot/vmlinuz-6.12…`) and `modules` (paths
/// of `.ko.xz` files) out of the package bytes.
pub fn extract(deb: &[u8], vmlinuz: &str, modules: &[String]) -> Result<KernelParts, KernelError> {
    let mut archive = ar::Archive::new(deb);
    let mut data_xz = None;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| KernelError::NotADeb(e.to_string()))?;
        if entry.header().identifier() == b"data.tar.xz" {
            let mut bytes = Vec::new();
            entry
                .by_ref()
                .take(MAX_FILE)
                .read_to_end(&mut bytes)
                .map_err(|e| KernelError::NotADeb(e.to_string()))?;
            data_xz = Some(bytes);
            break;
        }
    }
    let data_xz = data_xz.ok_or_else(|| KernelError::NotADeb("no data.tar.xz member".into()))?;
    let mut wanted: BTreeMap<String, Option<Vec<u8>>> = modules
        .iter()
        .map(|m| (m.clone(), None))
        .chain([(vmlinuz.to_owned(), None)])
        .collect();
    let mut tar = tar::Archive::new(xz2::read::XzDecoder::new(&data_xz[..]));
    for entry in tar
        .entries()
        .map_err(|e| KernelError::Data(e.to_string()))?
    {
        let mut entry = entry.map_err(|e| KernelError::Data(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| KernelError::Data(e.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if let Some(slot) = wanted.get_mut(&path) {
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(KernelError::Data(format!("{path} is not a regular file")));
            }
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_FILE)
                .read_to_end(&mut bytes)
                .map_err(|e| KernelError::Data(e.to_string()))?;
            *slot = Some(bytes);
        }
    }
    let mut take = |p: &str| -> Result<Vec<u8>, KernelError> {
        wanted
            .get_mut(p)
            .and_then(Option::take)
            .ok_or_else(|| KernelError::Missing(p.to_owned()))
    };
    let vmlinuz_bytes = take(vmlinuz)?;
    let mut out = Vec::new();
    for m in modules {
        let compressed = take(m)?;
        let mut ko = Vec::new();
        xz2::read::XzDecoder::new(&compressed[..])
            .take(MAX_FILE)
            .read_to_end(&mut ko)
            .map_err(|e| KernelError::Module(m.clone(), e.to_string()))?;
        if !ko.starts_with(b"\x7fELF") {
            return Err(KernelError::Module(m.clone(), "not an ELF object".into()));
        }
        out.push((m.clone(), ko));
    }
    Ok(KernelParts {
        vmlinuz: vmlinuz_bytes,
        modules: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_package_is_refused_without_panic() {
        for bytes in [&b""[..], b"!<arch>\n", b"\x7fELF", &[0xff; 200]] {
            assert!(extract(bytes, "boot/vmlinuz", &[]).is_err());
        }
    }
}
