use super::*;

fn entry(kind: EntryKind, name: &str, fill: char, signer: Option<char>) -> Entry {
    Entry {
        kind,
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        sha256: fill.to_string().repeat(64),
        signer_key_id: signer.map(|c| c.to_string().repeat(64)),
    }
}

fn sample() -> Vec<Entry> {
    vec![
        entry(EntryKind::Model, "llama-3.2-1b", 'a', None),
        entry(EntryKind::Plugin, "summarize", 'b', Some('c')),
    ]
}

fn log_of(entries: Vec<Entry>) -> Result<MeasurementLog, LogError> {
    let mut log = MeasurementLog::new();
    for e in entries {
        log.push(e)?;
    }
    Ok(log)
}

#[test]
fn empty_log_constant_is_canonical() -> Result<(), LogError> {
    assert_eq!(encode(&[])?, EMPTY_LOG);
    let log = MeasurementLog::new();
    assert_eq!(log.canonical_bytes(), EMPTY_LOG);
    assert_eq!(MeasurementLog::from_canonical_bytes(EMPTY_LOG)?, log);
    // SHA-256 of the empty-log bytes, computed independently (sha256sum).
    assert_eq!(
        log.digest_hex(),
        "2d781560f19d55830e852de56129b1bc7370dfcff938a3a5e0f39429ad6e94d8"
    );
    Ok(())
}

#[test]
fn jcs_literal() -> Result<(), LogError> {
    let log = log_of(sample())?;
    let expected = format!(
        concat!(
            r#"{{"entries":["#,
            r#"{{"kind":"model","name":"llama-3.2-1b","sha256":"{a}","signer_key_id":null,"version":"1.0.0"}},"#,
            r#"{{"kind":"plugin","name":"summarize","sha256":"{b}","signer_key_id":"{c}","version":"1.0.0"}}"#,
            r#"],"format":"cloister-measurement-log/v1"}}"#
        ),
        a = "a".repeat(64),
        b = "b".repeat(64),
        c = "c".repeat(64),
    );
    assert_eq!(String::from_utf8_lossy(&log.canonical_bytes()), expected);
    assert_eq!(
        log.digest(),
        <[u8; 32]>::from(Sha256::digest(expected.as_bytes()))
    );
    assert_eq!(
        log.digest_hex(),
        hex::encode(Sha256::digest(expected.as_bytes()))
    );
    Ok(())
}

#[test]
fn jcs_string_escaping() -> Result<(), LogError> {
    let mut e = entry(EntryKind::Plugin, "a\"b\\c\u{1}\nd/é€😀", 'a', None);
    e.version = "\u{7f}".to_owned();
    let log = log_of(vec![e])?;
    let text = String::from_utf8_lossy(&log.canonical_bytes()).into_owned();
    assert!(text.contains(r#""name":"a\"b\\c\u0001\nd/é€😀""#), "{text}");
    assert!(text.contains("\"version\":\"\u{7f}\""), "{text}");
    let parsed = MeasurementLog::from_canonical_bytes(&log.canonical_bytes())?;
    assert_eq!(parsed, log);
    Ok(())
}

#[test]
fn deterministic() -> Result<(), LogError> {
    let a = log_of(sample())?;
    let b = log_of(sample())?;
    assert_eq!(a.canonical_bytes(), b.canonical_bytes());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.digest_hex().len(), 64);
    Ok(())
}

type Mutation = Box<dyn Fn(&mut Vec<Entry>)>;

#[test]
fn any_change_changes_digest() -> Result<(), LogError> {
    let base = log_of(sample())?.digest();
    let mutations: Vec<Mutation> = vec![
        Box::new(|e| e[1].kind = EntryKind::Model),
        Box::new(|e| e[1].name.push('x')),
        Box::new(|e| e[1].version = "1.0.1".to_owned()),
        Box::new(|e| e[1].sha256 = "d".repeat(64)),
        Box::new(|e| e[1].signer_key_id = None),
        Box::new(|e| e[0].signer_key_id = Some("c".repeat(64))),
        Box::new(|e| e.swap(0, 1)),
        Box::new(|e| {
            e.pop();
        }),
        Box::new(|e| e.push(e[0].clone())),
    ];
    for (i, mutate) in mutations.iter().enumerate() {
        let mut entries = sample();
        mutate(&mut entries);
        assert_ne!(log_of(entries)?.digest(), base, "mutation {i}");
    }
    Ok(())
}

#[test]
fn round_trip() -> Result<(), LogError> {
    let log = log_of(sample())?;
    let parsed = MeasurementLog::from_canonical_bytes(&log.canonical_bytes())?;
    assert_eq!(parsed, log);
    assert_eq!(parsed.entries(), sample().as_slice());
    Ok(())
}

#[test]
fn non_canonical_rejected() -> Result<(), LogError> {
    let canonical = String::from_utf8_lossy(&log_of(sample())?.canonical_bytes()).into_owned();
    let variants = [
        format!("{canonical}\n"),
        format!(" {canonical}"),
        canonical.replacen(",", ", ", 1),
        canonical.replacen(":", " : ", 1),
        // Reordered top-level keys.
        format!(
            r#"{{"format":"cloister-measurement-log/v1",{}}}"#,
            &canonical[1..canonical.find(r#","format""#).unwrap_or(1)]
        ),
        // Reordered entry keys.
        canonical.replacen(
            r#""kind":"model","name":"llama-3.2-1b""#,
            r#""name":"llama-3.2-1b","kind":"model""#,
            1,
        ),
        // Gratuitous escape.
        canonical.replacen("llama", "\\u006clama", 1),
        // Missing signer_key_id member (would default to None).
        canonical.replacen(r#""signer_key_id":null,"#, "", 1),
    ];
    for v in variants {
        assert_ne!(v, canonical);
        match MeasurementLog::from_canonical_bytes(v.as_bytes()) {
            Err(LogError::NotCanonical { .. }) => {}
            other => panic!("expected NotCanonical for {v}, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn unknown_fields_rejected() -> Result<(), LogError> {
    let canonical = String::from_utf8_lossy(&log_of(sample())?.canonical_bytes()).into_owned();
    let top = canonical.replacen(r#""format""#, r#""extra":1,"format""#, 1);
    let inner = canonical.replacen(r#""kind":"model""#, r#""a":1,"kind":"model""#, 1);
    for v in [top, inner] {
        match MeasurementLog::from_canonical_bytes(v.as_bytes()) {
            Err(LogError::Malformed { reason }) => {
                assert!(reason.contains("unknown field"), "{reason}")
            }
            other => panic!("expected Malformed for {v}, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn wrong_format_and_garbage_rejected() {
    assert!(matches!(
        MeasurementLog::from_canonical_bytes(
            br#"{"entries":[],"format":"cloister-measurement-log/v2"}"#
        ),
        Err(LogError::WrongFormat { .. })
    ));
    for garbage in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"entries\":[]}",
        b"\xff",
    ] {
        assert!(matches!(
            MeasurementLog::from_canonical_bytes(garbage),
            Err(LogError::Malformed { .. })
        ));
    }
    let kind = br#"{"entries":[{"kind":"library","name":"x","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","signer_key_id":null,"version":"1"}],"format":"cloister-measurement-log/v1"}"#;
    assert!(matches!(
        MeasurementLog::from_canonical_bytes(kind),
        Err(LogError::Malformed { .. })
    ));
}

#[test]
fn push_validates() {
    let mut log = MeasurementLog::new();
    let bad = [
        Entry {
            name: String::new(),
            ..entry(EntryKind::Plugin, "x", 'a', None)
        },
        Entry {
            version: String::new(),
            ..entry(EntryKind::Plugin, "x", 'a', None)
        },
        Entry {
            sha256: "A".repeat(64),
            ..entry(EntryKind::Plugin, "x", 'a', None)
        },
        Entry {
            sha256: "a".repeat(63),
            ..entry(EntryKind::Plugin, "x", 'a', None)
        },
        Entry {
            sha256: "g".repeat(64),
            ..entry(EntryKind::Plugin, "x", 'a', None)
        },
        entry(EntryKind::Plugin, "x", 'a', Some('Z')),
        Entry {
            signer_key_id: Some("ab".to_owned()),
            ..entry(EntryKind::Plugin, "x", 'a', None)
        },
    ];
    for e in bad {
        assert!(
            matches!(
                log.push(e.clone()),
                Err(LogError::InvalidEntry { index: 0, .. })
            ),
            "{e:?}"
        );
    }
    assert_eq!(log, MeasurementLog::new());

    // Invalid entries are rejected when parsing too.
    let text = String::from_utf8_lossy(
        &log_of(vec![entry(EntryKind::Plugin, "x", 'a', None)])
            .map(|l| l.canonical_bytes())
            .unwrap_or_default(),
    )
    .replace(&"a".repeat(64), &"a".repeat(62));
    assert!(matches!(
        MeasurementLog::from_canonical_bytes(text.as_bytes()),
        Err(LogError::InvalidEntry { index: 0, .. })
    ));
}

#[test]
fn error_message_names_entry_and_field() {
    let mut log = MeasurementLog::new();
    let e = Entry {
        sha256: "xyz".to_owned(),
        ..entry(EntryKind::Plugin, "summarize", 'a', None)
    };
    match log.push(e) {
        Err(err) => assert_eq!(
            err.to_string(),
            r#"measurement log entry #0 ("summarize"): sha256 "xyz" is not 64 lowercase hex characters"#
        ),
        Ok(()) => panic!("invalid entry accepted"),
    }
}

#[test]
fn entry_kinds_print_and_parse_as_the_log_writes_them() {
    for kind in EntryKind::ALL {
        let json = serde_json::to_string(&kind).expect("serialize");
        assert_eq!(json, format!("\"{kind}\""));
        assert_eq!(kind.to_string().parse::<EntryKind>(), Ok(kind));
    }
    assert_eq!("plugin".parse::<EntryKind>(), Ok(EntryKind::Plugin));
    assert_eq!("model".parse::<EntryKind>(), Ok(EntryKind::Model));
    assert_eq!(format!("{:<7}|", EntryKind::Model), "model  |");
    for bad in ["Plugin", "", "plugins", " model"] {
        assert!(bad.parse::<EntryKind>().is_err(), "{bad:?}");
    }
    let long = "x".repeat(10_000);
    let err = long.parse::<EntryKind>().expect_err("unknown");
    assert!(
        err.to_string().len() < 200,
        "the error quotes a bounded prefix"
    );
}

/// Issue 11, class 7: a member given twice is refused, at either level.
#[test]
fn duplicate_members_rejected() -> Result<(), LogError> {
    let canonical = String::from_utf8_lossy(&log_of(sample())?.canonical_bytes()).into_owned();
    let top = canonical.replacen(r#""format""#, r#""entries":[],"format""#, 1);
    let inner = canonical.replacen(r#""kind":"model""#, r#""kind":"model","kind":"model""#, 1);
    for v in [top, inner] {
        assert!(
            MeasurementLog::from_canonical_bytes(v.as_bytes()).is_err(),
            "accepted {v}"
        );
    }
    Ok(())
}
