//! C2SP `tlog-policy` (<https://c2sp.org/tlog-policy>): which logs and witnesses a verifier
//! trusts, and the quorum of cosignatures a checkpoint needs.
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <name>...
//! quorum <name>|none
//! ```
//!
//! Lines may be indented; `#` starts a comment line; names must be defined before use; a
//! name is a member of a group at most once; exactly one quorum line. Limits: 32 logs, 32
//! witnesses and 32 groups (the spec's recommended minimum).

use cloister_display::Quoted;

use crate::note::{KeyType, VerifierKey};
use crate::TlogError;

/// The most logs, witnesses or groups one policy may define.
pub const MAX_PER_KIND: usize = 32;

/// A log the policy trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    /// Its key (type 0x01); the key name is the log's origin.
    pub key: VerifierKey,
    /// Where to reach it, if given.
    pub url: Option<String>,
}

/// A witness the policy knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    /// Its name in the policy.
    pub name: String,
    /// Its cosignature key (type 0x04).
    pub key: VerifierKey,
    /// Its submission prefix, if given.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    threshold: usize,
    members: Vec<Member>,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// `None` is `quorum none`.
    quorum: Option<Member>,
}

impl Policy {
    /// Parses a policy file.
    pub fn parse(text: &str) -> Result<Self, TlogError> {
        let bad = |n: usize, why: String| TlogError::Policy(format!("line {n}: {why}"));
        if let Some(at) = text
            .bytes()
            .position(|b| (b < 0x20 && b != b'\t' && b != b'\n') || b == 0x7f)
        {
            return Err(TlogError::Policy(format!("control character at byte {at}")));
        }
        let mut p = Policy {
            logs: Vec::new(),
            witnesses: Vec::new(),
            groups: Vec::new(),
            quorum: None,
        };
        let mut quorum_seen = false;
        for (i, raw) in text.split('\n').enumerate() {
            let n = i + 1;
            let words: Vec<&str> = raw.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let Some(first) = words.first() else { continue };
            if first.starts_with('#') {
                continue;
            }
            match *first {
                "log" => {
                    let (vkey, url) = match words.len() {
                        2 => (words[1], None),
                        3 => (words[1], Some(words[2].to_owned())),
                        _ => return Err(bad(n, "expected: log <vkey> [<url>]".into())),
                    };
                    let key = VerifierKey::parse(vkey).map_err(|e| bad(n, e.to_string()))?;
                    if key.kind() != KeyType::Ed25519 {
                        return Err(bad(
                            n,
                            "a log key must be an Ed25519 note key (type 0x01)".into(),
                        ));
                    }
                    if p.logs
                        .iter()
                        .any(|l| l.key.public_bytes() == key.public_bytes())
                    {
                        return Err(bad(n, "duplicate log key".into()));
                    }
                    if p.logs.len() == MAX_PER_KIND {
                        return Err(bad(n, format!("more than {MAX_PER_KIND} logs")));
                    }
                    p.logs.push(PolicyLog { key, url });
                }
                "witness" => {
                    let (name, vkey, url) = match words.len() {
                        3 => (words[1], words[2], None),
                        4 => (words[1], words[2], Some(words[3].to_owned())),
                        _ => return Err(bad(n, "expected: witness <name> <vkey> [<url>]".into())),
                    };
                    p.check_new_name(name).map_err(|e| bad(n, e))?;
                    let key = VerifierKey::parse(vkey).map_err(|e| bad(n, e.to_string()))?;
                    if key.kind() != KeyType::Cosignature {
                        return Err(bad(
                            n,
                            "a witness key must be an Ed25519 cosignature key (type 0x04)".into(),
                        ));
                    }
                    if p.witnesses
                        .iter()
                        .any(|w| w.key.public_bytes() == key.public_bytes())
                    {
                        return Err(bad(n, "duplicate witness key".into()));
                    }
                    if p.witnesses.len() == MAX_PER_KIND {
                        return Err(bad(n, format!("more than {MAX_PER_KIND} witnesses")));
                    }
                    p.witnesses.push(PolicyWitness {
                        name: name.to_owned(),
                        key,
                        url,
                    });
                }
                "group" => {
                    if words.len() < 4 {
                        return Err(bad(
                            n,
                            "expected: group <name> all|any|<k> <name>...".into(),
                        ));
                    }
                    let name = words[1];
                    p.check_new_name(name).map_err(|e| bad(n, e))?;
                    let mut members = Vec::new();
                    for m in &words[3..] {
                        let member = p.lookup(m).map_err(|e| bad(n, e))?;
                        if members.contains(&member) {
                            return Err(bad(n, format!("{} is listed twice", Quoted(m))));
                        }
                        members.push(member);
                    }
                    let threshold = match words[2] {
                        "all" => members.len(),
                        "any" => 1,
                        k => {
                            let k =
                                crate::checkpoint::parse_decimal(k, "threshold").map_err(|_| {
                                    bad(n, "the threshold is all, any or a decimal".into())
                                })?;
                            if k == 0 || k > members.len() as u64 {
                                return Err(bad(
                                    n,
                                    format!(
                                        "threshold {k} is not between 1 and the {} members",
                                        members.len()
                                    ),
                                ));
                            }
                            k as usize
                        }
                    };
                    if p.groups.len() == MAX_PER_KIND {
                        return Err(bad(n, format!("more than {MAX_PER_KIND} groups")));
                    }
                    p.groups.push(Group {
                        name: name.to_owned(),
                        threshold,
                        members,
                    });
                }
                "quorum" => {
                    if words.len() != 2 {
                        return Err(bad(n, "expected: quorum <name>".into()));
                    }
                    if quorum_seen {
                        return Err(bad(n, "a second quorum line".into()));
                    }
                    quorum_seen = true;
                    p.quorum = if words[1] == "none" {
                        None
                    } else {
                        Some(p.lookup(words[1]).map_err(|e| bad(n, e))?)
                    };
                }
                other => {
                    return Err(bad(n, format!("unknown keyword {}", Quoted(other))));
                }
            }
        }
        if !quorum_seen {
            return Err(TlogError::Policy("no quorum line".into()));
        }
        Ok(p)
    }

    fn check_new_name(&self, name: &str) -> Result<(), String> {
        if name == "none" {
            return Err("the name `none` is reserved".into());
        }
        if self.witnesses.iter().any(|w| w.name == name)
            || self.groups.iter().any(|g| g.name == name)
        {
            return Err(format!("{} is defined twice", Quoted(name)));
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> Result<Member, String> {
        if let Some(i) = self.witnesses.iter().position(|w| w.name == name) {
            return Ok(Member::Witness(i));
        }
        if let Some(i) = self.groups.iter().position(|g| g.name == name) {
            return Ok(Member::Group(i));
        }
        Err(format!(
            "{} is not defined on an earlier line",
            Quoted(name)
        ))
    }

    /// The trusted logs.
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The known witnesses.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The log key for `origin`, if the policy trusts one.
    pub fn log_keys_for(&self, origin: &str) -> Vec<VerifierKey> {
        self.logs
            .iter()
            .filter(|l| l.key.name() == origin)
            .map(|l| l.key.clone())
            .collect()
    }

    /// Whether the witnesses at `cosigned` (indexes into [`Policy::witnesses`]) satisfy the
    /// quorum.
    pub fn quorum_met(&self, cosigned: &[usize]) -> bool {
        match &self.quorum {
            None => true,
            Some(m) => self.member_met(m, cosigned),
        }
    }

    /// Whether the policy asks for no cosignature at all (`quorum none`).
    pub fn quorum_is_none(&self) -> bool {
        self.quorum.is_none()
    }

    fn member_met(&self, m: &Member, cosigned: &[usize]) -> bool {
        match m {
            Member::Witness(i) => cosigned.contains(i),
            Member::Group(g) => {
                let g = &self.groups[*g];
                g.members
                    .iter()
                    .filter(|m| self.member_met(m, cosigned))
                    .count()
                    >= g.threshold
            }
        }
    }

    /// The policy's text form (keys and URLs; groups and quorum by name).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for l in &self.logs {
            s.push_str(&format!("log {}", l.key.to_vkey()));
            if let Some(u) = &l.url {
                s.push_str(&format!(" {u}"));
            }
            s.push('\n');
        }
        for w in &self.witnesses {
            s.push_str(&format!("witness {} {}", w.name, w.key.to_vkey()));
            if let Some(u) = &w.url {
                s.push_str(&format!(" {u}"));
            }
            s.push('\n');
        }
        let name = |m: &Member| match m {
            Member::Witness(i) => self.witnesses[*i].name.clone(),
            Member::Group(i) => self.groups[*i].name.clone(),
        };
        for g in &self.groups {
            let members: Vec<String> = g.members.iter().map(name).collect();
            s.push_str(&format!(
                "group {} {} {}\n",
                g.name,
                g.threshold,
                members.join(" ")
            ));
        }
        match &self.quorum {
            None => s.push_str("quorum none\n"),
            Some(m) => s.push_str(&format!("quorum {}\n", name(m))),
        }
        s
    }
}
