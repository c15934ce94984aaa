//! The import allow-list: what a plugin may import, checked at load.
//!
//! The check is a pure function over the component's import names so it can
//! be audited and tested on its own. The linker links exactly these
//! interfaces (see `runtime.rs`), so the list and the linker agree: what is not
//! listed is not linked and cannot be called.

/// Interfaces a plugin may import, without version. WASI interfaces are
/// accepted at any `0.2.x` version (the linker resolves them semver-compatibly);
/// Cloister interfaces must be `0.1.x`.
pub const ALLOWED_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    // Linked with an empty preopen set: a plugin can name these functions but
    // holds no directory descriptor to use them on.
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "cloister:feature/inference",
    "cloister:feature/types",
];

/// Why an import is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The interface is not on the allow-list (e.g. `wasi:sockets/tcp`).
    NotAllowed,
    /// The interface is allowed but not at this version.
    UnsupportedVersion,
    /// The import is not an interface of the form `ns:pkg/name@version`.
    Unversioned,
}

/// Checks one import name such as `wasi:io/streams@0.2.6`.
pub fn check_import(import: &str) -> Result<(), Refusal> {
    let (interface, version) = match import.split_once('@') {
        Some((i, v)) => (i, v),
        None => {
            return if ALLOWED_INTERFACES.contains(&import) {
                Err(Refusal::Unversioned)
            } else {
                Err(Refusal::NotAllowed)
            }
        }
    };
    if !ALLOWED_INTERFACES.contains(&interface) {
        return Err(Refusal::NotAllowed);
    }
    let wanted = if interface.starts_with("wasi:") {
        "0.2."
    } else {
        "0.1."
    };
    if version.starts_with(wanted) {
        Ok(())
    } else {
        Err(Refusal::UnsupportedVersion)
    }
}

/// Returns the first import of `imports` that is not allowed, with the reason.
pub fn first_refused<'a>(imports: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, Refusal)> {
    imports
        .into_iter()
        .find_map(|name| check_import(name).err().map(|r| (name, r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_imports_are_allowed() {
        for name in [
            "wasi:io/streams@0.2.6",
            "wasi:cli/environment@0.2.0",
            "wasi:filesystem/preopens@0.2.3",
            "cloister:feature/inference@0.1.0",
        ] {
            assert_eq!(check_import(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn network_and_unknown_imports_are_refused() {
        for name in [
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/ip-name-lookup@0.2.0",
            "wasi:http/outgoing-handler@0.2.0",
            "evil:exfil/leak@0.1.0",
            "wasi:io",
        ] {
            assert_eq!(check_import(name), Err(Refusal::NotAllowed), "{name}");
        }
    }

    #[test]
    fn versions_are_checked() {
        assert_eq!(
            check_import("wasi:io/streams@0.3.0"),
            Err(Refusal::UnsupportedVersion)
        );
        assert_eq!(
            check_import("cloister:feature/inference@0.2.0"),
            Err(Refusal::UnsupportedVersion)
        );
        assert_eq!(check_import("wasi:io/streams"), Err(Refusal::Unversioned));
    }

    #[test]
    fn first_refused_names_the_import() {
        let got = first_refused(["wasi:io/streams@0.2.6", "wasi:sockets/udp@0.2.6"]);
        assert_eq!(got, Some(("wasi:sockets/udp@0.2.6", Refusal::NotAllowed)));
    }
}
