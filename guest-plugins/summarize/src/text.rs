//! Chat text: quoted replies, code blocks, URLs, emoji, sentence segments.
//!
//! Everything here is pure string processing. Byte offsets only ever fall on
//! whitespace boundaries or come from `char_indices`, so slicing never splits
//! a character.

/// Segments longer than this many words are split at soft boundaries (commas,
/// discourse markers): chat messages often run several thoughts together
/// without punctuation.
pub const MAX_SEGMENT_WORDS: usize = 36;
/// Words passed to the model per segment at most (the model's context is 128
/// word pieces; the host truncates beyond it anyway, this keeps batches short).
pub const MAX_EMBED_WORDS: usize = 64;
/// Bullet and question texts longer than this many characters are shortened
/// at a word boundary.
pub const MAX_DISPLAY_CHARS: usize = 280;

/// One message after preprocessing.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The message's own text, split into segments (quotes and code removed).
    pub segments: Vec<Segment>,
    /// The quoted lines (`> ...`), joined, lowercased alphanumeric words.
    pub quoted_words: Vec<String>,
    /// The message carries something besides prose: a code block or a URL.
    pub has_attachment: bool,
    /// All of the message's own words, lowercased (for quote matching).
    pub own_words: Vec<String>,
    /// `@mentions` anywhere in the message's own text (without the `@`).
    pub mentions: Vec<String>,
}

/// One sentence-like unit of a message.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// The text to show: the original text, whitespace collapsed, leading and
    /// trailing emoji removed, URLs and inner emoji kept.
    pub display: String,
    /// The text to embed: no emoji, URLs reduced to their host, chat
    /// abbreviations spelled out, mentions without `@`.
    pub embed: String,
    /// Word tokens, lowercased, punctuation stripped (URLs and emoji are not
    /// words).
    pub words: Vec<String>,
    /// How many of `words` carry content (not function words or fillers).
    pub content_words: usize,
    /// Contains a digit (times, dates, amounts, ids).
    pub has_digit: bool,
    /// Contains a URL.
    pub has_url: bool,
    /// Ends with a question mark (ignoring trailing emoji and quotes).
    pub ends_with_question_mark: bool,
    /// Ends with `.` or `!` (a statement, not a question without its mark).
    pub ends_with_stop: bool,
}

/// Splits a message into its own text and quoted lines, drops code blocks,
/// and segments the own text.
pub fn prepare(text: &str) -> Prepared {
    let mut own = String::with_capacity(text.len());
    let mut quoted = String::new();
    let mut in_code = false;
    let mut has_attachment = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(after_fence) = trimmed.strip_prefix("```") {
            // A fence line: opens or closes a code block. Text after an
            // opening fence on the same line is the language tag or code.
            in_code = !in_code;
            has_attachment = true;
            // "```one-liner```" opens and closes on the same line.
            if in_code && after_fence.contains("```") {
                in_code = false;
            }
            own.push('\n');
            continue;
        }
        if in_code {
            continue;
        }
        if is_quote_line(trimmed) {
            quoted.push_str(trimmed.trim_start_matches(['>', ' ', '\t']));
            quoted.push('\n');
            continue;
        }
        own.push_str(line);
        own.push('\n');
    }
    let segments = segment(&own);
    has_attachment |= segments.iter().any(|s| s.has_url);
    let own_words = words_of(&own);
    let mentions = mentions_of(&own);
    Prepared {
        segments,
        quoted_words: words_of(&quoted),
        has_attachment,
        own_words,
        mentions,
    }
}

/// A quoted line: `> text` (email and chat convention), not `>=` or `->`.
fn is_quote_line(trimmed: &str) -> bool {
    let rest = match trimmed.strip_prefix('>') {
        Some(r) => r,
        None => return false,
    };
    !rest.starts_with('=')
}

/// Lowercased alphanumeric words of a text (URLs and emoji skipped).
pub fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|c| !is_url(c))
        .filter_map(word_core)
        .collect()
}

fn mentions_of(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for chunk in text.split_whitespace() {
        if let Some(m) = mention(chunk) {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// `@name` (letters, digits, `_`, `-`, `.`), lowercased, trailing punctuation
/// dropped. An e-mail address is not a mention.
pub fn mention(chunk: &str) -> Option<String> {
    let start = chunk.trim_start_matches(['(', '[', '"', '\'']);
    let name = start.strip_prefix('@')?;
    let name: String = name
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    let name = name.trim_end_matches(['.', '-']);
    if name.is_empty() {
        None
    } else {
        Some(name.to_lowercase())
    }
}

/// A whitespace-delimited chunk with its byte range in the source text.
#[derive(Debug, Clone, Copy)]
struct Chunk<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    kind: ChunkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkKind {
    /// Ordinary text, possibly with punctuation or emoji attached.
    Text,
    /// An `http(s)://` or `www.` link.
    Url,
    /// Only emoji, or a text emoticon such as `:)`.
    Emoji,
}

impl Chunk<'_> {
    fn is_word(&self) -> bool {
        self.kind == ChunkKind::Text && word_core(self.text).is_some()
    }
}

fn chunks(line: &str, base: usize) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(make_chunk(&line[s..i], base + s, base + i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(make_chunk(&line[s..], base + s, base + line.len()));
    }
    out
}

fn make_chunk(text: &str, start: usize, end: usize) -> Chunk<'_> {
    let kind = if is_url(text) {
        ChunkKind::Url
    } else if is_emoticon(text) || text.chars().all(|c| is_emoji(c) || is_emoji_modifier(c)) {
        ChunkKind::Emoji
    } else {
        ChunkKind::Text
    };
    Chunk {
        text,
        start,
        end,
        kind,
    }
}

/// `http://`, `https://` or `www.` (possibly inside brackets or quotes).
pub fn is_url(chunk: &str) -> bool {
    let c = chunk.trim_start_matches(['(', '[', '<', '"', '\'']);
    let lower = c.get(..8).unwrap_or(c).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("www.")
}

/// Text emoticons that stand alone as a chunk.
fn is_emoticon(chunk: &str) -> bool {
    const EMOTICONS: &[&str] = &[
        ":)",
        ":-)",
        ":(",
        ":-(",
        ":D",
        ":-D",
        ";)",
        ";-)",
        ":P",
        ":-P",
        ":p",
        ":-p",
        "xD",
        "XD",
        ":/",
        ":-/",
        ":'(",
        "<3",
        ":o",
        ":O",
        "^^",
        "^_^",
        "-_-",
        "o_O",
        "O_o",
        ":|",
        "¯\\_(ツ)_/¯",
    ];
    EMOTICONS.contains(&chunk)
}

/// Pictographic emoji and symbols (not letters, digits or ordinary
/// punctuation). A range check: exact emoji properties are not needed to
/// keep them out of words and sentence text.
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF   // emoticons, pictographs, transport, flags, supplemental
        | 0x2600..=0x27BF   // misc symbols, dingbats
        | 0x2B00..=0x2BFF   // arrows, stars
        | 0x2300..=0x23FF   // misc technical (⌚ ⏰ ⏳)
        | 0x2190..=0x21FF   // arrows
        | 0x3030 | 0x303D | 0x3297 | 0x3299)
}

/// Joiners and modifiers that only make sense next to an emoji.
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c as u32,
        0x200D                // zero-width joiner
        | 0xFE0E | 0xFE0F     // variation selectors
        | 0x20E3              // keycap
        | 0xE0020..=0xE007F
    ) // tags
}

fn is_emojiish(c: char) -> bool {
    is_emoji(c) || is_emoji_modifier(c)
}

/// The word inside a chunk: surrounding punctuation and emoji stripped,
/// lowercased. `None` if nothing alphanumeric remains.
pub fn word_core(chunk: &str) -> Option<String> {
    let core = chunk.trim_matches(|c: char| !c.is_alphanumeric());
    if core.is_empty() {
        return None;
    }
    let w: String = core
        .chars()
        .filter(|c| !is_emojiish(*c))
        .flat_map(char::to_lowercase)
        .collect();
    if w.chars().any(char::is_alphanumeric) {
        Some(w)
    } else {
        None
    }
}

/// Abbreviations whose final `.` does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g.", "i.e.", "eg.", "ie.", "vs.", "mr.", "mrs.", "ms.", "dr.", "st.", "no.", "approx.",
    "ca.", "cf.", "fig.", "jr.", "sr.", "etc.", "incl.", "min.", "max.", "p.s.",
];

/// Does a sentence end after this chunk?
fn ends_sentence(chunk: &Chunk<'_>) -> bool {
    match chunk.kind {
        ChunkKind::Emoji => return false,
        // A link at the end of a sentence: "see https://x.org/a."
        ChunkKind::Url => return chunk.text.ends_with(['.', '!', '?']),
        ChunkKind::Text => {}
    }
    let t = chunk.text.trim_end_matches(|c: char| {
        matches!(c, ')' | ']' | '"' | '\'' | '*' | '_') || is_emojiish(c)
    });
    let Some(last) = t.chars().last() else {
        return false;
    };
    if !matches!(last, '.' | '!' | '?' | '…') {
        return false;
    }
    let lower = t.to_lowercase();
    if last == '.' {
        if ABBREVIATIONS.iter().any(|a| lower.ends_with(a)) && !lower.ends_with("..") {
            return false;
        }
        // An initial such as "J." or a list number "1."
        let core: Vec<char> = lower.trim_end_matches('.').chars().collect();
        if core.len() == 1 && core[0].is_alphabetic() {
            return false;
        }
        if !core.is_empty() && core.iter().all(char::is_ascii_digit) && core.len() <= 2 {
            return false;
        }
    }
    true
}

/// Does the chunk end with an emoji (attached or alone)? Emoji often stand
/// where chat writers would put a full stop.
fn ends_with_emoji(chunk: &Chunk<'_>) -> bool {
    match chunk.kind {
        ChunkKind::Emoji => true,
        ChunkKind::Url => false,
        ChunkKind::Text => chunk.text.chars().last().is_some_and(is_emojiish),
    }
}

/// Splits text into segments: at line breaks, at sentence-final punctuation,
/// at emoji between two runs of words, and within over-long runs at soft
/// boundaries.
pub fn segment(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        let cs = chunks(line, offset);
        offset += line.len() + 1;
        let mut groups: Vec<Vec<Chunk<'_>>> = Vec::new();
        let mut current: Vec<Chunk<'_>> = Vec::new();
        for (i, c) in cs.iter().enumerate() {
            current.push(*c);
            let words_before = current.iter().filter(|c| c.is_word()).count();
            let boundary = if ends_sentence(c) {
                true
            } else if ends_with_emoji(c) {
                let words_after = cs[i + 1..].iter().take(4).filter(|c| c.is_word()).count();
                words_before >= 2 && words_after >= 2
            } else {
                false
            };
            if boundary {
                groups.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            groups.push(current);
        }
        for g in groups {
            for piece in split_long(g) {
                if let Some(s) = build_segment(text, &piece) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Words that often start a new thought in unpunctuated chat.
const DISCOURSE_MARKERS: &[&str] = &[
    "so",
    "but",
    "also",
    "then",
    "btw",
    "anyway",
    "anyways",
    "meanwhile",
    "because",
    "plus",
    "however",
    "otherwise",
];

/// Splits a run of chunks with more than [`MAX_SEGMENT_WORDS`] words at the
/// soft boundary nearest its middle (after a `,` or `;`, or before a
/// discourse marker), recursively; leaves it whole if there is none.
fn split_long(group: Vec<Chunk<'_>>) -> Vec<Vec<Chunk<'_>>> {
    let word_count = group.iter().filter(|c| c.is_word()).count();
    if word_count <= MAX_SEGMENT_WORDS {
        return vec![group];
    }
    let mut words_before = vec![0usize; group.len() + 1];
    for (i, c) in group.iter().enumerate() {
        words_before[i + 1] = words_before[i] + usize::from(c.is_word());
    }
    let min_side = 5;
    let mut best: Option<(usize, usize)> = None; // (split index, distance to middle)
    for i in 1..group.len() {
        let prev = &group[i - 1];
        let next_word = word_core(group[i].text).unwrap_or_default();
        let soft = prev.text.ends_with([',', ';', ':'])
            || (group[i].kind == ChunkKind::Text
                && DISCOURSE_MARKERS.contains(&next_word.as_str()));
        let (left, right) = (words_before[i], word_count - words_before[i]);
        if !soft || left < min_side || right < min_side {
            continue;
        }
        let dist = left.abs_diff(word_count / 2);
        if best.is_none_or(|(_, d)| dist < d) {
            best = Some((i, dist));
        }
    }
    match best {
        Some((i, _)) => {
            let mut g = group;
            let right = g.split_off(i);
            let mut out = split_long(g);
            out.extend(split_long(right));
            out
        }
        None => vec![group],
    }
}

fn build_segment(text: &str, chunks: &[Chunk<'_>]) -> Option<Segment> {
    let first = chunks.first()?;
    let last = chunks.last()?;
    let raw = text.get(first.start..last.end)?;
    let mut words = Vec::new();
    let mut embed = Vec::new();
    let mut has_url = false;
    for c in chunks {
        match c.kind {
            ChunkKind::Url => {
                has_url = true;
                if let Some(host) = url_host(c.text) {
                    embed.push(host);
                    embed.push("link".to_owned());
                }
            }
            ChunkKind::Emoji => {}
            ChunkKind::Text => {
                if let Some(w) = word_core(c.text) {
                    words.push(w);
                }
                if let Some(t) = embed_form(c.text) {
                    embed.push(t);
                }
            }
        }
    }
    if words.is_empty() && !has_url {
        return None;
    }
    if embed.len() > MAX_EMBED_WORDS {
        embed.truncate(MAX_EMBED_WORDS);
    }
    let content_words = words.iter().filter(|w| !is_stopword(w)).count();
    let has_digit = words.iter().any(|w| w.chars().any(|c| c.is_ascii_digit()));
    let tail = raw.trim_end_matches(|c: char| {
        c.is_whitespace() || is_emojiish(c) || matches!(c, ')' | '"' | '\'')
    });
    let tail = trim_trailing_emoticon(tail);
    let ends_with_question_mark = tail.ends_with('?');
    let ends_with_stop = tail.ends_with(['.', '!']);
    let display = display_text(chunks);
    if display.is_empty() {
        return None;
    }
    Some(Segment {
        display,
        embed: embed.join(" "),
        words,
        content_words,
        has_digit,
        has_url,
        ends_with_question_mark,
        ends_with_stop,
    })
}

fn trim_trailing_emoticon(s: &str) -> &str {
    let s = s.trim_end();
    match s.rsplit_once(char::is_whitespace) {
        Some((head, last)) if is_emoticon(last) => head.trim_end(),
        _ => s,
    }
}

/// The text shown to the user: chunks joined by single spaces, without
/// leading or trailing emoji, shortened to [`MAX_DISPLAY_CHARS`].
fn display_text(chunks: &[Chunk<'_>]) -> String {
    let start = chunks.iter().position(|c| c.kind != ChunkKind::Emoji);
    let end = chunks.iter().rposition(|c| c.kind != ChunkKind::Emoji);
    let (Some(start), Some(end)) = (start, end) else {
        return String::new();
    };
    let mut parts: Vec<&str> = chunks[start..=end].iter().map(|c| c.text).collect();
    // Emoji glued to the first or last word ("done✅").
    if let Some(first) = parts.first_mut() {
        *first = first.trim_start_matches(is_emojiish);
    }
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(is_emojiish);
    }
    let joined = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    shorten(&joined, MAX_DISPLAY_CHARS)
}

/// Shortens to at most `max` characters at a word boundary, adding `…`.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut = s
        .char_indices()
        .nth(max.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let head = &s[..cut];
    let head = match head.rfind(char::is_whitespace) {
        Some(i) if i > cut / 2 => &head[..i],
        _ => head,
    };
    format!("{}…", head.trim_end())
}

/// The host of a URL without `www.`, e.g. `docs.google.com`.
fn url_host(chunk: &str) -> Option<String> {
    let c = chunk.trim_start_matches(['(', '[', '<', '"', '\'']);
    let rest = c
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(c)
        .trim_start_matches("www.");
    let host: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let host = host.trim_matches('.');
    if host.is_empty() {
        None
    } else {
        Some(host.to_lowercase())
    }
}

/// Chat shorthand spelled out for the model (its vocabulary is mostly of
/// edited English).
const SHORTHAND: &[(&str, &str)] = &[
    ("u", "you"),
    ("ur", "your"),
    ("r", "are"),
    ("pls", "please"),
    ("plz", "please"),
    ("thx", "thanks"),
    ("ty", "thank you"),
    ("tmrw", "tomorrow"),
    ("tmr", "tomorrow"),
    ("tmw", "tomorrow"),
    ("idk", "I don't know"),
    ("btw", "by the way"),
    ("imo", "in my opinion"),
    ("imho", "in my opinion"),
    ("lmk", "let me know"),
    ("b4", "before"),
    ("bc", "because"),
    ("cuz", "because"),
    ("msg", "message"),
    ("asap", "as soon as possible"),
    ("eta", "expected arrival time"),
    ("rn", "right now"),
    ("nvm", "never mind"),
    ("ppl", "people"),
    ("tho", "though"),
    ("wanna", "want to"),
    ("gonna", "going to"),
    ("gotta", "have to"),
    ("w/", "with"),
    ("w/o", "without"),
    ("fyi", "for your information"),
    ("afaik", "as far as I know"),
    ("np", "no problem"),
    ("wfh", "work from home"),
    ("ooo", "out of office"),
    ("eod", "end of day"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("thurs", "thursday"),
    ("fri", "friday"),
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("tues", "tuesday"),
];

/// A text chunk as the model should see it: emoji removed, `@` dropped from
/// mentions, shorthand spelled out, letters repeated more than twice
/// shortened ("sooooo" → "soo").
fn embed_form(chunk: &str) -> Option<String> {
    let no_emoji: String = chunk.chars().filter(|c| !is_emojiish(*c)).collect();
    let t = no_emoji.trim_start_matches('@');
    if t.is_empty() {
        return None;
    }
    let lower = t.to_lowercase();
    let core = lower.trim_matches(|c: char| !c.is_alphanumeric() && c != '/');
    if let Some((_, long)) = SHORTHAND.iter().find(|(s, _)| *s == core) {
        // Keep trailing punctuation (it matters for questions).
        let trail: String = t
            .chars()
            .rev()
            .take_while(|c| !c.is_alphanumeric() && *c != '/')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Some(format!("{long}{trail}"));
    }
    let mut out = String::with_capacity(t.len());
    let mut run = 0;
    let mut prev = None;
    for c in t.chars() {
        if Some(c) == prev && c.is_alphabetic() {
            run += 1;
        } else {
            run = 1;
        }
        prev = Some(c);
        if run <= 2 {
            out.push(c);
        }
    }
    Some(out)
}

/// Function words and chat fillers: words that carry no content of their
/// own. A segment made only of these ("ok thanks", "lol same") is not
/// summary material.
pub fn is_stopword(w: &str) -> bool {
    const STOP: &[&str] = &[
        // function words
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "up",
        "down",
        "out",
        "off",
        "over",
        "about",
        "as",
        "into",
        "than",
        "then",
        "too",
        "very",
        "just",
        "also",
        "still",
        "already",
        "again",
        "really",
        "even",
        "i",
        "me",
        "my",
        "mine",
        "we",
        "us",
        "our",
        "you",
        "your",
        "yours",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "is",
        "am",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "will",
        "would",
        "can",
        "could",
        "should",
        "shall",
        "may",
        "might",
        "must",
        "not",
        "no",
        "yes",
        "what",
        "who",
        "whom",
        "which",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "some",
        "one",
        "it's",
        "i'm",
        "i'll",
        "i've",
        "i'd",
        "you're",
        "you'll",
        "we're",
        "we'll",
        "that's",
        "there's",
        "don't",
        "doesn't",
        "didn't",
        "can't",
        "won't",
        "isn't",
        "aren't",
        "let's",
        "im",
        "ill",
        "ive",
        "dont",
        "cant",
        "wont",
        "thats",
        "its'",
        "u",
        "ur",
        "r",
        "too",
        "now",
        "get",
        "got",
        "go",
        "going",
        "like",
        "well",
        "much",
        "more",
        "only",
        "for",
        "let",
        // chat fillers and reactions
        "ok",
        "okay",
        "k",
        "kk",
        "lol",
        "lmao",
        "haha",
        "hahaha",
        "hah",
        "yeah",
        "yep",
        "yup",
        "yea",
        "nope",
        "nah",
        "sure",
        "thanks",
        "thank",
        "thx",
        "ty",
        "cool",
        "nice",
        "great",
        "awesome",
        "perfect",
        "amazing",
        "legend",
        "fair",
        "np",
        "omg",
        "ugh",
        "hmm",
        "hm",
        "wow",
        "oh",
        "ah",
        "meh",
        "hi",
        "hey",
        "hello",
        "yo",
        "bye",
        "same",
        "agreed",
        "+1",
        "true",
        "totally",
        "exactly",
        "definitely",
        "works",
        "good",
        "fine",
        "sounds",
        "rip",
        "please",
        "pls",
        "plz",
        "btw",
        "fwiw",
        "tbh",
        "honestly",
        "literally",
        "things",
        "thing",
        "stuff",
        "guys",
        "everyone",
        "anyone",
        "someone",
        "people",
        "lot",
        "bit",
        "right",
        "one",
    ];
    STOP.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn displays(text: &str) -> Vec<String> {
        prepare(text)
            .segments
            .into_iter()
            .map(|s| s.display)
            .collect()
    }

    #[test]
    fn splits_sentences_not_urls_numbers_or_abbreviations() {
        assert_eq!(
            displays("Error rate is 0.1% now. See https://status.example.com/x. E.g. the API is fine! Ok?"),
            vec![
                "Error rate is 0.1% now.",
                "See https://status.example.com/x.",
                "E.g. the API is fine!",
                "Ok?"
            ]
        );
    }

    #[test]
    fn emoji_between_thoughts_splits_and_is_trimmed() {
        assert_eq!(
            displays("the demo went great 🎉 everyone loved the new dashboard 😍"),
            vec!["the demo went great", "everyone loved the new dashboard"]
        );
        // An emoji inside a short phrase does not split it.
        assert_eq!(displays("I ❤️ this"), vec!["I ❤️ this"]);
        assert!(displays("🔥🔥🔥").is_empty());
        assert!(displays(":)").is_empty());
    }

    #[test]
    fn quotes_and_code_are_not_own_content() {
        let p = prepare("> can you send the link?\n> thanks\nhere it is https://x.org/a\n```\npanic at foo.rs:1\n```");
        assert_eq!(p.segments.len(), 1);
        assert_eq!(p.segments[0].display, "here it is https://x.org/a");
        assert_eq!(
            p.quoted_words,
            vec!["can", "you", "send", "the", "link", "thanks"]
        );
        assert!(p.has_attachment);
        assert!(!p.own_words.contains(&"panic".to_owned()));
        // `>=` is not a quote.
        assert_eq!(displays(">= 3 people needed"), vec![">= 3 people needed"]);
    }

    #[test]
    fn embed_form_drops_emoji_and_expands_shorthand() {
        let s =
            &prepare("@maya can u send it tmrw pls 🙏 https://www.example.com/doc/1").segments[0];
        assert_eq!(
            s.embed,
            "maya can you send it tomorrow please example.com link"
        );
        assert!(s.has_url);
        assert_eq!(
            s.display,
            "@maya can u send it tmrw pls 🙏 https://www.example.com/doc/1"
        );
    }

    #[test]
    fn long_unpunctuated_runs_split_at_soft_boundaries() {
        let text = "ok so i talked to the landlord today and he said the heater gets fixed on tuesday morning between nine and twelve but someone has to be home to let the technician in and also the rent is going up next march by fifty in total";
        let segs = displays(text);
        assert!(segs.len() >= 2, "{segs:?}");
        assert!(segs
            .iter()
            .all(|s| s.split_whitespace().count() <= MAX_SEGMENT_WORDS));
    }

    #[test]
    fn question_marks_and_mentions() {
        let p = prepare("@Tom can you add an alert? 🙏");
        assert!(p.segments[0].ends_with_question_mark);
        assert_eq!(p.mentions, vec!["tom"]);
        assert_eq!(mention("me@example.com"), None);
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        let s = "é".repeat(400);
        let t = shorten(&s, 10);
        assert!(t.chars().count() <= 11);
        assert_eq!(shorten("short", 10), "short");
    }

    #[test]
    fn content_words_ignore_fillers() {
        let s = &prepare("ok thanks lol").segments[0];
        assert_eq!(s.content_words, 0);
        let s = &prepare("I rented a 15ft truck, pickup at 8am").segments[0];
        assert!(s.content_words >= 4 && s.has_digit);
    }
}
