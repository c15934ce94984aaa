//! Rule-based rewrites toward a target tone.
//!
//! These are deliberately simple, transparent rules — word and phrase
//! substitutions, contraction expansion or contraction, punctuation — not a
//! language model. The tone classifier (embedding similarity) decides *which*
//! sentences are far from the target; these rules propose a concrete
//! replacement when one of them applies, and otherwise the suggestion carries
//! advice only.

use crate::tone::Tone;

/// A phrase rule: lowercase words to match (separated by whitespace in the
/// text) and what replaces them. The first letter's case is kept.
type Rule = (&'static [&'static str], &'static str);

/// Contractions and their expansions (toward formal).
const EXPAND: &[Rule] = &[
    (&["can't"], "cannot"),
    (&["won't"], "will not"),
    (&["shan't"], "shall not"),
    (&["don't"], "do not"),
    (&["doesn't"], "does not"),
    (&["didn't"], "did not"),
    (&["isn't"], "is not"),
    (&["aren't"], "are not"),
    (&["wasn't"], "was not"),
    (&["weren't"], "were not"),
    (&["hasn't"], "has not"),
    (&["haven't"], "have not"),
    (&["hadn't"], "had not"),
    (&["couldn't"], "could not"),
    (&["wouldn't"], "would not"),
    (&["shouldn't"], "should not"),
    (&["mustn't"], "must not"),
    (&["needn't"], "need not"),
    (&["i'm"], "I am"),
    (&["i've"], "I have"),
    (&["i'll"], "I will"),
    (&["i'd"], "I would"),
    (&["you're"], "you are"),
    (&["you've"], "you have"),
    (&["you'll"], "you will"),
    (&["we're"], "we are"),
    (&["we've"], "we have"),
    (&["we'll"], "we will"),
    (&["they're"], "they are"),
    (&["they've"], "they have"),
    (&["they'll"], "they will"),
    (&["it's"], "it is"),
    (&["that's"], "that is"),
    (&["there's"], "there is"),
    (&["here's"], "here is"),
    (&["what's"], "what is"),
    (&["he's"], "he is"),
    (&["she's"], "she is"),
    (&["let's"], "let us"),
];

/// Informal words and phrases and their formal counterparts.
const FORMALIZE: &[Rule] = &[
    (&["gonna"], "going to"),
    (&["wanna"], "want to"),
    (&["gotta"], "have to"),
    (&["kinda"], "somewhat"),
    (&["sorta"], "somewhat"),
    (&["yeah"], "yes"),
    (&["yep"], "yes"),
    (&["yup"], "yes"),
    (&["nope"], "no"),
    (&["hey"], "hello"),
    (&["thanks"], "thank you"),
    (&["thx"], "thank you"),
    (&["guys"], "everyone"),
    (&["awesome"], "excellent"),
    (&["btw"], "by the way"),
    (&["asap"], "as soon as possible"),
    (&["pls"], "please"),
    (&["plz"], "please"),
    (&["u"], "you"),
    (&["ur"], "your"),
    (&["lol"], ""),
    (&["a", "bunch", "of"], "many"),
    (&["get", "back", "to", "me"], "reply"),
    (&["check", "out"], "review"),
    (&["figure", "out"], "determine"),
];

/// Contractions to form (toward casual or friendly).
const CONTRACT: &[Rule] = &[
    (&["do", "not"], "don't"),
    (&["does", "not"], "doesn't"),
    (&["did", "not"], "didn't"),
    (&["is", "not"], "isn't"),
    (&["are", "not"], "aren't"),
    (&["was", "not"], "wasn't"),
    (&["cannot"], "can't"),
    (&["can", "not"], "can't"),
    (&["will", "not"], "won't"),
    (&["would", "not"], "wouldn't"),
    (&["should", "not"], "shouldn't"),
    (&["could", "not"], "couldn't"),
    (&["have", "not"], "haven't"),
    (&["has", "not"], "hasn't"),
    (&["i", "am"], "I'm"),
    (&["i", "will"], "I'll"),
    (&["i", "would"], "I'd"),
    (&["we", "are"], "we're"),
    (&["we", "will"], "we'll"),
    (&["you", "are"], "you're"),
    (&["you", "will"], "you'll"),
    (&["they", "are"], "they're"),
    (&["it", "is"], "it's"),
    (&["that", "is"], "that's"),
    (&["let", "us"], "let's"),
];

/// Formal words and phrases and plainer counterparts (toward casual).
const PLAIN: &[Rule] = &[
    (&["however"], "but"),
    (&["therefore"], "so"),
    (&["thus"], "so"),
    (&["furthermore"], "also"),
    (&["moreover"], "also"),
    (&["nevertheless"], "still"),
    (&["purchase"], "buy"),
    (&["purchased"], "bought"),
    (&["assist"], "help"),
    (&["assistance"], "help"),
    (&["require"], "need"),
    (&["requires"], "needs"),
    (&["regarding"], "about"),
    (&["concerning"], "about"),
    (&["utilize"], "use"),
    (&["utilise"], "use"),
    (&["commence"], "start"),
    (&["obtain"], "get"),
    (&["sufficient"], "enough"),
    (&["approximately"], "about"),
    (&["inquire"], "ask"),
    (&["prior", "to"], "before"),
    (&["in", "order", "to"], "to"),
    (&["at", "this", "point", "in", "time"], "now"),
    (&["please", "be", "advised", "that"], ""),
    (&["kindly"], "please"),
    (&["dear", "sir", "or", "madam"], "Hi"),
];

/// Harsh words and phrases and softer counterparts (toward friendly or
/// formal, away from angry).
const SOFTEN: &[Rule] = &[
    (
        &["this", "is", "unacceptable"],
        "this is not what I expected",
    ),
    (&["unacceptable"], "disappointing"),
    (&["ridiculous"], "surprising"),
    (&["absurd"], "surprising"),
    (&["stupid"], "confusing"),
    (&["idiotic"], "confusing"),
    (&["useless"], "not very helpful"),
    (&["pathetic"], "disappointing"),
    (&["terrible"], "disappointing"),
    (&["horrible"], "disappointing"),
    (&["awful"], "disappointing"),
    (&["garbage"], "not good"),
    (&["hate"], "dislike"),
    (&["furious"], "unhappy"),
    (&["i", "demand"], "I would appreciate"),
    (&["immediately"], "as soon as you can"),
    (&["right", "now"], "soon"),
    (&["what", "the", "hell"], "what"),
    (&["the", "hell"], ""),
    (&["damn"], ""),
    (&["damned"], ""),
    (&["for", "god's", "sake"], ""),
    (&["fix", "it"], "please look into it"),
    (&["fix", "this"], "please look into this"),
    (&["you", "never"], "you have not yet"),
    (&["you", "always"], "you often"),
];

/// Which rule tables move text toward `target`, in the order applied.
fn tables(target: Tone) -> &'static [&'static [Rule]] {
    match target {
        Tone::Formal => &[SOFTEN, FORMALIZE, EXPAND],
        Tone::Casual => &[PLAIN, CONTRACT],
        Tone::Friendly => &[SOFTEN, FORMALIZE_FRIENDLY, CONTRACT],
        Tone::Angry => &[],
    }
}

/// Toward friendly, only the stiffest formal phrases are relaxed.
const FORMALIZE_FRIENDLY: &[Rule] = &[
    (&["please", "be", "advised", "that"], ""),
    (&["dear", "sir", "or", "madam"], "Hi there"),
    (&["kindly"], "please"),
    (&["at", "this", "point", "in", "time"], "now"),
];

/// Returns the rewrite of `sentence` toward `target`, if any rule applies.
pub fn rewrite(sentence: &str, target: Tone) -> Option<String> {
    let mut text = sentence.to_owned();
    if matches!(target, Tone::Formal | Tone::Friendly) {
        text = calm_shouting(&text);
        text = squeeze_exclamations(&text, target == Tone::Formal);
    }
    if target == Tone::Formal {
        text = strip_emoji(&text);
    }
    for table in tables(target) {
        text = apply(&text, table);
    }
    let text = tidy(&text);
    (text != sentence && !text.is_empty()).then_some(text)
}

/// What to say about a sentence far from `target` when no rule applies.
pub fn advice(target: Tone) -> &'static str {
    match target {
        Tone::Formal => {
            "avoid slang, contractions and exclamation marks, and state the point plainly"
        }
        Tone::Casual => "shorter, everyday words and contractions read more casually",
        Tone::Friendly => {
            "acknowledge the reader, phrase requests as questions (\"Could you…?\") and avoid blame"
        }
        Tone::Angry => "",
    }
}

/// A word of the text: byte range and lowercase form (apostrophes unified).
struct Word {
    start: usize,
    end: usize,
    lower: String,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\'' || c == '\u{2019}'
}

fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(word(text, s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(word(text, s, text.len()));
    }
    out
}

fn word(text: &str, start: usize, end: usize) -> Word {
    let raw = &text[start..end];
    // Quotes around a word are not part of it.
    let trimmed_start = start + (raw.len() - raw.trim_start_matches(['\'', '\u{2019}']).len());
    let trimmed_end = end - (raw.len() - raw.trim_end_matches(['\'', '\u{2019}']).len());
    let (start, end) = if trimmed_start < trimmed_end {
        (trimmed_start, trimmed_end)
    } else {
        (start, end)
    };
    Word {
        start,
        end,
        lower: text[start..end].to_lowercase().replace('\u{2019}', "'"),
    }
}

/// Applies the first matching rule at each word, left to right.
fn apply(text: &str, rules: &[Rule]) -> String {
    let ws = words(text);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < ws.len() {
        let hit = rules.iter().find(|(pat, _)| {
            i + pat.len() <= ws.len()
                && pat.iter().enumerate().all(|(k, p)| ws[i + k].lower == *p)
                && (1..pat.len()).all(|k| {
                    let gap = &text[ws[i + k - 1].end..ws[i + k].start];
                    !gap.is_empty() && gap.chars().all(char::is_whitespace)
                })
        });
        match hit {
            Some((pat, with)) => {
                let (s, e) = (ws[i].start, ws[i + pat.len() - 1].end);
                out.push_str(&text[copied..s]);
                out.push_str(&match_case(&text[s..e], with));
                copied = e;
                i += pat.len();
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Gives `with` the case of `template`'s first letter (and all caps if the
/// template is all caps and longer than one letter).
fn match_case(template: &str, with: &str) -> String {
    let letters: Vec<char> = template.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        return with.to_uppercase();
    }
    match (template.chars().next(), with.chars().next()) {
        (Some(t), Some(w)) if t.is_uppercase() && w.is_lowercase() => {
            let mut s: String = w.to_uppercase().collect();
            s.push_str(&with[w.len_utf8()..]);
            s
        }
        _ => with.to_owned(),
    }
}

/// Lowercases shouted words: when a sentence has two or more all-caps words
/// of three letters or more (a single one is more likely an acronym).
fn calm_shouting(text: &str) -> String {
    let ws = words(text);
    let shouted: Vec<&Word> = ws
        .iter()
        .filter(|w| {
            let s = &text[w.start..w.end];
            s.chars().filter(|c| c.is_alphabetic()).count() >= 3
                && s.chars().all(|c| !c.is_lowercase())
                && s.chars().any(|c| c.is_uppercase())
        })
        .collect();
    if shouted.len() < 2 {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for w in shouted {
        out.push_str(&text[copied..w.start]);
        out.push_str(&text[w.start..w.end].to_lowercase());
        copied = w.end;
    }
    out.push_str(&text[copied..]);
    // The sentence's first letter stays a capital.
    capitalize_first(&out)
}

/// Collapses runs of `!` (and `?!` mixes): to `.`/`?` when `to_period`,
/// otherwise to a single `!`.
fn squeeze_exclamations(text: &str, to_period: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '!' || c == '?' {
            let mut run = String::from(c);
            while let Some(&n) = chars.peek() {
                if n == '!' || n == '?' {
                    run.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if run.contains('?') {
                out.push('?');
            } else if to_period {
                out.push('.');
            } else {
                out.push('!');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE0F | 0x200D)
}

fn strip_emoji(text: &str) -> String {
    text.chars().filter(|&c| !is_emoji(c)).collect()
}

/// Collapses the double spaces and stray spaces before punctuation that
/// removals leave behind, and capitalizes the first letter.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        if matches!(c, ',' | '.' | '!' | '?' | ';' | ':') && out.ends_with(' ') {
            out.pop();
        }
        if c == ',' && (out.is_empty() || out.ends_with(',')) {
            continue;
        }
        out.push(c);
    }
    capitalize_first(out.trim_start_matches([',', ' ']))
}

fn capitalize_first(text: &str) -> String {
    match text.char_indices().find(|(_, c)| c.is_alphabetic()) {
        Some((i, c)) if c.is_lowercase() => {
            let mut s = String::with_capacity(text.len() + 2);
            s.push_str(&text[..i]);
            s.extend(c.to_uppercase());
            s.push_str(&text[i + c.len_utf8()..]);
            s
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formal_expands_contractions_and_slang() {
        assert_eq!(
            rewrite("I can't make it, gonna be late!!", Tone::Formal).as_deref(),
            Some("I cannot make it, going to be late.")
        );
        assert_eq!(
            rewrite("Don't worry, it\u{2019}s fine.", Tone::Formal).as_deref(),
            Some("Do not worry, it is fine.")
        );
    }

    #[test]
    fn casual_contracts() {
        assert_eq!(
            rewrite("However, I am unable to assist you.", Tone::Casual).as_deref(),
            Some("But, I'm unable to help you.")
        );
    }

    #[test]
    fn friendly_softens() {
        assert_eq!(
            rewrite("This is UNACCEPTABLE, fix it RIGHT NOW!!!", Tone::Friendly).as_deref(),
            Some("This isn't what I expected, please look into it soon!")
        );
    }

    #[test]
    fn nothing_to_do_is_none() {
        assert_eq!(rewrite("The report is attached.", Tone::Formal), None);
        assert_eq!(rewrite("", Tone::Casual), None);
        assert_eq!(rewrite("😀😀", Tone::Casual), None);
    }

    #[test]
    fn non_ascii_is_safe() {
        let _ = rewrite("Ça va? Don't — 日本語 can't 😀!!", Tone::Formal);
        let _ = rewrite("ÉCOLE FERMÉE AUJOURD'HUI!!", Tone::Friendly);
    }
}
