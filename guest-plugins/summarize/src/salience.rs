//! What a chat segment *does* in the thread, from its wording: a decision, a
//! cause, a request, a commitment, a constraint, a concrete number or date, an
//! outcome. Embedding centrality finds what a thread talks about most; these
//! cues find what a reader must not miss even when it is said once ("no
//! campfire", "send me your passport numbers", "move the release to
//! Thursday").
//!
//! The cues are English function-word patterns and a short list of verbs, not
//! topic words: they carry over to threads about anything. Each kind counts
//! once per segment, so a long segment does not win by repeating itself.

use crate::text::Segment;

/// The kinds of salient content a segment can carry (a bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cues(u8);

impl Cues {
    pub const DECISION: Cues = Cues(1);
    pub const CAUSE: Cues = Cues(1 << 1);
    pub const REQUEST: Cues = Cues(1 << 2);
    pub const COMMITMENT: Cues = Cues(1 << 3);
    pub const CONSTRAINT: Cues = Cues(1 << 4);
    pub const DETAIL: Cues = Cues(1 << 5);
    pub const OUTCOME: Cues = Cues(1 << 6);

    pub fn has(self, other: Cues) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    fn add(&mut self, other: Cues) {
        self.0 |= other.0;
    }

    /// How many kinds are present.
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// Is this the kind of segment that states where a thread ended up (a
    /// decision or an outcome)?
    pub fn is_resolution(self) -> bool {
        self.has(Cues::DECISION) || self.has(Cues::OUTCOME)
    }
}

/// How much each kind adds to a segment's salience. Who-does-what and what was
/// asked are the easiest to lose (said once, by one person), so they weigh
/// most; a number or date alone weighs least (informativeness already
/// rewards digits).
const WEIGHTS: [(Cues, f32); 7] = [
    (Cues::COMMITMENT, 0.5),
    (Cues::REQUEST, 0.5),
    (Cues::DECISION, 0.4),
    (Cues::CAUSE, 0.5),
    (Cues::CONSTRAINT, 0.35),
    (Cues::OUTCOME, 0.3),
    (Cues::DETAIL, 0.25),
];

/// Salience in [0, 1]: 0 for a segment with no cue, the sum of its kinds'
/// weights, saturating at 1.
pub fn score(cues: Cues) -> f32 {
    WEIGHTS
        .iter()
        .filter(|(kind, _)| cues.has(*kind))
        .map(|(_, w)| w)
        .sum::<f32>()
        .min(1.0)
}

/// Words the tokenizer keeps with either apostrophe; compare on one form.
fn norm(w: &str) -> String {
    w.replace('\u{2019}', "'")
}

/// First-person subjects ("i'll", "ill" as typed in chat, "we'll").
const FIRST_PERSON_FUTURE: &[&str] = &["i'll", "ill", "we'll", "lemme"];
/// Verbs that, after "I"/"we" or at the start of a segment, commit the writer.
const COMMIT_AFTER_I: &[&str] = &[
    "will", "can", "could", "should", "shall", "take", "handle", "bring", "book", "call", "drive",
    "pick", "get", "send", "do", "own", "write", "cover", "host", "make", "pay", "order", "fix",
    "check", "ask", "sort", "grab", "set", "look", "update", "review",
];
/// Words that turn a segment into a request of the reader.
const REQUEST_STARTS: &[&str] = &[
    "please", "pls", "plz", "send", "bring", "remember", "dont", "don't", "do", "make", "let",
    "tell", "add", "check", "confirm", "sign", "fill", "pay", "book", "reply", "call", "email",
    "text", "share", "return", "keep", "avoid", "note", "submit", "buy", "order",
];
const CAUSE_WORDS: &[&str] = &[
    "because",
    "cause",
    "caused",
    "causes",
    "causing",
    "due",
    "since",
    "reason",
    "why",
    "broke",
    "broken",
    "blew",
    "blow",
    "triggered",
    "means",
    "so",
    "culprit",
    "root",
    "fault",
    "blame",
    "misconfigured",
];
const CONSTRAINT_WORDS: &[&str] = &[
    "no",
    "not",
    "never",
    "can't",
    "cant",
    "cannot",
    "won't",
    "wont",
    "don't",
    "dont",
    "doesn't",
    "doesnt",
    "mustn't",
    "shouldn't",
    "must",
    "only",
    "need",
    "needs",
    "required",
    "requires",
    "allergic",
    "ban",
    "banned",
    "deadline",
    "latest",
    "before",
    "until",
    "limit",
    "max",
    "maximum",
    "minimum",
    "budget",
    "without",
    "careful",
    "otherwise",
    "strictly",
    "forbidden",
    "closed",
    "closes",
];
const DECISION_WORDS: &[&str] = &[
    "let's",
    "lets",
    "decided",
    "decide",
    "decision",
    "agreed",
    "agree",
    "settled",
    "final",
    "chose",
    "chosen",
    "picked",
    "pick",
    "vote",
    "voted",
    "confirmed",
    "confirm",
    "approved",
    "approve",
    "moves",
    "moved",
    "move",
    "postpone",
    "postponed",
    "cancel",
    "cancelled",
    "canceled",
    "switch",
    "instead",
    "plan",
    "booked",
    "done",
    "deal",
    "winner",
];
const OUTCOME_WORDS: &[&str] = &[
    "done",
    "fixed",
    "resolved",
    "finished",
    "shipped",
    "deployed",
    "merged",
    "released",
    "booked",
    "ordered",
    "paid",
    "sent",
    "signed",
    "bought",
    "arrived",
    "arrives",
    "delivered",
    "rolled",
    "rollback",
    "recovered",
    "back",
    "works",
    "working",
    "solved",
    "approved",
    "failed",
    "lost",
    "cancelled",
    "canceled",
    "sold",
    "won",
    "hired",
];
const NUMBER_WORDS: &[&str] = &[
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "fifteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "hundred",
    "thousand",
    "million",
    "dozen",
    "half",
    "double",
    "twice",
    "noon",
    "midnight",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "tomorrow",
    "tonight",
    "weekend",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "week",
    "month",
];

/// The cues of one segment.
pub fn cues(segment: &Segment) -> Cues {
    let words: Vec<String> = segment.words.iter().map(|w| norm(w)).collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    let pair = |a: &str, b: &[&str]| {
        words
            .windows(2)
            .any(|p| p[0] == a && b.contains(&p[1].as_str()))
    };
    let mut c = Cues::default();

    // Commitment: "I'll …", "I can drive", "we will …", "will pick everyone
    // up" (a segment that starts with the modal: the subject is the sender).
    let first = words.first().map(String::as_str).unwrap_or("");
    if has(FIRST_PERSON_FUTURE)
        || pair("i", COMMIT_AFTER_I)
        || pair("we", &["will", "can", "should", "shall"])
        || pair(
            "i'm",
            &["going", "gonna", "on", "taking", "bringing", "driving"],
        )
        || pair(
            "im",
            &["going", "gonna", "on", "taking", "bringing", "driving"],
        )
        || first == "will"
        || (pair("on", &["it"]) && words.len() <= 4)
    {
        c.add(Cues::COMMITMENT);
    }
    // Request: a question or imperative aimed at the reader.
    if pair("can", &["you", "u", "someone", "somebody", "anyone", "we"])
        || pair(
            "could",
            &["you", "u", "someone", "somebody", "anyone", "we"],
        )
        || pair("would", &["you", "u"])
        || pair("need", &["you", "u", "someone", "everyone", "everybody"])
        || pair("make", &["sure"])
        || pair("send", &["me", "us", "it", "them", "your", "the"])
        || has(&["please", "pls", "plz", "asap"])
        || REQUEST_STARTS.contains(&first) && !segment.ends_with_question_mark
        || pair("we", &["should", "need", "must"])
        || pair("you", &["should", "need", "must", "have"])
    {
        c.add(Cues::REQUEST);
    }
    if has(CAUSE_WORDS)
        || pair("the", &["reason", "cause", "problem", "issue", "bug"])
        || pair("found", &["it", "the"])
        || pair("turns", &["out"])
        || pair("turned", &["out"])
    {
        c.add(Cues::CAUSE);
    }
    if has(CONSTRAINT_WORDS) {
        c.add(Cues::CONSTRAINT);
    }
    if has(DECISION_WORDS)
        || pair("we", &["will", "are", "go", "do"])
        || pair("go", &["with", "for", "ahead"])
    {
        c.add(Cues::DECISION);
    }
    if has(OUTCOME_WORDS) {
        c.add(Cues::OUTCOME);
    }
    if segment.has_digit || has(NUMBER_WORDS) || segment.display.contains(['$', '€', '£', '%']) {
        c.add(Cues::DETAIL);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::segment;

    fn cues_of(text: &str) -> Cues {
        let segs = segment(text);
        segs.iter().fold(Cues::default(), |mut acc, s| {
            acc.add(cues(s));
            acc
        })
    }

    #[test]
    fn the_reported_misses_carry_cues() {
        assert!(cues_of("let's move the release to Thursday").has(Cues::DECISION));
        assert!(cues_of("send me your passport numbers").has(Cues::REQUEST));
        assert!(cues_of("not chocolate, Grandad can't have it").has(Cues::CONSTRAINT));
        assert!(cues_of("roughly 4k failed checkouts, nobody was charged").has(Cues::DETAIL));
        assert!(cues_of("I'll own the postmortem, draft by thursday").has(Cues::COMMITMENT));
        assert!(cues_of("the deploy caused it because workers went from 8 to 32").has(Cues::CAUSE));
        assert!(cues_of("rollback done at 14:22").is_resolution());
        assert!(
            cues_of("found it: the parser divides by zero when the field is empty")
                .has(Cues::CAUSE)
        );
        assert!(cues_of("ill get her at 6:30").has(Cues::COMMITMENT));
        assert!(cues_of("I can drive, my car fits 5 people").has(Cues::COMMITMENT));
    }

    #[test]
    fn small_talk_carries_none() {
        for text in [
            "lol same",
            "haha nice one",
            "thanks all",
            "sounds good to me",
        ] {
            assert_eq!(score(cues_of(text)), 0.0, "{text}");
        }
    }

    #[test]
    fn score_saturates() {
        let c = cues_of("I'll book it for Sunday 7pm because they close at 9, don't be late");
        assert!(c.count() >= 3);
        assert_eq!(score(c), 1.0);
    }
}
