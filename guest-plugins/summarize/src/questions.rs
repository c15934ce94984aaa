//! Open questions and requests: asked of others and not answered later in
//! the thread.
//!
//! A segment is a **question** if it ends with `?` (and is more than a
//! reaction such as "right?" or "really??"), or if it has no final
//! punctuation and opens the way English questions do ("who is picking up…",
//! "is there an elevator…", "do you have…"). It is a **request** if it asks
//! a person to do something: "can/could/would/will you|someone…", "please
//! <verb>" with an addressee or "you", "let me know", "need you to".
//!
//! Its **addressees** are the message's `@mentions` and a leading vocative
//! that names a participant ("Dan, …", "hi Dan, …").
//!
//! It counts as **answered** when a later message from someone other than the
//! asker — from an addressee, if the addressees take part in the thread —
//! quotes it, or is semantically close to it (cosine ≥ [`ANSWER_SIM`]), or is
//! the first such reply, comes within [`REPLY_WINDOW`] messages and is short,
//! related (cosine ≥ [`REPLY_SIM`]), not prose (code, a link), addressed
//! back to the asker, or — for a yes/no question — opens with "yes", "no",
//! "sure" and the like, or is a statement that **takes the question up**
//! ([`takes_up`]): it echoes the question's first word ("Since when?" —
//! "Since the rounding change merged on Tuesday"), opens with the form the
//! question asks for ("who …?" — "I have it …", "why …?" — "because …"),
//! gives a reason when the question asks why, or shares a content word with
//! it. Answers longer than a few words close a question too: the first reply
//! within the window, a statement of at least [`LONG_ANSWER_WORDS`] content
//! words and at least a little related to the question
//! (cosine ≥ [`LONG_ANSWER_SIM`]).

use crate::rank::dot;
use crate::text::{is_stopword, Prepared, Segment};

/// A reply at least this similar to the question answers it, wherever it is.
pub const ANSWER_SIM: f32 = 0.5;
/// The first reply after a question answers it if it is at least this
/// similar (or short, or not prose).
pub const REPLY_SIM: f32 = 0.3;
/// The first reply must come within this many messages of the question.
pub const REPLY_WINDOW: usize = 3;
/// A reply of at most this many words is a direct answer ("yes", "7pm",
/// "nope 4th floor walkup").
pub const SHORT_REPLY_WORDS: usize = 6;

/// The first reply, a statement with at least this many content words …
pub const LONG_ANSWER_WORDS: usize = 4;
/// … answers the question if it is at least this related to it: an answer
/// in prose ("looks like roughly 40% of queries come back empty" to "how bad
/// is it?") shares a topic with the question without echoing its words;
/// unrelated chatter ("oh I got my shoes!! gold ones") does not.
pub const LONG_ANSWER_SIM: f32 = 0.15;

/// Words that open a yes/no question ("do we need…", "is it…").
const POLAR_OPENERS: &[&str] = &[
    "am", "are", "is", "was", "were", "do", "does", "did", "can", "could", "will", "would",
    "should", "shall", "may", "might", "must", "have", "has", "had", "isn't", "aren't", "don't",
    "doesn't", "didn't", "won't", "can't",
];

/// Words that open a direct answer to a yes/no question ("yes, …",
/// "nope, …", "sure, …").
const ANSWER_OPENERS: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "yea",
    "no",
    "nope",
    "nah",
    "sure",
    "definitely",
    "absolutely",
    "correct",
    "exactly",
    "affirmative",
    "negative",
    "ok",
    "okay",
];

/// Is this segment a yes/no question (opens with an auxiliary)?
fn is_polar(seg: &Segment) -> bool {
    seg.words
        .first()
        .is_some_and(|w| POLAR_OPENERS.contains(&w.as_str()))
}

/// Does this message open with a yes/no answer word?
fn opens_with_answer(m: &MessageView<'_>) -> bool {
    m.prepared
        .segments
        .first()
        .and_then(|s| s.words.first())
        .is_some_and(|w| ANSWER_OPENERS.contains(&w.as_str()))
}

/// What an open item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A question.
    Question,
    /// A request to do something.
    Request,
}

/// One participant-facing view of a message, as the detector needs it.
pub struct MessageView<'a> {
    /// Sender as given.
    pub sender: &'a str,
    /// Preprocessed text.
    pub prepared: &'a Prepared,
    /// Embedding of each segment (`None` if it was not embedded).
    pub vectors: Vec<Option<&'a [f32]>>,
}

/// An open question or request.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// The message's index in the thread.
    pub message: usize,
    /// Who asked.
    pub from: String,
    /// Whom it is addressed to (participants' names as they appear in
    /// `sender`, or the mention as written), possibly empty.
    pub to: Vec<String>,
    /// The question or request text (the segments that ask).
    pub text: String,
    /// Question or request.
    pub kind: Kind,
}

const WH: &[&str] = &[
    "who", "what", "when", "where", "why", "how", "which", "whose", "whats", "what's", "where's",
    "who's", "how's",
];
const AUX: &[&str] = &[
    "can", "could", "would", "will", "should", "shall", "is", "are", "was", "were", "do", "does",
    "did", "have", "has", "any", "anyone", "anybody", "won't", "can't", "isn't", "aren't",
    "didn't", "doesn't", "don't",
];
const SUBJECTS: &[&str] = &[
    "you", "u", "ya", "we", "they", "i", "he", "she", "anyone", "anybody", "someone", "somebody",
    "everyone", "there", "y'all",
];
const BE_SUBJECTS: &[&str] = &[
    "it", "this", "that", "the", "these", "those", "our", "your", "my",
];
const ADDRESS_WORDS: &[&str] = &[
    "you", "u", "ya", "someone", "somebody", "anyone", "anybody", "y'all", "yall",
];
/// Words that may stand before the real start of a question.
const LEAD_FILLERS: &[&str] = &[
    "hi",
    "hey",
    "hello",
    "yo",
    "ok",
    "okay",
    "so",
    "also",
    "and",
    "but",
    "btw",
    "oh",
    "um",
    "quick",
    "question",
    "sorry",
    "thanks",
    "great",
    "cool",
    "hmm",
    "meanwhile",
    "then",
    "ps",
];
/// Reactions that end in `?` without asking anything.
const PHATIC: &[&str] = &[
    "right",
    "really",
    "what",
    "huh",
    "why",
    "srsly",
    "seriously",
    "ok",
    "okay",
    "lol",
    "no",
    "yes",
    "sure",
    "wait",
    "hm",
    "hmm",
    "eh",
    "how",
    "wat",
    "wut",
    "sorry",
    "pardon",
    "omg",
    "wtf",
    "is",
    "it",
    "that",
    "so",
    "and",
    "you",
    "serious",
    "true",
];

/// Classifies a segment. `names` are the lowercased aliases of participants
/// (skipped when they open the segment, as vocatives).
pub fn classify(seg: &Segment, names: &[String], addressed: bool) -> Option<Kind> {
    let lead: Vec<&str> = seg
        .words
        .iter()
        .map(String::as_str)
        .skip_while(|w| LEAD_FILLERS.contains(w) || names.iter().any(|n| n == w))
        .collect();
    let first = lead.first().copied().unwrap_or("");
    let second = lead.get(1).copied().unwrap_or("");
    let asks_person =
        matches!(first, "can" | "could" | "would" | "will") && ADDRESS_WORDS.contains(&second);
    let second_person = seg
        .words
        .iter()
        .any(|w| ADDRESS_WORDS.contains(&w.as_str()));
    let please = has_please_request(seg);
    let phrase = |p: &[&str]| {
        seg.words
            .windows(p.len())
            .any(|w| w.iter().zip(p).all(|(a, b)| a == b))
    };
    let request_phrase = phrase(&["let", "me", "know"])
        || phrase(&["lmk"])
        || phrase(&["need", "you", "to"])
        || phrase(&["don't", "forget"]);
    if asks_person || ((please || request_phrase) && (addressed || second_person)) {
        return Some(Kind::Request);
    }
    if seg.ends_with_question_mark {
        let phatic = seg.words.iter().all(|w| PHATIC.contains(&w.as_str()));
        if seg.words.is_empty() || phatic {
            return None;
        }
        return Some(Kind::Question);
    }
    if seg.ends_with_stop || lead.len() < 3 {
        return None;
    }
    let question_opening = WH.contains(&first)
        || (AUX.contains(&first)
            && (SUBJECTS.contains(&second)
                || (matches!(first, "is" | "are" | "was" | "were")
                    && BE_SUBJECTS.contains(&second))));
    question_opening.then_some(Kind::Question)
}

/// "please <verb>" (not "yes please," or "please, …").
fn has_please_request(seg: &Segment) -> bool {
    let lower = seg.display.to_lowercase();
    for marker in ["please ", "pls ", "plz "] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(marker) {
            let at = from + pos;
            let starts_word = at == 0
                || !lower[..at]
                    .chars()
                    .last()
                    .is_some_and(char::is_alphanumeric);
            let after = lower[at + marker.len()..].trim_start();
            if starts_word && after.chars().next().is_some_and(char::is_alphabetic) {
                return true;
            }
            from = at + marker.len();
        }
    }
    false
}

/// Lowercased ways a participant may be addressed: the full name and its
/// parts (split at `_`, `.`, `-`, spaces) of three letters or more.
pub fn aliases(sender: &str) -> Vec<String> {
    let lower = sender.to_lowercase();
    let mut out = vec![lower.clone()];
    for part in lower.split(|c: char| matches!(c, '_' | '.' | '-') || c.is_whitespace()) {
        if part.chars().count() >= 3
            && !crate::text::is_stopword(part)
            && !out.iter().any(|o| o == part)
        {
            out.push(part.to_owned());
        }
    }
    out
}

/// The senders (or raw mentions) a message addresses.
fn addressees(m: &MessageView<'_>, participants: &[(String, Vec<String>)]) -> Vec<String> {
    let mut to: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !name.eq_ignore_ascii_case(m.sender) && !to.contains(&name) {
            to.push(name);
        }
    };
    let resolve = |word: &str| -> Option<String> {
        participants
            .iter()
            .find(|(_, al)| al.iter().any(|a| a == word))
            .map(|(s, _)| s.clone())
    };
    for mention in &m.prepared.mentions {
        add(resolve(mention).unwrap_or_else(|| mention.clone()));
    }
    // A vocative: a participant's name among the first words of a segment
    // (after greetings), followed by a comma or a question/request.
    for seg in &m.prepared.segments {
        let first = seg.words.iter().find(|w| {
            !matches!(
                w.as_str(),
                "hi" | "hey" | "hello" | "yo" | "ok" | "okay" | "thanks" | "so" | "also"
            )
        });
        if let Some(w) = first {
            if let Some(s) = resolve(w) {
                add(s);
            }
        }
    }
    to
}

/// Finds the questions and requests in messages `since..` that no later
/// message answers.
pub fn open_questions(messages: &[MessageView<'_>], since: usize) -> Vec<Open> {
    let participants: Vec<(String, Vec<String>)> = {
        let mut seen: Vec<(String, Vec<String>)> = Vec::new();
        for m in messages {
            if !seen.iter().any(|(s, _)| s == m.sender) {
                seen.push((m.sender.to_owned(), aliases(m.sender)));
            }
        }
        seen
    };
    let all_aliases: Vec<String> = participants
        .iter()
        .flat_map(|(_, a)| a.iter().cloned())
        .collect();
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate().skip(since) {
        let to = addressees(m, &participants);
        let mut asked: Vec<(usize, Kind)> = Vec::new();
        let mut names = all_aliases.clone();
        names.extend(m.prepared.mentions.iter().cloned());
        for (k, seg) in m.prepared.segments.iter().enumerate() {
            if let Some(kind) = classify(seg, &names, !to.is_empty()) {
                asked.push((k, kind));
            }
        }
        if asked.is_empty() {
            continue;
        }
        let to_participants: Vec<&String> = to
            .iter()
            .filter(|t| participants.iter().any(|(s, _)| s == *t))
            .collect();
        let open: Vec<(usize, Kind)> = asked
            .into_iter()
            .filter(|(k, _)| !answered(messages, i, *k, &to_participants, &participants))
            .collect();
        if open.is_empty() {
            continue;
        }
        let text = open
            .iter()
            .filter_map(|(k, _)| m.prepared.segments.get(*k).map(|s| s.display.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        let kind = if open.iter().any(|(_, k)| *k == Kind::Question) {
            Kind::Question
        } else {
            Kind::Request
        };
        out.push(Open {
            message: i,
            from: m.sender.to_owned(),
            to,
            text,
            kind,
        });
    }
    out
}

fn answered(
    messages: &[MessageView<'_>],
    i: usize,
    seg: usize,
    to: &[&String],
    participants: &[(String, Vec<String>)],
) -> bool {
    let Some(asker) = messages.get(i) else {
        return true;
    };
    let q_vec = asker.vectors.get(seg).copied().flatten();
    let polar = asker.prepared.segments.get(seg).is_some_and(is_polar);
    let asker_aliases = participants
        .iter()
        .find(|(s, _)| s == asker.sender)
        .map(|(_, a)| a.as_slice())
        .unwrap_or(&[]);
    let mut first_reply = true;
    for (j, reply) in messages.iter().enumerate().skip(i + 1) {
        if reply.sender == asker.sender {
            continue;
        }
        if !to.is_empty() && !to.iter().any(|t| *t == reply.sender) {
            continue;
        }
        if quotes(&reply.prepared.quoted_words, &asker.prepared.own_words) {
            return true;
        }
        let best_sim = match q_vec {
            Some(q) => reply
                .vectors
                .iter()
                .flatten()
                .map(|v| dot(q, v))
                .fold(f32::NEG_INFINITY, f32::max),
            None => f32::NEG_INFINITY,
        };
        if best_sim >= ANSWER_SIM {
            return true;
        }
        if first_reply && j - i <= REPLY_WINDOW {
            let words: usize = reply.prepared.segments.iter().map(|s| s.words.len()).sum();
            let addresses_asker = reply
                .prepared
                .mentions
                .iter()
                .any(|m| asker_aliases.contains(m))
                || reply
                    .prepared
                    .segments
                    .first()
                    .and_then(|s| s.words.first())
                    .is_some_and(|w| asker_aliases.contains(w));
            let takes_question_up = asker
                .prepared
                .segments
                .get(seg)
                .is_some_and(|q| takes_up(q, reply, participants));
            let content: usize = reply
                .prepared
                .segments
                .iter()
                .map(|s| s.content_words)
                .sum();
            let statement = reply
                .prepared
                .segments
                .first()
                .is_some_and(|s| !s.ends_with_question_mark);
            if words <= SHORT_REPLY_WORDS
                || best_sim >= REPLY_SIM
                || (statement && content >= LONG_ANSWER_WORDS && best_sim >= LONG_ANSWER_SIM)
                || reply.prepared.has_attachment
                || addresses_asker
                || (polar && opens_with_answer(reply))
                || takes_question_up
            {
                return true;
            }
        }
        first_reply = false;
    }
    false
}

/// Words that open an answer to a wh-question, by its wh-word.
const ANSWER_FORMS: &[(&str, &[&str])] = &[
    (
        "who",
        &[
            "i", "me", "we", "i'm", "i've", "i'll", "my", "mine", "us", "nobody", "no one",
            "everyone",
        ],
    ),
    (
        "why",
        &["because", "cause", "cuz", "since", "so", "due", "to"],
    ),
    (
        "when",
        &[
            "since",
            "at",
            "on",
            "by",
            "in",
            "after",
            "before",
            "until",
            "till",
            "around",
            "about",
            "tomorrow",
            "today",
            "tonight",
            "yesterday",
            "next",
            "last",
            "this",
            "now",
            "soon",
        ],
    ),
    (
        "where",
        &[
            "at",
            "in",
            "on",
            "near",
            "by",
            "behind",
            "next",
            "outside",
            "inside",
            "upstairs",
            "downstairs",
        ],
    ),
];

/// Words that give a reason, for "… why …" questions ("did he say why").
const REASON_WORDS: &[&str] = &["because", "cause", "cuz", "since", "due", "reason"];

/// Is `reply` a statement that takes the question `q` up (see the module
/// docs)? Only ever asked of the first reply from someone else within
/// [`REPLY_WINDOW`] messages.
fn takes_up(q: &Segment, reply: &MessageView<'_>, participants: &[(String, Vec<String>)]) -> bool {
    let Some(first) = reply.prepared.segments.first() else {
        return false;
    };
    if first.ends_with_question_mark {
        return false;
    }
    let reply_words = || reply.prepared.segments.iter().flat_map(|s| s.words.iter());
    let opener = first.words.first().map(String::as_str).unwrap_or("");
    // "Since when?" — "Since the rounding change merged on Tuesday".
    if q.words
        .first()
        .is_some_and(|w| w == opener && !opener.is_empty())
    {
        return true;
    }
    for (wh, forms) in ANSWER_FORMS {
        if q.words.iter().any(|w| w == wh) {
            if forms.contains(&opener) {
                return true;
            }
            // "who has the contract?" — "Dan has it".
            if *wh == "who"
                && participants
                    .iter()
                    .any(|(_, a)| a.iter().any(|n| n == opener))
            {
                return true;
            }
        }
    }
    if q.words.iter().any(|w| w == "why")
        && reply_words().any(|w| REASON_WORDS.contains(&w.as_str()))
    {
        return true;
    }
    // A content word in common ("… the contract?" — "the contract is with legal").
    q.words
        .iter()
        .filter(|w| w.chars().count() >= 3 && !is_stopword(w))
        .any(|w| reply_words().any(|r| r == w))
}

/// Does a reply's quoted text come from this message? True when most of the
/// quoted words appear in it, in order.
fn quotes(quoted: &[String], source: &[String]) -> bool {
    if quoted.is_empty() || source.is_empty() {
        return false;
    }
    let mut it = source.iter();
    let found = quoted.iter().filter(|q| it.any(|s| s == *q)).count();
    found * 10 >= quoted.len() * 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::prepare;

    fn kind(text: &str) -> Option<Kind> {
        let p = prepare(text);
        let seg = p.segments.last().expect("a segment");
        let mut names = vec!["dan".to_owned()];
        names.extend(p.mentions.iter().cloned());
        classify(seg, &names, !p.mentions.is_empty())
    }

    #[test]
    fn classifies_questions_and_requests() {
        assert_eq!(
            kind("who is picking up nonna she cant drive at night"),
            Some(Kind::Question)
        );
        assert_eq!(
            kind("is there an elevator at the new place"),
            Some(Kind::Question)
        );
        assert_eq!(kind("customers affected?"), Some(Kind::Question));
        assert_eq!(kind("7pm?"), Some(Kind::Question));
        assert_eq!(
            kind("@tom can you add an alert on errors"),
            Some(Kind::Request)
        );
        assert_eq!(kind("Dan could you restart it please"), Some(Kind::Request));
        assert_eq!(
            kind("please send me the file, you have it"),
            Some(Kind::Request)
        );
        assert_eq!(kind("right?"), None);
        assert_eq!(kind("really??"), None);
        assert_eq!(kind("do it"), None);
        assert_eq!(kind("yes please, there's a label in the box."), None);
        assert_eq!(kind("the deploy is done."), None);
        assert_eq!(kind("please arrange early pickup"), None);
    }

    #[test]
    fn aliases_split_names() {
        assert_eq!(
            aliases("support_kim"),
            vec!["support_kim", "support", "kim"]
        );
        assert_eq!(aliases("Dan"), vec!["dan"]);
    }

    #[test]
    fn quote_matching() {
        let src: Vec<String> = "can you send the link please"
            .split(' ')
            .map(String::from)
            .collect();
        let q: Vec<String> = "send the link".split(' ').map(String::from).collect();
        assert!(quotes(&q, &src));
        let other: Vec<String> = "the weather is nice".split(' ').map(String::from).collect();
        assert!(!quotes(&other, &src));
    }
}
