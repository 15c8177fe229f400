//! Exact token counts with OpenAI's byte-pair encodings (`o200k_base`,
//! `cl100k_base`) from one compact rank table each, in a few MiB rather than
//! the ~40 MiB of a full encoder/decoder (tiktoken-rs keeps three copies of a
//! 200k-token vocabulary; a count needs none of them).
//!
//! The tables are made at build time (`build.rs`, from tiktoken-rs's
//! vocabularies) and embedded: every ordinary token's bytes, sorted, with its
//! rank. Counting is tiktoken's algorithm: the text is split around special
//! tokens, then into pieces by the encoding's pre-tokenizer pattern; a piece
//! that is a token counts one, any other is merged pair by pair, lowest rank
//! first, and counts the parts that remain.
//!
//! The work is linear in the text, whatever the text: special tokens are
//! found in one pass (Aho-Corasick), merging is windowed, and a text longer
//! than [`EXACT_LIMIT`] is counted exactly up to it and the rest
//! extrapolated at the same rate (an estimate either way) — a crafted
//! response must not hold up the thread that drains the kernel's events.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use fancy_regex::Regex;

/// Bytes of a text counted exactly; beyond, the count is extrapolated.
pub const EXACT_LIMIT: usize = 64 * 1024;

/// Pieces longer than this are merged window by window: merging is
/// quadratic in a piece's length, and a piece this long (a run of
/// whitespace or punctuation) is rare in text and could be hostile.
const MERGE_WINDOW: usize = 1024;

/// The pre-tokenizer of `o200k_base` (OpenAI's published pattern).
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+(?!\S)",
    r"|\s+",
);

/// The pre-tokenizer of `cl100k_base` (OpenAI's published pattern).
pub const CL100K_PATTERN: &str = concat!(
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+",
    r"|\s++$|\s*[\r\n]|\s+(?!\S)|\s",
);

/// One encoding: its ranks, pre-tokenizer and special tokens.
pub struct Encoding {
    ranks: RankTable,
    pieces: Regex,
    specials: AhoCorasick,
}

impl Encoding {
    /// `o200k_base`: gpt-4o, gpt-4.1, gpt-5, the o-series.
    pub fn o200k() -> &'static Self {
        static ENCODING: OnceLock<Encoding> = OnceLock::new();
        ENCODING.get_or_init(|| {
            let table = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.ranks"));
            Self::new(table, O200K_PATTERN, &["<|endoftext|>", "<|endofprompt|>"])
        })
    }

    /// `cl100k_base`: gpt-4, gpt-3.5, the text-embedding models.
    pub fn cl100k() -> &'static Self {
        static ENCODING: OnceLock<Encoding> = OnceLock::new();
        ENCODING.get_or_init(|| {
            let table = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.ranks"));
            let specials = &["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"];
            Self::new(table, CL100K_PATTERN, specials)
        })
    }

    fn new(table: &'static [u8], pattern: &str, specials: &'static [&'static str]) -> Self {
        #[expect(clippy::expect_used, reason = "a constant pattern, compiled in every test run")]
        let pieces = Regex::new(pattern).expect("the pre-tokenizer pattern compiles");
        #[expect(clippy::expect_used, reason = "constant literals, built in every test run")]
        let specials = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(specials)
            .expect("the special tokens make an automaton");
        Self { ranks: RankTable::new(table), pieces, specials }
    }

    /// Tokens in `text`, special tokens (`<|endoftext|>`, …) counting one each.
    pub fn count(&self, text: &str) -> usize {
        if text.len() <= EXACT_LIMIT {
            return self.count_exactly(text);
        }
        let mut end = EXACT_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let counted = self.count_exactly(&text[..end]);
        (counted as f64 * text.len() as f64 / end as f64).round() as usize
    }

    /// Special tokens count one each; the text between them is split and merged.
    fn count_exactly(&self, text: &str) -> usize {
        let mut tokens = 0;
        let mut start = 0;
        for special in self.specials.find_iter(text) {
            tokens += self.count_ordinary(&text[start..special.start()]) + 1;
            start = special.end();
        }
        tokens + self.count_ordinary(&text[start..])
    }

    fn count_ordinary(&self, text: &str) -> usize {
        let mut tokens = 0;
        let mut counted = 0;
        for found in self.pieces.find_iter(text) {
            let Ok(piece) = found else {
                // The pattern gave up (backtracking limit): estimate the rest.
                return tokens + text[counted..].len().div_ceil(4);
            };
            tokens += self.count_piece(piece.as_str().as_bytes());
            counted = piece.end();
        }
        tokens
    }

    fn count_piece(&self, piece: &[u8]) -> usize {
        if self.ranks.rank(piece).is_some() {
            return 1;
        }
        piece.chunks(MERGE_WINDOW).map(|window| self.merged_parts(window)).sum()
    }

    /// Byte-pair merging: starting from single bytes, the adjacent pair whose
    /// union has the lowest rank (the leftmost on a tie) is merged, until no
    /// adjacent pair is a token. Returns how many parts remain.
    fn merged_parts(&self, piece: &[u8]) -> usize {
        if piece.len() <= 1 {
            return piece.len();
        }
        // `starts[i]..starts[i + 1]` is part i; the last entry ends the piece.
        let mut starts: Vec<usize> = (0..=piece.len()).collect();
        let union_rank = |starts: &[usize], i: usize| -> Option<u32> {
            let end = *starts.get(i + 2)?;
            self.ranks.rank(&piece[starts[i]..end])
        };
        // `unions[i]`: the rank of part i joined with part i + 1.
        let mut unions: Vec<Option<u32>> = (0..piece.len()).map(|i| union_rank(&starts, i)).collect();
        while let Some(i) = lowest(&unions) {
            starts.remove(i + 1);
            unions.remove(i + 1);
            unions[i] = union_rank(&starts, i);
            if i > 0 {
                unions[i - 1] = union_rank(&starts, i - 1);
            }
        }
        starts.len() - 1
    }
}

/// Index of the lowest rank, the leftmost among equals; None when no pair merges.
fn lowest(unions: &[Option<u32>]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, rank) in unions.iter().enumerate() {
        if let Some(rank) = *rank
            && best.is_none_or(|(_, lowest)| rank < lowest)
        {
            best = Some((i, rank));
        }
    }
    best.map(|(i, _)| i)
}

/// Every ordinary token of an encoding, sorted by its bytes, with its rank,
/// as `build.rs` lays it out (little-endian u32s): the token count N, N ranks,
/// N + 1 offsets into the bytes that follow, the tokens' bytes.
struct RankTable {
    ranks: &'static [u8],
    offsets: &'static [u8],
    bytes: &'static [u8],
    len: usize,
}

impl RankTable {
    fn new(table: &'static [u8]) -> Self {
        let len = u32_at(table, 0) as usize;
        let ranks_at = 4;
        let offsets_at = ranks_at + 4 * len;
        let bytes_at = offsets_at + 4 * (len + 1);
        Self {
            ranks: &table[ranks_at..offsets_at],
            offsets: &table[offsets_at..bytes_at],
            bytes: &table[bytes_at..],
            len,
        }
    }

    fn token(&self, index: usize) -> &'static [u8] {
        let (start, end) = (u32_at(self.offsets, index) as usize, u32_at(self.offsets, index + 1) as usize);
        &self.bytes[start..end]
    }

    fn rank(&self, bytes: &[u8]) -> Option<u32> {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.token(middle).cmp(bytes) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(u32_at(self.ranks, middle)),
            }
        }
        None
    }
}

fn u32_at(bytes: &[u8], index: usize) -> u32 {
    let at = index * 4;
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts of the kinds prompts and replies are made of.
    const SAMPLES: &[&str] = &[
        "",
        "Hello, world!",
        "What is the capital of France? Answer in one word.",
        "  leading and trailing spaces   ",
        "tabs\tand\nnew\r\nlines\n\n\n",
        "def main():\n    for i in range(10):\n        print(f\"{i:>3}\")\n",
        "{\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
        "1234567890 3.14159 -42 1e-9 0xDEADBEEF",
        "I'm sure you've heard they'll say we're DONE'S",
        "Ünïcödé: naïve café, Straße, Москва, 東京, 서울, العربية, हिन्दी",
        "emoji 👍🏽 🎉🎉 family 👨‍👩‍👧‍👦",
        "URL https://example.com/path?q=1&r=two#frag and email a.b@example.org",
        "a<|endoftext|>b <|endofprompt|> <|fim_prefix|>",
        "!!!???...,,,;;;:::---___===+++***&&&%%%$$$###@@@",
        "                                                                     end",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "SupercalifragilisticexpialidociousAntidisestablishmentarianism",
    ];

    fn assert_counts_like(encoding: &Encoding, reference: &tiktoken_rs::CoreBPE) {
        for text in SAMPLES {
            let expected = reference.encode_with_special_tokens(text).len();
            assert_eq!(encoding.count(text), expected, "{text:?}");
        }
    }

    #[test]
    fn o200k_counts_what_tiktoken_counts() {
        assert_counts_like(Encoding::o200k(), &tiktoken_rs::o200k_base().unwrap());
    }

    #[test]
    fn cl100k_counts_what_tiktoken_counts() {
        assert_counts_like(Encoding::cl100k(), &tiktoken_rs::cl100k_base().unwrap());
    }

    #[test]
    fn the_pattern_is_tiktokens() {
        assert_eq!(O200K_PATTERN, tiktoken_rs::O200K_BASE_PAT_STR);
    }

    #[test]
    fn repeated_special_tokens_count_one_each() {
        // The hostile stream of the hardening issue: tens of thousands of
        // special tokens used to cost a scan of the rest of the text each.
        let text = "<|endoftext|>".repeat(4_000);
        assert_eq!(Encoding::o200k().count(&text), 4_000);
        assert_eq!(Encoding::cl100k().count(&format!("a{text}b")), 4_002);
    }

    #[test]
    fn a_text_beyond_the_exact_limit_is_extrapolated_from_its_first_part() {
        let encoding = Encoding::o200k();
        let text = "The quick brown fox <|endoftext|> jumps over the lazy dog. ".repeat(20_000);
        assert!(text.len() > 10 * EXACT_LIMIT);
        let prefix = encoding.count(&text[..EXACT_LIMIT]);
        let expected = (prefix as f64 * text.len() as f64 / EXACT_LIMIT as f64).round() as usize;
        assert_eq!(encoding.count(&text), expected, "only the first {EXACT_LIMIT} bytes are merged");
        // Close to the exact count: the text is uniform.
        let exact = encoding.count_exactly(&text);
        assert!(expected.abs_diff(exact) * 100 < exact, "{expected} vs {exact}");
    }

    #[test]
    fn a_huge_piece_is_counted_quickly() {
        let spaces = " ".repeat(1_000_000);
        let tokens = Encoding::o200k().count(&format!("x{spaces}y"));
        assert!(tokens > 1 && tokens < 1_000_000, "{tokens}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_counts_as_tiktoken_counts(text in "\\PC{0,200}|[a-zA-Z0-9 ,.;:'\"\n\t!?()-]{0,400}") {
            static REFERENCE: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
            let reference = REFERENCE.get_or_init(|| tiktoken_rs::o200k_base().unwrap());
            proptest::prop_assert_eq!(Encoding::o200k().count(&text), reference.encode_with_special_tokens(&text).len());
        }
    }
}
