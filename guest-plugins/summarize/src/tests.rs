//! Mechanics tests with a small deterministic embedder (feature hashing of
//! words). Quality is measured with the real model only, by `cloister-eval`.

use super::*;
use serde_json::Value;

/// Bag-of-words feature hashing of the content words into 4096 dimensions (few collisions),
/// L2-normalised: texts sharing content words are similar, identical texts
/// have cosine 1, and texts sharing only function words are about as far
/// apart as the real model puts unrelated chat (cosine near 0).
#[derive(Default)]
struct HashEmbed {
    calls: usize,
    texts: usize,
}

impl Embed for HashEmbed {
    fn embed(&mut self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        assert_eq!(model, MODEL);
        assert!(texts.len() <= MAX_TEXTS_PER_CALL);
        assert!(!texts.is_empty(), "no empty batches");
        self.calls += 1;
        self.texts += texts.len();
        Ok(texts.iter().map(|t| hash_vec(t)).collect())
    }
}

const DIM: usize = 4096;

fn hash_vec(t: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    for w in t
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !text::is_stopword(w))
    {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in w.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        v[(h % DIM as u64) as usize] += 1.0;
    }
    v[DIM - 1] += 0.1; // never all zeros
    rank::normalize(&mut v);
    v
}

fn run(input: &str) -> (Value, HashEmbed) {
    let mut e = HashEmbed::default();
    let out = handle(input, &mut e).expect("summary");
    (serde_json::from_str(&out).expect("JSON output"), e)
}

fn thread(msgs: &[(&str, &str)]) -> String {
    let messages: Vec<Value> = msgs
        .iter()
        .map(|(s, t)| serde_json::json!({"sender": s, "text": t}))
        .collect();
    serde_json::json!({ "messages": messages }).to_string()
}

fn cited(v: &Value) -> Vec<usize> {
    let mut out: Vec<usize> = v["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| {
            b["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn empty_thread_makes_no_model_call() {
    let (v, e) = run(r#"{"messages":[]}"#);
    assert_eq!(e.calls, 0);
    assert_eq!(
        v,
        serde_json::json!({"bullets": [], "open_questions": [], "model": MODEL})
    );
    let (_, e) = run(
        &thread(&[("a", "hello there friends"), ("b", "the plan is set")])
            .replace("]}", "],\"options\":{\"since\":2}}"),
    );
    assert_eq!(e.calls, 0);
    // Only emoji and reactions with no words: nothing to embed either.
    let (v, e) = run(&thread(&[("a", "🎉🎉"), ("b", ":)"), ("c", "   ")]));
    assert_eq!(e.calls, 0);
    assert!(v["bullets"].as_array().unwrap().is_empty());
}

#[test]
fn one_and_two_message_threads() {
    let (v, e) = run(&thread(&[(
        "ana",
        "The release is moved to Friday because QA found a crash 🐛",
    )]));
    assert_eq!(e.calls, 1);
    assert_eq!(
        v["bullets"][0]["text"],
        "The release is moved to Friday because QA found a crash"
    );
    assert_eq!(v["bullets"][0]["senders"], serde_json::json!(["ana"]));
    assert_eq!(v["bullets"][0]["messages"], serde_json::json!([0]));

    let (v, _) = run(&thread(&[
        ("wei", "can you send me the slides from today's meeting?"),
        ("ada", "sent! check your inbox"),
    ]));
    assert_eq!(cited(&v), vec![0, 1]);
    assert!(v["open_questions"].as_array().unwrap().is_empty(), "{v}");

    // A lone reaction is not a key point.
    let (v, _) = run(&thread(&[("a", "lol ok")]));
    assert!(v["bullets"].as_array().unwrap().is_empty());
}

#[test]
fn one_embed_call_per_ordinary_request() {
    let msgs: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("user{}", i % 4),
                format!("point number {i} about topic {} with details", i % 7),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = msgs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (v, e) = run(&thread(&refs));
    assert_eq!(e.calls, 1);
    assert_eq!(e.texts, 40);
    let n = v["bullets"].as_array().unwrap().len();
    assert!((3..=10).contains(&n), "{n} bullets");
}

#[test]
fn long_threads_are_capped_and_chunked() {
    let msgs: Vec<(String, String)> = (0..1000)
        .map(|i| {
            (
                format!("u{}", i % 9),
                format!("message {i} says something about subject {} today", i % 13),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = msgs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (v, e) = run(&thread(&refs));
    assert_eq!(e.texts, MAX_EMBEDDED_SEGMENTS);
    assert_eq!(e.calls, 1);
    assert!(cited(&v).iter().all(|&i| i < 1000));
}

#[test]
fn batches_larger_than_the_host_cap_are_chunked() {
    let texts: Vec<String> = (0..10).map(|i| format!("text {i}")).collect();
    let mut e = HashEmbed::default();
    let vs = embed_in_batches(&mut e, &texts, 4).unwrap();
    assert_eq!((vs.len(), e.calls), (10, 3));
    assert!((rank::dot(&vs[7], &hash_vec("text 7")) - 1.0).abs() < 1e-5);
}

#[test]
fn near_duplicates_merge_senders_and_indices() {
    let (v, _) = run(&thread(&[
        ("maya", "we leave saturday at 2pm from the station"),
        ("jon", "I will bring the board games and snacks"),
        ("priya", "we leave saturday at 2pm from the station!"),
        ("leo", "the cabin has no towels so pack your own"),
    ]));
    let bullets = v["bullets"].as_array().unwrap();
    let merged = bullets
        .iter()
        .find(|b| b["text"].as_str().unwrap().contains("2pm"))
        .expect("the departure bullet");
    assert_eq!(merged["senders"], serde_json::json!(["maya", "priya"]));
    assert_eq!(merged["messages"], serde_json::json!([0, 2]));
    assert_eq!(
        bullets
            .iter()
            .filter(|b| b["text"].as_str().unwrap().contains("2pm"))
            .count(),
        1
    );
}

#[test]
fn bullets_are_chronological_and_respect_since() {
    let msgs = [
        ("a", "the database migration starts monday morning"),
        ("b", "marketing wants the banner copy by wednesday"),
        ("c", "the office is closed on thursday for cleaning"),
        ("a", "payroll runs late this month because of the holiday"),
        ("b", "new laptops arrive next week for the design team"),
        ("c", "the quarterly review moved to the large meeting room"),
    ];
    let (v, _) = run(&thread(&msgs));
    let firsts: Vec<u64> = v["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["messages"][0].as_u64().unwrap())
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    let input = thread(&msgs).replace("]}", "],\"options\":{\"since\":3,\"length\":\"long\"}}");
    let (v, e) = run(&input);
    assert_eq!(e.texts, 3);
    assert_eq!(cited(&v), vec![3, 4, 5]);
}

#[test]
fn quoted_text_is_not_the_repliers_content() {
    let (v, _) = run(&thread(&[
        ("raj", "the billing migration PR is ready for review today"),
        ("kate", "> the billing migration PR is ready for review today\nit is three thousand lines, splitting it would help reviewers"),
    ]));
    let texts: Vec<&str> = v["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert!(texts.iter().all(|t| !t.starts_with('>')));
    let kate = v["bullets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["senders"] == serde_json::json!(["kate"]))
        .unwrap();
    assert!(!kate["text"].as_str().unwrap().contains("ready for review"));
}

#[test]
fn urls_and_emoji_in_bullets() {
    let (v, _) = run(&thread(&[(
        "hiro",
        "🚀 marketing copy is final, uploaded here https://drive.example.com/folders/launch-copy 🎉",
    )]));
    assert_eq!(
        v["bullets"][0]["text"],
        "marketing copy is final, uploaded here https://drive.example.com/folders/launch-copy"
    );
}

#[test]
fn open_questions_answered_or_not() {
    let (v, _) = run(&thread(&[
        ("jon", "how much is the house per night?"),
        ("maya", "it's 180 a night so 90 each for the house"),
        (
            "sara",
            "@tom can you also add an alert on connection count?",
        ),
        ("priya", "I'll bring snacks and the board games"),
        (
            "leo",
            "@maya do we need to bring towels or does the house have them?",
        ),
    ]));
    let open = v["open_questions"].as_array().unwrap();
    let idx: Vec<u64> = open
        .iter()
        .map(|o| o["message"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![2, 4], "{v}");
    assert_eq!(open[0]["to"], serde_json::json!(["tom"]));
    assert_eq!(open[0]["kind"], "request");
    assert_eq!(open[1]["to"], serde_json::json!(["maya"]));
    assert_eq!(open[1]["from"], "leo");
    assert_eq!(open[1]["kind"], "question");
}

#[test]
fn yes_or_no_opens_an_answer_to_a_yes_no_question() {
    // The hash embedder makes unrelated texts dissimilar, so only the
    // opening word can count the reply as an answer.
    let polar = |reply: &str| {
        let (v, _) = run(&thread(&[
            (
                "ines",
                "does the venue have a projector we can borrow for the talks?",
            ),
            ("marc", reply),
        ]));
        v["open_questions"].as_array().unwrap().len()
    };
    assert_eq!(
        polar("yes, two of them, ask reception at the front desk first"),
        0
    );
    assert_eq!(
        polar("nope, we bring our own from the office storage room"),
        0
    );
    assert_eq!(polar("the parking garage closes at nine so leave early"), 1);
    // An open question is not answered by "yes".
    let (v, _) = run(&thread(&[
        ("ines", "which room are the talks in on the second morning?"),
        (
            "marc",
            "yes, organisers emailed a final schedule yesterday evening",
        ),
    ]));
    assert_eq!(v["open_questions"].as_array().unwrap().len(), 1, "{v}");
}

/// Issue 15, item 3: a long thread is read from start to end, and the
/// output says how much of it was read.
#[test]
fn long_threads_are_read_across_and_say_so() {
    // Uniform scores: every window gets its share (192 / 16 = 12 each).
    let keep = crate::spread_pick(&vec![3; 2000], 192);
    assert_eq!(keep.iter().filter(|&&k| k).count(), 192);
    for w in 0..16 {
        let window = &keep[w * 125..(w + 1) * 125];
        assert_eq!(window.iter().filter(|&&k| k).count(), 12, "window {w}");
    }
    // Dense start, sparse end: the end is still read.
    let mut scores = vec![9; 500];
    scores.extend(vec![1; 1500]);
    let keep = crate::spread_pick(&scores, 192);
    assert!(keep[1000..].iter().filter(|&&k| k).count() >= 90);
    assert_eq!(crate::spread_pick(&[1, 2, 3], 192), vec![true; 3]);

    let lines: Vec<(String, String)> = (0..2000)
        .map(|i| {
            (
                format!("p{}", i % 7),
                format!(
                    "update {i}: the shipment for order {i} moved to dock {}",
                    i % 13
                ),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = lines
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (v, _) = run(&thread(&borrowed));
    assert_eq!(v["coverage"]["sentences"], 2000, "{}", v["coverage"]);
    assert_eq!(v["coverage"]["read"], crate::MAX_EMBEDDED_SEGMENTS);
    let short = run(&thread(&[("a", "the release moved to thursday")])).0;
    assert!(short.get("coverage").is_none(), "{short}");
}

/// Issue 15, item 2: answers longer than a few words close a question when
/// they take it up; an unrelated statement does not.
#[test]
fn longer_answers_that_take_the_question_up_close_it() {
    let open = |question: &str, reply: &str| {
        let (v, _) = run(&thread(&[("ana", question), ("ben", reply)]));
        v["open_questions"].as_array().unwrap().len()
    };
    assert_eq!(
        open(
            "Since when?",
            "Since the currency rounding change merged on Tuesday, all the totals are off by a cent"
        ),
        0
    );
    assert_eq!(
        open(
            "who has the contract?",
            "I have it, will scan it tomorrow and put it in the shared folder"
        ),
        0
    );
    assert_eq!(
        open(
            "did he say why",
            "he said it was because the supplier moved the delivery to next month"
        ),
        0
    );
    // Still open: an unrelated statement, and a question asked back.
    assert_eq!(
        open(
            "who has the contract?",
            "the parking garage closes at nine tonight so leave early please"
        ),
        1
    );
    assert_eq!(
        open(
            "who has the contract?",
            "which contract do you mean, the venue one or the catering one?"
        ),
        1
    );
}

#[test]
fn quoting_a_question_answers_it() {
    let (v, _) = run(&thread(&[
        ("omar", "who's running the backfill on prod?"),
        (
            "kate",
            "totally unrelated update on the roadmap document structure",
        ),
        (
            "raj",
            "the weather is nice for the offsite next month for sure",
        ),
        (
            "lena",
            "we finished the design review of the mobile app onboarding",
        ),
        ("raj", "> who's running the backfill on prod?\nme, tonight"),
    ]));
    assert!(v["open_questions"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn length_option_orders_bullet_counts() {
    let msgs: Vec<(String, String)> = (0..60)
        .map(|i| {
            (
                format!("p{}", i % 5),
                format!("item {i} concerns area {} and owner {}", i % 11, i % 3),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = msgs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let count = |opt: &str| {
        let input = thread(&refs).replace("]}", &format!("],\"options\":{{\"length\":{opt}}}}}"));
        run(&input).0["bullets"].as_array().unwrap().len()
    };
    let (s, m, l) = (count("\"short\""), count("\"medium\""), count("\"long\""));
    assert!(s < m && m < l, "{s} {m} {l}");
    assert!(count("3") <= 3);
    assert_eq!(bullet_count(Length::Medium, 1), 1);
    assert_eq!(bullet_count(Length::Medium, 3), 3);
    assert_eq!(bullet_count(Length::Short, 100), 5);
    assert_eq!(bullet_count(Length::Bullets(7), 4), 4);
}

struct Failing(&'static str);

impl Embed for Failing {
    fn embed(&mut self, _: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        match self.0 {
            "error" => Err("model not available: all-minilm-l6-v2".into()),
            "count" => Ok(vec![vec![1.0; 4]]),
            "nan" => Ok(texts.iter().map(|_| vec![f32::NAN; 4]).collect()),
            "dims" => Ok(texts
                .iter()
                .enumerate()
                .map(|(i, _)| vec![1.0; 4 + i])
                .collect()),
            _ => Ok(texts.iter().map(|_| Vec::new()).collect()),
        }
    }
}

#[test]
fn backend_failures_are_clean_errors() {
    let input = thread(&[
        ("a", "the launch moves to may twentieth"),
        ("b", "legal review is still pending"),
    ]);
    assert!(
        matches!(handle(&input, &mut Failing("error")), Err(Error::Inference(m)) if m.contains("not available"))
    );
    for mode in ["count", "nan", "dims", "empty"] {
        assert!(
            matches!(handle(&input, &mut Failing(mode)), Err(Error::Internal(_))),
            "{mode}"
        );
    }
}

#[test]
fn invalid_input_names_the_field() {
    let mut e = HashEmbed::default();
    match handle(
        r#"{"messages":[{"sender":"a","text":"x"},{"sender":"b"}]}"#,
        &mut e,
    ) {
        Err(Error::InvalidInput(m)) => assert!(m.contains("messages[1].text"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.calls, 0);
}

/// xorshift64*: deterministic pseudo-random inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "ok",
    "the",
    "plan",
    "is",
    "?",
    "!",
    ".",
    "...",
    "🎉",
    "👍🏽",
    "❤️",
    "👨‍👩‍👧",
    "🇫🇷",
    ":)",
    "<3",
    "\n",
    "\n> ",
    ">",
    "```",
    "```rust\n",
    "https://example.com/a?b=c",
    "www.x.org",
    "(https://y.io)",
    "@bob",
    "@",
    "@@",
    "bob,",
    "can you",
    "please",
    "who",
    "is",
    "there",
    "e.g.",
    "3.5",
    "14:05",
    "$12/mo",
    "#123",
    "\t",
    "\u{200D}",
    "\u{FE0F}",
    "\u{0301}",
    "\u{202E}",
    "\u{0000}",
    "\u{FFFF}",
    "日本語",
    "مرحبا",
    "ß",
    "İ",
    "ﬁ",
    "  ",
    "—",
    "…",
    "\"",
    "'",
    "\\",
    "a.b.c.",
    "J.",
    "1.",
    ",",
    "so",
    "but",
    "lmk",
    "u",
    "tmrw",
    "soooooo",
];

fn random_text(rng: &mut Rng) -> String {
    let n = (rng.next() % 40) as usize;
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(rng.pick(PIECES));
        if !rng.next().is_multiple_of(3) {
            s.push(' ');
        }
    }
    s
}

#[test]
fn never_panics_on_odd_inputs() {
    let fixed = [
        "", "null", "[]", "{}", "[[]]", "[null]", "\"x\"", "{\"messages\":null}", "{\"messages\":[{}]}",
        "{\"messages\":[{\"sender\":\"a\",\"text\":\"\"}]}", "{\"messages\":[{\"sender\":\"a\",\"text\":\"?\"}]}",
        "{\"messages\":[{\"sender\":\"a\",\"text\":\"x\"}],\"options\":{\"since\":1e400}}",
        "{\"messages\":[{\"sender\":\"a\",\"text\":\"x\"}],\"options\":{\"since\":18446744073709551616}}",
        "{\"messages\":[{\"sender\":\"a\",\"text\":\"x\"}],\"options\":{\"length\":2.5}}",
        "{\"messages\":[{\"sender\":\"a\",\"text\":\"x\"}],\"options\":{\"since\":1}}",
        "{\"messages\":[{\"sender\":\"a\",\"text\":\"```\\n>\\n```\"}]}",
    ];
    for input in fixed {
        let _ = handle(input, &mut HashEmbed::default());
    }
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for round in 0..400u32 {
        let n = (rng.next() % 12) as usize;
        let senders = ["bob", "Bob", "support_kim", "a b", "@x", "日本", "kim"];
        let msgs: Vec<(String, String)> = (0..n)
            .map(|_| (rng.pick(&senders).to_owned(), random_text(&mut rng)))
            .collect();
        let refs: Vec<(&str, &str)> = msgs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut input = thread(&refs);
        if round.is_multiple_of(5) && n > 0 {
            input = input.replace(
                "]}",
                &format!(
                    "],\"options\":{{\"since\":{},\"length\":{}}}}}",
                    rng.next() % (n as u64 + 1),
                    1 + rng.next() % 20
                ),
            );
        }
        let mut e = HashEmbed::default();
        match handle(&input, &mut e) {
            Ok(out) => {
                let v: Value = serde_json::from_str(&out).expect("JSON");
                for i in cited(&v) {
                    assert!(i < n);
                }
                for o in v["open_questions"].as_array().unwrap() {
                    assert!((o["message"].as_u64().unwrap() as usize) < n);
                }
                for b in v["bullets"].as_array().unwrap() {
                    assert!(!b["text"].as_str().unwrap().is_empty());
                    assert!(!b["senders"].as_array().unwrap().is_empty());
                }
            }
            Err(err) => panic!("round {round}: {err:?} for {input}"),
        }
    }
}

#[test]
fn a_short_summary_keeps_the_outcome() {
    // One bullet for two points: the request is more salient and more
    // informative, yet the short summary must say how the thread ended.
    let input = thread(&[
        (
            "ana",
            "can you check if the garden hall or the river hall is free on saturday, we need space for 40 people",
        ),
        ("ben", "booked the river hall"),
    ]);
    let short = input.replace("]}", "],\"options\":{\"length\":\"short\"}}");
    let (v, _) = run(&short);
    assert_eq!(v["bullets"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(cited(&v), vec![1], "{v}");
    // The default length keeps both.
    let (v, _) = run(&input);
    assert_eq!(cited(&v), vec![0, 1], "{v}");
}
