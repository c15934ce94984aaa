//! Native unit tests of the analysis (no WIT, a fake embedder).

use super::*;
use std::cell::RefCell;

/// Returns, for every text, one fixed vector that the classifier reads as a
/// given tone (or an error), and records the calls.
struct Fake {
    answer: Result<Vec<f32>, String>,
    calls: RefCell<Vec<Vec<String>>>,
}

/// A unit vector the classifier surely reads as `tone`: the direction of its
/// weights for that tone minus the others' mean.
fn vector_of(tone: Tone) -> Vec<f32> {
    let c = tone::classifier().unwrap();
    let k = Tone::ALL.iter().position(|t| *t == tone).unwrap();
    let mut v: Vec<f32> = (0..c.dims)
        .map(|j| {
            let own = c.weights[k * c.dims + j];
            let others: f32 = (0..c.classes)
                .filter(|&o| o != k)
                .map(|o| c.weights[o * c.dims + j])
                .sum::<f32>()
                / (c.classes - 1) as f32;
            own - others
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

impl Fake {
    fn like(tone: Tone) -> Fake {
        Fake {
            answer: Ok(vector_of(tone)),
            calls: RefCell::new(Vec::new()),
        }
    }

    /// Every text gets this vector.
    fn with(v: Vec<f32>) -> Fake {
        Fake {
            answer: Ok(v),
            calls: RefCell::new(Vec::new()),
        }
    }

    fn failing() -> Fake {
        Fake {
            answer: Err("model not available: all-minilm-l6-v2".into()),
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl Embed for Fake {
    fn start(&self, model: &str, texts: &[String]) -> Pending<'_> {
        assert_eq!(model, MODEL);
        self.calls.borrow_mut().push(texts.to_vec());
        let answer = self
            .answer
            .clone()
            .map(|v| std::iter::repeat_n(v, texts.len()).collect());
        Box::new(move || answer)
    }
}

fn run(input: Value, embedder: &dyn Embed) -> Value {
    serde_json::from_str(&handle(&input.to_string(), embedder).unwrap()).unwrap()
}

fn suggestions(out: &Value) -> Vec<Value> {
    out["suggestions"].as_array().unwrap().clone()
}

fn span_text(text: &str, s: &Value) -> String {
    let (a, b) = (s["start"].as_u64().unwrap(), s["end"].as_u64().unwrap());
    text.chars()
        .skip(a as usize)
        .take((b - a) as usize)
        .collect()
}

#[test]
fn spelling_and_grammar_with_spans_in_chars() {
    let text = "I 😀 will recieve the parcel. She dont know.";
    let out = run(
        json!({ "text": text, "detect_tone": false }),
        &Fake::failing(),
    );
    let s = suggestions(&out);
    let spelling = s.iter().find(|s| s["kind"] == "spelling").unwrap();
    // 😀 is one scalar value (two UTF-16 units): "recieve" starts at 9.
    assert_eq!(spelling["start"], 9);
    assert_eq!(span_text(text, spelling), "recieve");
    assert!(spelling["replacements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "receive"));
    assert!(s.iter().any(|s| span_text(text, s).contains("dont")));
    assert_eq!(out["offsets"], "unicode_scalar");
    assert_eq!(out["tone"], Value::Null);
}

#[test]
fn non_ascii_spans_stay_inside_the_text() {
    for text in [
        "Café crème — naïve façade, très bien. Ths is wrng.",
        "日本語のテキスト and an misspeled word.",
        "👩‍👩‍👧‍👦 family emoji then teh typo.",
        "Ünïcödé wörds everywhere: Zürich, Łódź, İstanbul.",
    ] {
        let out = run(
            json!({ "text": text, "detect_tone": false }),
            &Fake::failing(),
        );
        let n = text.chars().count() as u64;
        for s in suggestions(&out) {
            let (a, b) = (s["start"].as_u64().unwrap(), s["end"].as_u64().unwrap());
            assert!(a < b && b <= n, "{s} in {text:?}");
        }
    }
}

#[test]
fn clean_text_has_no_error_suggestions() {
    let out = run(
        json!({ "text": "The museum is closed on Mondays.", "detect_tone": false }),
        &Fake::failing(),
    );
    assert!(suggestions(&out)
        .iter()
        .all(|s| s["kind"] != "spelling" && s["kind"] != "grammar"));
}

#[test]
fn odd_inputs_never_panic() {
    let big = "This sentance has an error and it repeats. ".repeat(2_400);
    assert!(big.len() > 100_000);
    for text in [
        String::new(),
        " \n\t ".into(),
        "😀😀😀🎉".into(),
        "\u{0}\u{1}\u{7f}\u{200b}\u{feff}".into(),
        "!!!???...".into(),
        "a".repeat(5_000),
        "word ".repeat(3_000),
        big.chars().take(MAX_TEXT_CHARS).collect(),
    ] {
        for detect in [false, true] {
            let out = run(
                json!({ "text": text, "detect_tone": detect }),
                &Fake::failing(),
            );
            assert!(out["suggestions"].is_array());
        }
    }
}

#[test]
fn empty_text_makes_no_model_call() {
    let fake = Fake::like(Tone::Formal);
    let out = run(json!({ "text": "", "target_tone": "formal" }), &fake);
    assert!(fake.calls.borrow().is_empty());
    assert_eq!(out["tone"], Value::Null);
    assert!(out["notes"].is_array());
}

#[test]
fn invalid_inputs_are_refused_without_echo() {
    let secret = "my-secret-words";
    for input in [
        secret.to_string(),
        format!("{{\"text\": 5, \"x\": \"{secret}\"}}"),
        format!("{{\"text\": \"{secret}\", \"target_tone\": \"{secret}\"}}"),
        format!("{{\"text\": \"{secret}\", \"detect_tone\": \"{secret}\"}}"),
        format!("{{\"txt\": \"{secret}\"}}"),
        "[]".into(),
        "null".into(),
    ] {
        match handle(&input, &Fake::failing()) {
            Err(Error::InvalidInput(m)) => assert!(!m.contains(secret), "{m}"),
            other => panic!("{input}: {other:?}"),
        }
    }
    let too_long = json!({ "text": "a".repeat(MAX_TEXT_CHARS + 1) }).to_string();
    assert!(matches!(
        handle(&too_long, &Fake::failing()),
        Err(Error::InvalidInput(_))
    ));
    let angry = json!({ "text": "hi", "target_tone": "angry" }).to_string();
    assert!(matches!(
        handle(&angry, &Fake::failing()),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn inference_failure_without_target_leaves_tone_out() {
    let out = run(
        json!({ "text": "Hello there. How are you?" }),
        &Fake::failing(),
    );
    assert_eq!(out["tone"], Value::Null);
    assert!(out["notes"][0]
        .as_str()
        .unwrap()
        .contains("tone unavailable"));
}

#[test]
fn inference_failure_with_target_is_an_error() {
    let input = json!({ "text": "Hello there.", "target_tone": "formal" }).to_string();
    assert!(matches!(
        handle(&input, &Fake::failing()),
        Err(Error::Inference(_))
    ));
}

#[test]
fn the_classifier_parses_and_reads_every_tone() {
    let c = tone::classifier().unwrap();
    assert_eq!(c.classes, 4);
    for t in Tone::ALL {
        let p = tone::probabilities(c, &vector_of(t)).unwrap();
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert_eq!(
            tone::read(&p),
            tone::Reading::Sure(t, p[t as usize]),
            "{t:?} {p:?}"
        );
    }
    assert!(tone::probabilities(c, &[0.0; 3]).is_none());
}

/// Issue 15, item 8: a small margin is "unsure", and the message of a tone
/// suggestion never names a tone other than the sentence's reading.
#[test]
fn an_uncertain_tone_is_unsure_and_messages_agree_with_detection() {
    // Between two tones, where they are equally likely (found by bisection):
    // no probability reaches the threshold.
    let c = tone::classifier().unwrap();
    let (a, b) = (vector_of(Tone::Casual), vector_of(Tone::Angry));
    let blend = |t: f32| -> Vec<f32> {
        let mut v: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (1.0 - t) * x + t * y)
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    };
    let lean = |t: f32| {
        let p = tone::probabilities(c, &blend(t)).unwrap();
        p[Tone::Casual as usize] - p[Tone::Angry as usize]
    };
    let (mut lo, mut hi) = (0.0f32, 1.0f32);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if lean(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mixed = blend((lo + hi) / 2.0);
    let p = tone::probabilities(c, &mixed).unwrap();
    let zero = tone::probabilities(c, &vec![0.0; c.dims]).unwrap();
    assert_eq!(tone::read(&p), tone::Reading::Unsure, "{p:?}");
    assert_eq!(tone::read(&zero), tone::Reading::Unsure, "{zero:?}");
    let text = "ugh the build broke again, whatever, I'll look later";
    for v in [mixed, vec![0.0; c.dims]] {
        let out = run(
            json!({ "text": text, "target_tone": "formal" }),
            &Fake::with(v.clone()),
        );
        let probs = tone::probabilities(c, &v).unwrap();
        if tone::read(&probs) == tone::Reading::Unsure {
            assert_eq!(out["tone"]["detected"], "unsure", "{out} {p:?} {zero:?}");
            // Unsure: no sentence is said to read as anything.
            assert!(
                suggestions(&out).iter().all(|s| s["kind"] != "tone"),
                "{out}"
            );
            assert_eq!(out["tone"]["sentences_off_target"], 0);
        }
    }
    // A sure reading: the message names the detected tone, for one sentence.
    for t in [Tone::Casual, Tone::Angry, Tone::Friendly] {
        let out = run(
            json!({ "text": text, "target_tone": "formal" }),
            &Fake::like(t),
        );
        assert_eq!(out["tone"]["detected"], t.name());
        for s in suggestions(&out).iter().filter(|s| s["kind"] == "tone") {
            let m = s["message"].as_str().unwrap();
            assert!(
                m.starts_with(&format!("This reads as {}:", t.name())),
                "{m}"
            );
        }
    }
}

#[test]
fn tone_detected_and_rewrites_toward_target() {
    let text = "This is UNACCEPTABLE, fix it RIGHT NOW!!! I can't believe it.";
    let fake = Fake::like(Tone::Angry);
    let out = run(json!({ "text": text, "target_tone": "friendly" }), &fake);
    assert_eq!(fake.calls.borrow().len(), 1, "one embed call");
    assert_eq!(out["tone"]["detected"], "angry");
    assert_eq!(out["tone"]["target"], "friendly");
    let tone: Vec<Value> = suggestions(&out)
        .into_iter()
        .filter(|s| s["kind"] == "tone")
        .collect();
    assert!(!tone.is_empty() && tone.len() <= MAX_TONE_SUGGESTIONS);
    let first = &tone[0];
    assert!(span_text(text, first).starts_with("This is UNACCEPTABLE"));
    assert_eq!(
        first["replacements"][0],
        "This isn't what I expected, please look into it soon!"
    );
    assert!(first["message"].as_str().unwrap().contains("angry"));
}

#[test]
fn no_tone_suggestions_when_on_target() {
    let fake = Fake::like(Tone::Formal);
    let out = run(
        json!({ "text": "Please find the report attached. Kind regards.", "target_tone": "formal" }),
        &fake,
    );
    assert_eq!(out["tone"]["detected"], "formal");
    assert!(suggestions(&out).iter().all(|s| s["kind"] != "tone"));
}

/// Issue 15, item 6: "Dear Ms. Novak" is one sentence for tone, not "Dear
/// Ms." and "Novak, …".
#[test]
fn sentences_do_not_split_at_titles_or_abbreviations() {
    for (text, want) in [
        ("Dear Ms. Novak, thank you for the draft.", 1),
        ("Dr. Okonkwo and Prof. Lee will join. We start at ten.", 2),
        ("Bring snacks, e.g. fruit or nuts. Thanks!", 2),
        ("Call Mr. Smith. Then call Mrs. Jones.", 2),
        ("It ends here. Next one.", 2),
    ] {
        let doc = harper_core::Document::new_plain_english_curated(text);
        let got = grammar::sentences(&doc);
        assert_eq!(got.len(), want, "{text:?}: {got:?}");
    }
    // And the tone suggestion covers "Dear Ms. Novak" whole.
    let text = "Dear Ms. Novak, pls send the stuff asap, thx.";
    let fake = Fake::like(Tone::Casual);
    let out = run(json!({ "text": text, "target_tone": "formal" }), &fake);
    for s in suggestions(&out).iter().filter(|s| s["kind"] == "tone") {
        let span = span_text(text, s);
        assert!(
            !span.ends_with("Ms.") && !span.starts_with("Novak"),
            "{span:?}"
        );
    }
}

#[test]
fn many_sentences_are_merged_into_few_units() {
    let text = "One. Two. Three. ".repeat(20);
    let fake = Fake::like(Tone::Casual);
    let _ = run(json!({ "text": text }), &fake);
    let calls = fake.calls.borrow();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].len() <= MAX_UNITS);
}

#[test]
fn units_cover_sentences_in_order() {
    let s: Vec<(usize, usize)> = (0..40).map(|i| (i * 10, i * 10 + 8)).collect();
    let u = units(&s);
    assert_eq!(u.len(), MAX_UNITS);
    assert_eq!(u[0].0, 0);
    assert_eq!(u[MAX_UNITS - 1].1, 398);
    assert!(u.windows(2).all(|w| w[0].1 < w[1].0));
    assert_eq!(units(&s[..3]), s[..3].to_vec());
}

/// Issue 15, item 6: no grammar complaint without a fix, and names inside a
/// sentence are not "corrected".
#[test]
fn no_silly_false_positives() {
    for text in [
        "The weather is nice today.",
        "I met with Ana Novak and Piotr Wiśniewski yesterday.",
        "Please forward this to Mr. Okonkwo before noon.",
    ] {
        let out = run(
            json!({ "text": text, "detect_tone": false }),
            &Fake::failing(),
        );
        let errors: Vec<Value> = suggestions(&out)
            .into_iter()
            .filter(|s| s["kind"] == "spelling" || s["kind"] == "grammar")
            .collect();
        assert!(errors.is_empty(), "{text}: {errors:?}");
    }
    // A misspelling opening a sentence is still caught, and so is one in
    // lower case inside it.
    let text = "Recieve the parcel. We will recieve it.";
    let out = run(
        json!({ "text": text, "detect_tone": false }),
        &Fake::failing(),
    );
    let spans: Vec<String> = suggestions(&out)
        .iter()
        .filter(|s| s["kind"] == "spelling")
        .map(|s| span_text(text, s))
        .collect();
    assert_eq!(spans, ["Recieve", "recieve"], "{out}");
}

/// Issue 15, item 5: a rewrite never makes a sentence worse. The misuse of
/// "you're" is flagged, and the formal rewrite (which expands contractions)
/// does not turn it into "you are thoughts".
#[test]
fn rewrites_never_expand_or_alter_a_mistake() {
    let text = "Please let me know you're thoughts on the draft, it's gonna be great!!";
    let out = run(
        json!({ "text": text, "target_tone": "formal" }),
        &Fake::like(Tone::Casual),
    );
    let all = suggestions(&out);
    let flagged = all
        .iter()
        .find(|s| s["kind"] == "grammar" && span_text(text, s) == "you're")
        .unwrap_or_else(|| panic!("you're is not flagged: {out}"));
    assert_eq!(flagged["replacements"][0], "your");
    let tone: Vec<&Value> = all.iter().filter(|s| s["kind"] == "tone").collect();
    assert!(!tone.is_empty(), "{out}");
    for s in tone {
        for r in s["replacements"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            assert!(!r.contains("you are thoughts"), "{r}");
            assert!(
                r.contains("you're thoughts"),
                "the mistake must stay as written: {r}"
            );
        }
    }
    // Without the mistake the same sentence is rewritten (contractions and
    // slang expanded), so the check above is not vacuous.
    let clean = "Please let me know your thoughts on the draft, it's gonna be great!!";
    let out = run(
        json!({ "text": clean, "target_tone": "formal" }),
        &Fake::like(Tone::Casual),
    );
    let rewritten: Vec<String> = suggestions(&out)
        .iter()
        .filter(|s| s["kind"] == "tone")
        .flat_map(|s| s["replacements"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    assert!(
        rewritten
            .iter()
            .any(|r| r.contains("it is going to be great")),
        "{out}"
    );
}

/// Issue 15, item 7: text in another language is not "corrected" toward
/// English, and emoji alone have no tone.
#[test]
fn other_languages_and_emoji_are_not_checked() {
    let pt = "Olá pessoal, amanhã não vou poder ir à reunião porque tenho consulta no médico, \
              mas mando as notas por email até sexta.";
    let fake = Fake::like(Tone::Angry);
    let out = run(json!({ "text": pt, "target_tone": "formal" }), &fake);
    assert_eq!(out["suggestions"], json!([]), "{out}");
    assert_eq!(out["tone"], Value::Null);
    assert_eq!(out["language"]["detected"], "por");
    assert_eq!(out["language"]["checked"], false);
    assert!(out["notes"][0].as_str().unwrap().contains("English only"));
    assert!(
        fake.calls.borrow().is_empty(),
        "no model call for a text not checked"
    );

    let out = run(json!({ "text": "😡😡😡🔥" }), &fake);
    assert_eq!(out["tone"], Value::Null, "{out}");
    assert_eq!(out["language"]["detected"], "zxx");
    assert!(fake.calls.borrow().is_empty());

    let out = run(
        json!({ "text": "We was late.", "detect_tone": false }),
        &fake,
    );
    assert_eq!(out["language"]["detected"], "eng");
    assert_eq!(out["language"]["checked"], true);
}
