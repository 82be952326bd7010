//! Case and diacritic folding exactly as SQLite's FTS5 `unicode61` tokenizer does it with its
//! default `remove_diacritics 1`, so that the live tail's substring filter and `/api/logs`
//! search agree on which letters are the same: `É`, `é`, `E` and `e` all fold to `e`. The
//! tables are SQLite's own (`fts5_unicode2.c`, generated there from Unicode's
//! `CaseFolding.txt`); a test compares this port with the tokenizer over every character of the
//! Basic Multilingual Plane. It folds characters only: it does not split words.

/// Case-folding rules by range: (first code point, flags, range length). When bit 0 of the
/// flags is set the rule applies to every second code point only; `flags >> 1` indexes
/// [`FOLD_OFFSETS`].
#[rustfmt::skip]
const FOLD_RULES: [(u16, u8, u8); 163] = [
    (65, 14, 26), (181, 64, 1), (192, 14, 23), (216, 14, 7), (256, 1, 48), (306, 1, 6),
    (313, 1, 16), (330, 1, 46), (376, 116, 1), (377, 1, 6), (383, 104, 1), (385, 50, 1),
    (386, 1, 4), (390, 44, 1), (391, 0, 1), (393, 42, 2), (395, 0, 1), (398, 32, 1),
    (399, 38, 1), (400, 40, 1), (401, 0, 1), (403, 42, 1), (404, 46, 1), (406, 52, 1),
    (407, 48, 1), (408, 0, 1), (412, 52, 1), (413, 54, 1), (415, 56, 1), (416, 1, 6),
    (422, 60, 1), (423, 0, 1), (425, 60, 1), (428, 0, 1), (430, 60, 1), (431, 0, 1),
    (433, 58, 2), (435, 1, 4), (439, 62, 1), (440, 0, 1), (444, 0, 1), (452, 2, 1),
    (453, 0, 1), (455, 2, 1), (456, 0, 1), (458, 2, 1), (459, 1, 18), (478, 1, 18),
    (497, 2, 1), (498, 1, 4), (502, 122, 1), (503, 134, 1), (504, 1, 40), (544, 110, 1),
    (546, 1, 18), (570, 70, 1), (571, 0, 1), (573, 108, 1), (574, 68, 1), (577, 0, 1),
    (579, 106, 1), (580, 28, 1), (581, 30, 1), (582, 1, 10), (837, 36, 1), (880, 1, 4),
    (886, 0, 1), (902, 18, 1), (904, 16, 3), (908, 26, 1), (910, 24, 2), (913, 14, 17),
    (931, 14, 9), (962, 0, 1), (975, 4, 1), (976, 140, 1), (977, 142, 1), (981, 146, 1),
    (982, 144, 1), (984, 1, 24), (1008, 136, 1), (1009, 138, 1), (1012, 130, 1), (1013, 128, 1),
    (1015, 0, 1), (1017, 152, 1), (1018, 0, 1), (1021, 110, 3), (1024, 34, 16), (1040, 14, 32),
    (1120, 1, 34), (1162, 1, 54), (1216, 6, 1), (1217, 1, 14), (1232, 1, 88), (1329, 22, 38),
    (4256, 66, 38), (4295, 66, 1), (4301, 66, 1), (7680, 1, 150), (7835, 132, 1), (7838, 96, 1),
    (7840, 1, 96), (7944, 150, 8), (7960, 150, 6), (7976, 150, 8), (7992, 150, 8), (8008, 150, 6),
    (8025, 151, 8), (8040, 150, 8), (8072, 150, 8), (8088, 150, 8), (8104, 150, 8), (8120, 150, 2),
    (8122, 126, 2), (8124, 148, 1), (8126, 100, 1), (8136, 124, 4), (8140, 148, 1), (8152, 150, 2),
    (8154, 120, 2), (8168, 150, 2), (8170, 118, 2), (8172, 152, 1), (8184, 112, 2), (8186, 114, 2),
    (8188, 148, 1), (8486, 98, 1), (8490, 92, 1), (8491, 94, 1), (8498, 12, 1), (8544, 8, 16),
    (8579, 0, 1), (9398, 10, 26), (11264, 22, 47), (11360, 0, 1), (11362, 88, 1), (11363, 102, 1),
    (11364, 90, 1), (11367, 1, 6), (11373, 84, 1), (11374, 86, 1), (11375, 80, 1), (11376, 82, 1),
    (11378, 0, 1), (11381, 0, 1), (11390, 78, 2), (11392, 1, 100), (11499, 1, 4), (11506, 0, 1),
    (42560, 1, 46), (42624, 1, 24), (42786, 1, 14), (42802, 1, 62), (42873, 1, 4), (42877, 76, 1),
    (42878, 1, 10), (42891, 0, 1), (42893, 74, 1), (42896, 1, 4), (42912, 1, 10), (42922, 72, 1),
    (65313, 14, 26),
];

/// What a folded code point adds (modulo 2^16) to reach its lower-case form.
const FOLD_OFFSETS: [u16; 77] = [
    1, 2, 8, 15, 16, 26, 28, 32, 37, 38, 40, 48, 63, 64, 69, 71, 79, 80, 116, 202, 203, 205, 206,
    207, 209, 210, 211, 213, 214, 217, 218, 219, 775, 7264, 10792, 10795, 23228, 23256, 30204,
    54721, 54753, 54754, 54756, 54787, 54793, 54809, 57153, 57274, 57921, 58019, 58363, 61722,
    65268, 65341, 65373, 65406, 65408, 65410, 65415, 65424, 65436, 65439, 65450, 65462, 65472,
    65476, 65478, 65480, 65482, 65488, 65506, 65511, 65514, 65521, 65527, 65528, 65529,
];

/// Letters with diacritics by range: `(first code point << 3) | (range length - 1)`, sorted.
const DIACRITIC_RANGES: [u16; 126] = [
    0, 1797, 1848, 1859, 1891, 1928, 1940, 1995, 2024, 2040, 2060, 2110, 2168, 2206, 2264, 2286,
    2344, 2383, 2472, 2488, 2516, 2596, 2668, 2732, 2782, 2842, 2894, 2954, 2984, 3000, 3028, 3336,
    3456, 3696, 3712, 3728, 3744, 3766, 3832, 3896, 3912, 3928, 3944, 3968, 4008, 4040, 4056, 4106,
    4138, 4170, 4202, 4234, 4266, 4296, 4312, 4344, 4408, 4424, 4442, 4472, 4488, 4504, 6148, 6198,
    6264, 6280, 6360, 6429, 6505, 6529, 61448, 61468, 61512, 61534, 61592, 61610, 61642, 61672,
    61688, 61704, 61726, 61784, 61800, 61816, 61836, 61880, 61896, 61914, 61948, 61998, 62062,
    62122, 62154, 62184, 62200, 62218, 62252, 62302, 62364, 62410, 62442, 62478, 62536, 62554,
    62584, 62604, 62640, 62648, 62656, 62664, 62730, 62766, 62830, 62890, 62924, 62974, 63032,
    63050, 63082, 63118, 63182, 63242, 63274, 63310, 63368, 63390,
];

/// The base letter of each range of [`DIACRITIC_RANGES`] (0: the character is dropped); bit 7
/// marks letters with several diacritics, which `remove_diacritics 1` leaves alone.
#[rustfmt::skip]
const DIACRITIC_BASES: [u8; 126] = [
    0, b'a', b'c', b'e', b'i', b'n', b'o', b'u',
    b'y', b'y', b'a', b'c', b'd', b'e', b'e', b'g',
    b'h', b'i', b'j', b'k', b'l', b'n', b'o', b'r',
    b's', b't', b'u', b'u', b'w', b'y', b'z', b'o',
    b'u', b'a', b'i', b'o', b'u', b'u' | 0x80, b'a' | 0x80, b'g',
    b'k', b'o', b'o' | 0x80, b'j', b'g', b'n', b'a' | 0x80, b'a',
    b'e', b'i', b'o', b'r', b'u', b's', b't', b'h',
    b'a', b'e', b'o' | 0x80, b'o', b'o' | 0x80, b'y', 0, 0,
    0, 0, 0, 0, 0, 0, b'a', b'b',
    b'c' | 0x80, b'd', b'd', b'e' | 0x80, b'e', b'e' | 0x80, b'f', b'g',
    b'h', b'h', b'i', b'i' | 0x80, b'k', b'l', b'l' | 0x80, b'l',
    b'm', b'n', b'o' | 0x80, b'p', b'r', b'r' | 0x80, b'r', b's',
    b's' | 0x80, b't', b'u', b'u' | 0x80, b'v', b'w', b'w', b'x',
    b'y', b'z', b'h', b't', b'w', b'y', b'a', b'a' | 0x80,
    b'a' | 0x80, b'a' | 0x80, b'e', b'e' | 0x80, b'e' | 0x80, b'i', b'o', b'o' | 0x80,
    b'o' | 0x80, b'o' | 0x80, b'u', b'u' | 0x80, b'u' | 0x80, b'y',
];

/// `text` folded one character at a time; combining diacritics (U+0300…) are dropped, as the
/// tokenizer drops them.
pub fn fold(text: &str) -> String {
    text.chars().filter_map(fold_char).collect()
}

/// One character folded to lower case without its diacritic; `None` when the tokenizer drops
/// it (a combining diacritic).
pub fn fold_char(c: char) -> Option<char> {
    let code = u32::from(c);
    let folded = if code < 128 {
        u32::from(c.to_ascii_lowercase())
    } else if code < 65536 {
        remove_diacritic(lower_case(code))
    } else if (66560..66600).contains(&code) {
        // Deseret, the one range beyond the BMP that SQLite folds.
        code + 40
    } else {
        code
    };
    match folded {
        0 if code != 0 => None,
        folded => Some(char::from_u32(folded).unwrap_or(c)),
    }
}

/// SQLite's `sqlite3Fts5UnicodeFold` without the diacritic step, for `128 <= code < 65536`.
fn lower_case(code: u32) -> u32 {
    let rule = FOLD_RULES.partition_point(|&(first, _, _)| u32::from(first) <= code);
    let Some(&(first, flags, range)) = rule.checked_sub(1).and_then(|i| FOLD_RULES.get(i)) else {
        return code;
    };
    let (first, flags) = (u32::from(first), u32::from(flags));
    if code < first + u32::from(range) && (flags & (first ^ code) & 1) == 0 {
        (code + u32::from(FOLD_OFFSETS[(flags >> 1) as usize])) & 0xFFFF
    } else {
        code
    }
}

/// SQLite's `fts5_remove_diacritic` in its simple mode.
fn remove_diacritic(code: u32) -> u32 {
    let key = (code << 3) | 7;
    let range = DIACRITIC_RANGES.partition_point(|&r| u32::from(r) <= key);
    let Some(i) = range.checked_sub(1) else {
        return code;
    };
    let (start, base) = (u32::from(DIACRITIC_RANGES[i]), DIACRITIC_BASES[i]);
    if base & 0x80 != 0 || code > (start >> 3) + (start & 7) {
        code
    } else {
        u32::from(base & 0x7F)
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn fold_examples() {
        assert_eq!(fold("Échec ÉCOLE naïve"), "echec ecole naive");
        assert_eq!(
            fold("e\u{301}te\u{301}"),
            "ete",
            "combining accents are dropped"
        );
        assert_eq!(fold("ΟΔΟΣ οδος"), "οδοσ οδοσ");
        assert_eq!(
            fold("ǖ"),
            "ǖ",
            "several diacritics stay (remove_diacritics 1)"
        );
        assert_eq!(fold("ABC xyz 123"), "abc xyz 123");
    }

    #[test]
    fn fold_agrees_with_the_fts5_tokenizer_on_every_bmp_character() {
        let conn = Connection::open_in_memory().unwrap();
        // The same tokenizer as `logs_fts` (FTS5's default: unicode61, remove_diacritics 1).
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5 (x);
             CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance');",
        )
        .unwrap();
        let characters: Vec<char> = (0x80..0x1_0000)
            .chain(66_550..66_610)
            .filter_map(char::from_u32)
            .collect();
        {
            let tx = conn.unchecked_transaction().unwrap();
            let mut insert = tx
                .prepare("INSERT INTO t (rowid, x) VALUES (?1, ?2)")
                .unwrap();
            for &c in &characters {
                insert.execute((u32::from(c), c.to_string())).unwrap();
            }
            drop(insert);
            tx.commit().unwrap();
        }
        let mut select = conn.prepare("SELECT doc, term FROM v").unwrap();
        let tokens: Vec<(u32, String)> = select
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            tokens.len() > 40_000,
            "only {} characters indexed",
            tokens.len()
        );
        let differ: Vec<String> = tokens
            .iter()
            .filter_map(|(code, term)| {
                let c = char::from_u32(*code)?;
                let ours: String = fold_char(c).into_iter().collect();
                (ours != *term)
                    .then(|| format!("U+{code:04X} {c:?}: sqlite {term:?}, ours {ours:?}"))
            })
            .collect();
        assert!(
            differ.is_empty(),
            "{} differ: {:#?}",
            differ.len(),
            &differ[..differ.len().min(20)]
        );
        // And ASCII: letters fold to lower case, nothing else changes.
        for c in (0u8..128).map(char::from) {
            assert_eq!(fold_char(c), Some(c.to_ascii_lowercase()));
        }
    }
}
