//! Validation of plugin names and versions.

use crate::error::NameError;

/// Longest allowed plugin name, in bytes.
const MAX_NAME_LEN: usize = 63;
/// Longest allowed version, in bytes.
const MAX_VERSION_LEN: usize = 64;

/// Checks a plugin name against `^[a-z0-9][a-z0-9-]{0,62}$`.
pub fn validate_plugin_name(name: &str) -> Result<(), NameError> {
    let invalid = |reason: &str| NameError::InvalidPluginName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let first = name.bytes().next().ok_or_else(|| invalid("it is empty"))?;
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("it is longer than 63 characters"));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(invalid(
            "it must start with a lowercase ASCII letter or a digit",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            "only lowercase ASCII letters, digits and '-' are allowed",
        ));
    }
    Ok(())
}

/// Checks a plugin version: 1 to 64 characters from `[0-9A-Za-z.+-]`.
pub fn validate_version(version: &str) -> Result<(), NameError> {
    let invalid = |reason: &str| NameError::InvalidVersion {
        version: version.to_owned(),
        reason: reason.to_owned(),
    };
    if version.is_empty() {
        return Err(invalid("it is empty"));
    }
    if version.len() > MAX_VERSION_LEN {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
    {
        return Err(invalid(
            "only ASCII letters, digits, '.', '+' and '-' are allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        for ok in ["a", "0", "summarize", "text-to-speech-2", &"a".repeat(63)] {
            assert!(validate_plugin_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "sum marize",
            "sum_marize",
            "sum@1",
            "é",
            &"a".repeat(64),
        ] {
            assert!(validate_plugin_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        for ok in ["1", "1.0.0", "1.0.0-rc.1+build.5", "V2", &"1".repeat(64)] {
            assert!(validate_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1 0", "1/0", "1@2", "1_0", &"1".repeat(65)] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
    }
}
