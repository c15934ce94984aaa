//! Contractions written for possessives: "let me know you're thoughts",
//! "they're car", "it's color". harper has no rule for these, and a rewrite
//! toward formal that expands the contraction turns the mistake into nonsense
//! ("you are thoughts"), so they are found here.
//!
//! The rule: `you're`, `they're` or `it's` directly followed by a word that
//! harper's dictionary knows **only as a noun** — not also as an adjective,
//! adverb, pronoun, determiner, preposition or conjunction, nor as an -ing
//! form or past participle: "thoughts", "car", "logo" but not "welcome",
//! "going", "done", "fun" — and that is not capitalized (a name: "it's
//! Monday"). Then the possessive is
//! almost always meant. A predicate noun after "you're" ("you're experts at
//! this") is the known false positive: the message says what the rule
//! assumes, so the writer can tell.

use crate::{Kind, Suggestion};
use harper_core::spell::{Dictionary, FstDictionary};

/// Contraction → the possessive it is mistaken for.
const CONFUSED: &[(&str, &str)] = &[("you're", "your"), ("they're", "their"), ("it's", "its")];

/// A word of the source: char range and lowercase text (apostrophes unified).
fn words(source: &[char]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let is_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '\u{2019}';
    for (i, &c) in source
        .iter()
        .enumerate()
        .chain(std::iter::once((source.len(), &' ')))
    {
        match (i < source.len() && is_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let text: String = source[s..i].iter().collect();
                let trimmed = text.trim_matches(['\'', '\u{2019}']);
                let lead = text.chars().count()
                    - text.trim_start_matches(['\'', '\u{2019}']).chars().count();
                let s2 = s + lead;
                let e2 = s2 + trimmed.chars().count();
                if s2 < e2 {
                    out.push((s2, e2, trimmed.to_lowercase().replace('\u{2019}', "'")));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Can `word` only be a noun after "you are"/"it is", per harper's
/// dictionary? A noun that is not also an adjective, adverb, pronoun,
/// determiner, preposition or conjunction, and whose verb reading (if any) is
/// neither an -ing form nor a past participle (which "are"/"is" could take:
/// "you're going", "it's done").
fn noun_only(dict: &FstDictionary, word: &str) -> bool {
    dict.get_word_metadata_str(word).is_some_and(|m| {
        m.noun.is_some()
            && m.adjective.is_none()
            && m.adverb.is_none()
            && m.pronoun.is_none()
            && m.determiner.is_none()
            && m.conjunction.is_none()
            && !m.preposition
            && (m.verb.is_none()
                || !(m.is_verb_progressive_form() || m.is_verb_past_participle_form()))
    })
}

/// The confusions in `source` (char offsets), in text order.
pub fn check(source: &[char]) -> Vec<Suggestion> {
    let dict = FstDictionary::curated();
    let ws = words(source);
    let mut out = Vec::new();
    for pair in ws.windows(2) {
        let ((s, e, first), (ns, _, next)) = (&pair[0], &pair[1]);
        // Only a space between them.
        if !source[*e..*ns].iter().all(|c| *c == ' ') || *ns == *e {
            continue;
        }
        let Some((_, possessive)) = CONFUSED.iter().find(|(c, _)| c == first) else {
            continue;
        };
        if source[*ns].is_uppercase() || !noun_only(&dict, next) {
            continue;
        }
        let written: String = source[*s..*e].iter().collect();
        let replacement = if written.starts_with(char::is_uppercase) {
            let mut c = possessive.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        } else {
            (*possessive).to_owned()
        };
        out.push(Suggestion {
            start: *s,
            end: *e,
            kind: Kind::Grammar,
            rule: "PossessiveContraction".into(),
            message: format!(
                "“{written}” means “{}”; before the noun “{next}” the possessive “{replacement}” is probably meant.",
                expand(first)
            ),
            replacements: vec![replacement],
        });
    }
    out
}

fn expand(contraction: &str) -> &'static str {
    match contraction {
        "you're" => "you are",
        "they're" => "they are",
        _ => "it is",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        check(&chars)
            .into_iter()
            .map(|s| {
                format!(
                    "{}→{}",
                    chars[s.start..s.end].iter().collect::<String>(),
                    s.replacements[0]
                )
            })
            .collect()
    }

    #[test]
    fn possessives_written_as_contractions_are_found() {
        assert_eq!(
            found("Please let me know you're thoughts on the draft."),
            ["you're→your"]
        );
        assert_eq!(found("They’re car is parked outside."), ["They’re→Their"]);
        assert_eq!(found("The company changed it's logo."), ["it's→its"]);
    }

    #[test]
    fn contractions_that_mean_what_they_say_are_left_alone() {
        for text in [
            "You're welcome!",
            "It's time to go.",
            "It's Monday again.",
            "They're done with the report.",
            "you're right, it's fine",
            "You're going to love it.",
            "it's",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
