//! The features end to end: the built `summarize` component, signed by a
//! fresh team key, loaded by a real `cloister-host serve` with the real model
//! (all-minilm-l6-v2 from the fetched data directory), called over the HTTP
//! API. These tests need the fetched model (`cloister models fetch`,
//! which scripts/test runs first) and fail, saying so, when it is absent.

use cloister_test_support::host::{Fixture, Server};
use cloister_test_support::MODEL;
use serde_json::{json, Value};
use std::time::Instant;

/// A deployment of the given feature plugins, each allowed the model.
fn deploy(plugins: &[&str]) -> Fixture {
    let f = Fixture::new(plugins);
    let with_model: Vec<(&str, Option<usize>)> = plugins.iter().map(|p| (*p, None)).collect();
    // The test host is a debug build: leave the model room.
    f.write_feature_config(&with_model, "deadline_ms = 20000\n", 1);
    f
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|i| i.as_u64().expect("an index") as usize)
        .collect()
}

#[test]
fn summarize_through_the_api() {
    let f = deploy(&["summarize"]);
    let server = Server::start(&f.config());

    let (status, body) = server.request("GET", "/v1/features", b"");
    assert_eq!(status, 200);
    let features = json(&body);
    assert_eq!(features["features"][0]["name"], "summarize");
    assert_eq!(features["features"][0]["models"], json!([MODEL]));

    let thread = json!({"messages": [
        {"sender": "irene", "text": "the office move is confirmed for march 3rd 📦", "time": "2025-02-10T09:00:00Z"},
        {"sender": "bruno", "text": "do we need to pack our own desks?"},
        {"sender": "irene", "text": "yes, crates arrive on the 28th, label them with your name and floor"},
        {"sender": "carla", "text": "lol ok"},
        {"sender": "bruno", "text": "> crates arrive on the 28th\nthe 28th is a friday, I'm out that day. can someone pack mine?"},
        {"sender": "carla", "text": "I can pack yours bruno 👍"},
        {"sender": "irene", "text": "IT will move the monitors and docks, don't unplug anything yourselves"},
        {"sender": "dev", "text": "the new parking passes are at https://intranet.example.com/parking, apply before march 1st"},
        {"sender": "carla", "text": "IT moves the monitors and docks, so don't unplug anything"},
        {"sender": "bruno", "text": "@irene is the kitchen on the new floor ready by then?"}
    ]});
    let n = thread["messages"].as_array().unwrap().len();
    let senders: Vec<&str> = thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sender"].as_str().unwrap())
        .collect();
    let started = Instant::now();
    let (status, body) = server.request(
        "POST",
        "/v1/features/summarize",
        thread.to_string().as_bytes(),
    );
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let out = json(&body);
    eprintln!("summarize over the API: {} ms, {body}", elapsed.as_millis());
    assert_eq!(out["model"], MODEL);

    let bullets = out["bullets"].as_array().expect("bullets");
    assert!((2..=6).contains(&bullets.len()), "{out}");
    let mut previous_first = None;
    for b in bullets {
        let text = b["text"].as_str().expect("text");
        assert!(!text.trim().is_empty());
        assert!(
            !text.starts_with('>'),
            "quoted text is not a bullet: {text}"
        );
        let cited = indices(&b["messages"]);
        assert!(!cited.is_empty() && cited.iter().all(|&i| i < n), "{b}");
        assert!(cited.windows(2).all(|w| w[0] < w[1]), "{b}");
        // The senders are exactly the senders of the cited messages.
        let mut expected: Vec<&str> = Vec::new();
        for &i in &cited {
            if !expected.contains(&senders[i]) {
                expected.push(senders[i]);
            }
        }
        assert_eq!(b["senders"], json!(expected), "{b}");
        // Chronological.
        assert!(previous_first < Some(cited[0]), "{out}");
        previous_first = Some(cited[0]);
    }
    // The near-duplicate about IT and the monitors is one bullet, by two people.
    let it: Vec<&Value> = bullets
        .iter()
        .filter(|b| {
            b["text"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("monitors")
        })
        .collect();
    assert!(it.len() <= 1, "{out}");
    if let Some(b) = it.first() {
        assert_eq!(b["messages"], json!([6, 8]), "{out}");
    }
    // The last question went unanswered; the one about packing did not.
    let open = out["open_questions"].as_array().expect("open_questions");
    let asked: Vec<usize> = open
        .iter()
        .map(|q| q["message"].as_u64().unwrap() as usize)
        .collect();
    assert!(asked.contains(&9), "{out}");
    assert!(!asked.contains(&4) && !asked.contains(&1), "{out}");
    let last = open.iter().find(|q| q["message"] == 9).unwrap();
    assert_eq!(
        (last["from"].as_str(), &last["to"]),
        (Some("bruno"), &json!(["irene"]))
    );

    // `since`: only the later messages, indices still the thread's.
    let mut later = thread.clone();
    later["options"] = json!({"since": 6, "length": "short"});
    let (status, body) = server.request(
        "POST",
        "/v1/features/summarize",
        later.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let out = json(&body);
    for b in out["bullets"].as_array().unwrap() {
        assert!(
            indices(&b["messages"]).iter().all(|&i| (6..n).contains(&i)),
            "{out}"
        );
    }

    // Empty and malformed input.
    let (status, body) = server.request("POST", "/v1/features/summarize", br#"{"messages":[]}"#);
    assert_eq!(
        (status, json(&body)),
        (
            200,
            json!({"bullets": [], "open_questions": [], "model": MODEL})
        )
    );
    let (status, body) = server.request(
        "POST",
        "/v1/features/summarize",
        br#"{"messages":[{"sender":"a","text":"hi"},{"sender":"b","text":42}]}"#,
    );
    assert_eq!(status, 400, "{body}");
    let err = json(&body);
    assert_eq!(err["error"]["code"], "invalid_input");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[1].text"),
        "{body}"
    );

    // The instance is fresh every time: the same request gives the same answer.
    let (_, a) = server.request(
        "POST",
        "/v1/features/summarize",
        thread.to_string().as_bytes(),
    );
    let (_, b) = server.request(
        "POST",
        "/v1/features/summarize",
        thread.to_string().as_bytes(),
    );
    assert_eq!(a, b);
}
