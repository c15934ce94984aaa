//! Is the text English? Spelling, grammar and tone are English-only: harper's
//! dictionary and rules are English, and the tone classifier was trained on
//! English sentences. A text in another language would draw "corrections"
//! toward English words (a Portuguese paragraph drew 26 of them), so it is
//! answered with what was found instead: the language, and that it is not
//! checked.
//!
//! Two signals must agree before a text is called "not English", so that
//! English with typos, slang or names is never refused:
//! 1. `whatlang` (trigram profiles) names another language; and
//! 2. at most [`MAX_KNOWN_SHARE`] of the text's words are in harper's English
//!    dictionary (English chat with many typos still has most of its words
//!    there; Portuguese, Spanish or German have few).
//!
//! A text mostly in a non-Latin script is not English (whatlang names the
//! language when it can), however short. A text with no word at all (emoji, digits, punctuation)
//! has no language to check.

use harper_core::spell::{Dictionary, FstDictionary};

/// A text is not English when at most this share of its words are English
/// dictionary words (and whatlang agrees).
pub const MAX_KNOWN_SHARE: f32 = 0.5;
/// Fewer words than this are too few to call a language (a name, "ok",
/// "obrigado"): they are checked as English.
pub const MIN_WORDS: usize = 3;

/// What the text is written in, as far as the checks are concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Language {
    /// English, or too short to tell (checked as English).
    English,
    /// Another language: ISO 639-3 code and English name (`None` when the
    /// script rules English out but whatlang names nothing).
    Other(Option<(&'static str, &'static str)>),
    /// No word at all: emoji, numbers, punctuation.
    NoWords,
}

/// The words of `text`: runs of letters (and inner apostrophes).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphabetic() || c == '\'' || c == '\u{2019}'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '\u{2019}'))
        .filter(|w| w.chars().any(char::is_alphabetic))
        .map(str::to_owned)
        .collect()
}

/// The language is read from the text's first this many characters (both
/// signals are linear in the text; a prefix of a few sentences decides).
pub const SAMPLE_CHARS: usize = 2_000;

/// Detects whether `text` is English.
pub fn detect(text: &str) -> Language {
    let text = match text.char_indices().nth(SAMPLE_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    let words = words(text);
    if words.is_empty() {
        return Language::NoWords;
    }
    let letters = words.iter().flat_map(|w| w.chars()).count();
    let latin = words
        .iter()
        .flat_map(|w| w.chars())
        .filter(|c| c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(c))
        .count();
    let non_latin = 2 * latin < letters;
    if !non_latin {
        if words.len() < MIN_WORDS {
            return Language::English;
        }
        let dict = FstDictionary::curated();
        let known = words
            .iter()
            .filter(|w| dict.contains_word_str(w) || dict.contains_word_str(&w.to_lowercase()))
            .count();
        if known as f32 / words.len() as f32 > MAX_KNOWN_SHARE {
            return Language::English;
        }
    }
    let named = whatlang::detect(text).map(|info| info.lang());
    match named {
        Some(whatlang::Lang::Eng) if !non_latin => Language::English,
        Some(lang) => Language::Other(Some((lang.code(), lang.eng_name()))),
        None if non_latin => Language::Other(None),
        None => Language::English,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_languages_are_recognised() {
        let pt = "Olá pessoal, amanhã não vou poder ir à reunião porque tenho consulta no médico, \
                  mas mando as notas por email até sexta.";
        assert_eq!(detect(pt), Language::Other(Some(("por", "Portuguese"))));
        let es = "Mañana no puedo ir a la reunión, tengo cita con el médico por la tarde.";
        assert!(matches!(detect(es), Language::Other(Some(("spa", _)))));
        let de = "Ich kann morgen leider nicht kommen, weil ich einen Arzttermin habe.";
        assert!(matches!(detect(de), Language::Other(Some(("deu", _)))));
        assert!(matches!(
            detect("明日は会議に行けません。病院の予約があります。"),
            Language::Other(_)
        ));
    }

    #[test]
    fn english_is_english_even_when_messy() {
        for text in [
            "Please let me know you're thoughts on the draft.",
            "ok so i'm totaly gonna be late lol, traffic is insane rn",
            "Novak and Szymańska will present the Q3 numbers on Thursday.",
            "We was hoping to ship on Friday, but its not ready.",
            "Dear Ms. Novak, thank you for your letter.",
            "ok",
            "Olá!",
        ] {
            assert_eq!(detect(text), Language::English, "{text}");
        }
    }

    #[test]
    fn no_words_is_no_language() {
        for text in ["😀😀🎉", "!!! ???", "12:30 4.5%", "👍🏽 🙏"] {
            assert_eq!(detect(text), Language::NoWords, "{text}");
        }
    }
}
