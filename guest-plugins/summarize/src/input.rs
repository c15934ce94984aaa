//! The request: parsed by hand from a `serde_json::Value` so that every
//! error names the field that is wrong (and never echoes its content).

use serde_json::Value;

/// Messages per request at most (the host also bounds the input's bytes).
pub const MAX_MESSAGES: usize = 5000;
/// Bullets a client may ask for at most.
pub const MAX_BULLETS: usize = 20;

/// One chat message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who wrote it.
    pub sender: String,
    /// What they wrote.
    pub text: String,
}

/// How long the summary should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// About `0.9·√n` bullets, at most 5, one of them the thread's outcome
    /// (a decision or a result) when it has one.
    Short,
    /// About `1.5·√n` bullets, at most 10 (the default).
    Medium,
    /// About `2·√n` bullets, at most 16.
    Long,
    /// At most this many bullets.
    Bullets(usize),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The whole thread, in chronological order.
    pub messages: Vec<Message>,
    /// Summary length.
    pub length: Length,
    /// Summarize messages from this index on (earlier ones are context only).
    pub since: usize,
}

/// Parses the JSON request. Accepted shapes:
///
/// * `{"messages": [...], "options": {"length": ..., "since": ...}}`
/// * `{"messages": [...], "length": ..., "since": ...}`
/// * `[...]` (just the messages)
///
/// Each message is `{"sender": string, "text": string, "time"?: string | number}`.
pub fn parse(input: &str) -> Result<Request, String> {
    let value: Value = serde_json::from_str(input).map_err(|e| {
        format!(
            "the input is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let (messages, options) = match &value {
        Value::Array(items) => (items, None),
        Value::Object(map) => {
            let messages = match map.get("messages") {
                Some(Value::Array(items)) => items,
                Some(_) => return Err("`messages` must be an array of messages".into()),
                None => {
                    return Err(
                        "missing field `messages` (an array of {sender, text, time?})".into(),
                    )
                }
            };
            let options = match map.get("options") {
                None | Some(Value::Null) => {
                    known_members(map, &["messages", "options", "length", "since"], "")?;
                    Some(map)
                }
                Some(Value::Object(o)) => {
                    known_members(map, &["messages", "options"], "")?;
                    known_members(o, &["length", "since"], "options.")?;
                    Some(o)
                }
                Some(_) => return Err("`options` must be an object".into()),
            };
            (messages, options)
        }
        _ => {
            return Err(
                "the input must be an object with `messages`, or an array of messages".into(),
            )
        }
    };
    if messages.len() > MAX_MESSAGES {
        return Err(format!(
            "`messages` has {} entries; at most {MAX_MESSAGES} are accepted",
            messages.len()
        ));
    }
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| parse_message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let field = |name: &str| options.and_then(|o| o.get(name)).filter(|v| !v.is_null());
    let prefix = if matches!(&value, Value::Object(m) if m.get("options").is_some_and(Value::is_object))
    {
        "options."
    } else {
        ""
    };
    let length = match field("length") {
        None => Length::Medium,
        Some(Value::String(s)) => match s.as_str() {
            "short" => Length::Short,
            "medium" => Length::Medium,
            "long" => Length::Long,
            _ => {
                return Err(format!(
                "`{prefix}length` must be \"short\", \"medium\", \"long\" or a number of bullets"
            ))
            }
        },
        Some(Value::Number(n)) => match n.as_u64() {
            Some(k) if (1..=MAX_BULLETS as u64).contains(&k) => Length::Bullets(k as usize),
            _ => {
                return Err(format!(
                    "`{prefix}length` as a number must be an integer from 1 to {MAX_BULLETS}"
                ))
            }
        },
        Some(_) => {
            return Err(format!(
                "`{prefix}length` must be \"short\", \"medium\", \"long\" or a number of bullets"
            ))
        }
    };
    let since = match field("since") {
        None => 0,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if s as usize <= messages.len() => s as usize,
            Some(_) => {
                return Err(format!(
                    "`{prefix}since` is past the end of the thread ({} messages)",
                    messages.len()
                ))
            }
            None => {
                return Err(format!(
                    "`{prefix}since` must be a non-negative integer (a message index)"
                ))
            }
        },
        Some(_) => {
            return Err(format!(
                "`{prefix}since` must be a non-negative integer (a message index)"
            ))
        }
    };
    Ok(Request {
        messages,
        length,
        since,
    })
}

fn parse_message(i: usize, m: &Value) -> Result<Message, String> {
    let Value::Object(map) = m else {
        return Err(format!(
            "`messages[{i}]` must be an object {{sender, text, time?}}"
        ));
    };
    known_members(map, &["sender", "text", "time"], &format!("messages[{i}]."))?;
    let sender = match map.get("sender") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(format!("`messages[{i}].sender` must be a string")),
        None => return Err(format!("`messages[{i}].sender` is missing")),
    };
    if sender.is_empty() {
        return Err(format!("`messages[{i}].sender` is empty"));
    }
    if sender.chars().count() > 200 {
        return Err(format!(
            "`messages[{i}].sender` is longer than 200 characters"
        ));
    }
    let text = match map.get("text") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(format!("`messages[{i}].text` must be a string")),
        None => return Err(format!("`messages[{i}].text` is missing")),
    };
    match map.get("time") {
        None | Some(Value::Null | Value::String(_) | Value::Number(_)) => {}
        Some(_) => return Err(format!("`messages[{i}].time` must be a string or a number")),
    }
    Ok(Message { sender, text })
}

/// Refuses a member that is not one of `known` (a misspelled option must not
/// silently fall back to the default), suggesting the nearest known name.
/// The name is quoted escaped and cut to 40 characters.
fn known_members(
    map: &serde_json::Map<String, Value>,
    known: &[&str],
    prefix: &str,
) -> Result<(), String> {
    let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    let shown: String = unknown.chars().take(40).collect();
    let more = if shown.len() < unknown.len() {
        "…"
    } else {
        ""
    };
    let hint = known
        .iter()
        .filter(|k| edit_distance(k, unknown) <= 2)
        .min_by_key(|k| edit_distance(k, unknown))
        .map(|k| format!(": did you mean `{prefix}{k}`?"))
        .unwrap_or_else(|| {
            let names: Vec<String> = known.iter().map(|k| format!("`{prefix}{k}`")).collect();
            format!(" (known: {})", names.join(", "))
        });
    Err(format!("unknown field {prefix}{shown:?}{more}{hint}"))
}

/// Levenshtein distance, counted in characters; stops early past 3 (only
/// small distances matter here).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().take(a.len() + 4).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15, item 4: a misspelled option is a clear error, not the default.
    #[test]
    fn unknown_fields_are_refused_with_a_suggestion() {
        for (input, want) in [
            (
                r#"{"messages":[],"options":{"lenght":"short"}}"#,
                r#"unknown field options."lenght": did you mean `options.length`?"#,
            ),
            (
                r#"{"messages":[],"lenght":2}"#,
                r#"unknown field "lenght": did you mean `length`?"#,
            ),
            (
                r#"{"messages":[],"options":{"length":"short"},"since":1}"#,
                r#"unknown field "since" (known: `messages`, `options`)"#,
            ),
            (
                r#"{"messages":[{"sender":"a","text":"hi","tiem":1}]}"#,
                r#"unknown field messages[0]."tiem": did you mean `messages[0].time`?"#,
            ),
        ] {
            assert_eq!(parse(input).unwrap_err(), want, "{input}");
        }
        let long = format!(r#"{{"messages":[],"{}":1}}"#, "x".repeat(10_000));
        let err = parse(&long).unwrap_err();
        assert!(err.len() < 200 && !err.contains('\u{1b}'), "{err}");
        assert_eq!(edit_distance("length", "lenght"), 2);
        assert_eq!(edit_distance("since", "snice"), 2);
    }

    #[test]
    fn shapes() {
        let r = parse(r#"{"messages":[{"sender":"a","text":"hi","time":"2025-01-01T10:00:00Z"}],"options":{"length":"short","since":1}}"#).unwrap();
        assert_eq!(r.length, Length::Short);
        assert_eq!(r.since, 1);
        let r = parse(r#"{"messages":[{"sender":"a","text":"hi","time":12}],"length":3}"#).unwrap();
        assert_eq!(r.length, Length::Bullets(3));
        let r = parse(r#"[{"sender":"a","text":"hi"}]"#).unwrap();
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.length, Length::Medium);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("nope", "not valid JSON"),
            ("42", "must be an object"),
            ("{}", "missing field `messages`"),
            (r#"{"messages":{}}"#, "`messages` must be an array"),
            (r#"{"messages":[1]}"#, "`messages[0]` must be an object"),
            (
                r#"{"messages":[{"sender":"a","text":"x"},{"text":"x"}]}"#,
                "`messages[1].sender` is missing",
            ),
            (
                r#"{"messages":[{"sender":"a","text":5}]}"#,
                "`messages[0].text` must be a string",
            ),
            (
                r#"{"messages":[{"sender":" ","text":"x"}]}"#,
                "`messages[0].sender` is empty",
            ),
            (
                r#"{"messages":[{"sender":"a","text":"x","time":[]}]}"#,
                "`messages[0].time`",
            ),
            (
                r#"{"messages":[],"options":{"length":"huge"}}"#,
                "`options.length`",
            ),
            (
                r#"{"messages":[],"options":{"length":0}}"#,
                "`options.length`",
            ),
            (
                r#"{"messages":[],"options":{"since":-1}}"#,
                "`options.since`",
            ),
            (r#"{"messages":[],"since":2}"#, "`since` is past the end"),
            (
                r#"{"messages":[],"options":7}"#,
                "`options` must be an object",
            ),
        ];
        for (input, want) in cases {
            let err = parse(input).unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn errors_do_not_echo_content() {
        let err = parse(
            r#"{"messages":[{"sender":"a","text":"secret"}],"options":{"length":"secret-value"}}"#,
        )
        .unwrap_err();
        assert!(!err.contains("secret"));
    }
}
