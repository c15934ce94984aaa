//! The in-toto Statement v1 carried in a release envelope.

use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::names::{validate_plugin_name, validate_version};
use crate::{PREDICATE_TYPE, STATEMENT_TYPE};

/// What a release statement asserts: component `name@version` has this SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatement {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// SHA-256 of the component bytes.
    pub sha256: [u8; 32],
}

impl ReleaseStatement {
    /// The subject name, `<plugin>@<version>`.
    pub fn subject_name(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The SHA-256 as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

#[derive(Serialize)]
struct StatementOut<'a> {
    #[serde(rename = "_type")]
    type_: &'a str,
    subject: [SubjectOut<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    predicate: Predicate,
}

#[derive(Serialize)]
struct SubjectOut<'a> {
    name: String,
    digest: DigestOut<'a>,
}

#[derive(Serialize)]
struct DigestOut<'a> {
    sha256: &'a str,
}

#[derive(Serialize, Deserialize)]
struct Predicate {
    plugin: String,
    version: String,
}

/// Only the type fields, checked before the rest is interpreted.
#[derive(Deserialize)]
struct StatementHeader {
    #[serde(rename = "_type")]
    type_: String,
    #[serde(rename = "predicateType")]
    predicate_type: String,
}

/// The full statement. Unknown fields are ignored, as in-toto requires.
#[derive(Deserialize)]
struct StatementIn {
    subject: Vec<SubjectIn>,
    predicate: Predicate,
}

#[derive(Deserialize)]
struct SubjectIn {
    name: String,
    digest: DigestIn,
}

/// Other digest algorithms may be present; only SHA-256 is used.
#[derive(Deserialize)]
struct DigestIn {
    sha256: String,
}

/// Serializes the statement for a release (name and version already validated).
pub(crate) fn encode_statement(
    name: &str,
    version: &str,
    sha256: &[u8; 32],
) -> Result<Vec<u8>, serde_json::Error> {
    let digest = hex::encode(sha256);
    let statement = StatementOut {
        type_: STATEMENT_TYPE,
        subject: [SubjectOut {
            name: format!("{name}@{version}"),
            digest: DigestOut { sha256: &digest },
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: Predicate {
            plugin: name.to_owned(),
            version: version.to_owned(),
        },
    };
    serde_json::to_vec(&statement)
}

/// Parses and checks a statement: types, exactly one well-formed subject,
/// predicate consistent with the subject, well-formed SHA-256.
pub(crate) fn parse_statement(payload: &[u8]) -> Result<ReleaseStatement, VerifyError> {
    let malformed = |reason: String| VerifyError::MalformedStatement { reason };

    let header: StatementHeader =
        serde_json::from_slice(payload).map_err(|e| malformed(e.to_string()))?;
    if header.type_ != STATEMENT_TYPE {
        return Err(VerifyError::WrongStatementType {
            expected: STATEMENT_TYPE.to_owned(),
            found: header.type_,
        });
    }
    if header.predicate_type != PREDICATE_TYPE {
        return Err(VerifyError::WrongPredicateType {
            expected: PREDICATE_TYPE.to_owned(),
            found: header.predicate_type,
        });
    }

    let statement: StatementIn =
        serde_json::from_slice(payload).map_err(|e| malformed(e.to_string()))?;
    let count = statement.subject.len();
    let subject = match <[SubjectIn; 1]>::try_from(statement.subject) {
        Ok([subject]) => subject,
        Err(_) => return Err(VerifyError::SubjectCount { count }),
    };

    let (name, version) = split_subject_name(&subject.name)?;

    let predicate = &statement.predicate;
    if predicate.plugin != name || predicate.version != version {
        return Err(VerifyError::PredicateMismatch {
            subject: subject.name,
            predicate: format!("{}@{}", predicate.plugin, predicate.version),
        });
    }

    let sha256 = parse_sha256_hex(&subject.digest.sha256).map_err(|reason| {
        malformed(format!(
            "subject digest sha256 {:?} {reason}",
            subject.digest.sha256
        ))
    })?;

    Ok(ReleaseStatement {
        name: name.to_owned(),
        version: version.to_owned(),
        sha256,
    })
}

fn split_subject_name(full: &str) -> Result<(&str, &str), VerifyError> {
    let bad = |reason: String| VerifyError::MalformedSubjectName {
        name: full.to_owned(),
        reason,
    };
    let (name, version) = full
        .split_once('@')
        .ok_or_else(|| bad("expected <plugin>@<version>, found no '@'".to_owned()))?;
    validate_plugin_name(name).map_err(|e| bad(e.to_string()))?;
    validate_version(version).map_err(|e| bad(e.to_string()))?;
    Ok((name, version))
}

fn parse_sha256_hex(s: &str) -> Result<[u8; 32], &'static str> {
    if s.len() != 64 {
        return Err("is not 64 hex characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("is not lowercase hex");
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| "is not lowercase hex")?;
    Ok(out)
}
