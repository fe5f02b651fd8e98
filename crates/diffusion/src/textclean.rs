//! What CLIP's tokeniser does to a prompt before its regex and BPE: `ftfy.fix_text` (as
//! transformers' `CLIPTokenizer` and open_clip run it, and as CLIP was trained), then lower case.
//! The parity test `tokenizer_parity` holds this to transformers on a corpus of 1,000 prompts.
//!
//! Of ftfy's default fixes this does every one a typed or pasted prompt meets: HTML entities
//! (off on a line with a `<`, as ftfy's "auto"), C1 controls read as Windows-1252, terminal
//! escapes and stray control characters removed, Latin ligatures split, full- and half-width
//! forms to standard width, curly quotes straightened, line breaks, NFC. Not done: ftfy's
//! mojibake repair (text decoded with the wrong encoding), a heuristic a prompt box never needs.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

static ENTITY: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern
    Regex::new(r"&#?[0-9A-Za-z]{1,24};").unwrap()
});

static TERMINAL_ESCAPE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern
    Regex::new(r"\x1b\[((?:\d|;)*)([a-zA-Z])").unwrap()
});

/// `ftfy.fix_text` with its default settings, less mojibake repair (see the module's comment).
pub(crate) fn fix_text(text: &str) -> String {
    // ftfy fixes line by line; from the first line with a `<` on, it leaves entities alone.
    let mut html = true;
    text.split_inclusive('\n')
        .map(|line| {
            html &= !line.contains('<');
            fix_line(line, html)
        })
        .collect()
}

fn fix_line(line: &str, html: bool) -> String {
    let mut text = line.to_owned();
    // Until nothing changes, as ftfy loops (an entity can decode to a ligature, …).
    for _ in 0..8 {
        let before = text.clone();
        if html {
            text = unescape_html(&text);
        }
        text = text.chars().map(c1_as_windows_1252).collect();
        text = text
            .chars()
            .flat_map(|c| ligature(c).map_or_else(|| vec![c], |s| s.chars().collect()))
            .collect();
        text = text.chars().flat_map(standard_width).collect();
        text = text.chars().map(uncurl).collect();
        text = fix_line_breaks(&text);
        text = TERMINAL_ESCAPE.replace_all(&text, "").into_owned();
        text.retain(|c| !is_stray_control(c));
        text = text.nfc().collect();
        if text == before {
            break;
        }
    }
    text
}

fn unescape_html(text: &str) -> String {
    ENTITY
        .replace_all(text, |caps: &regex::Captures<'_>| {
            let m = &caps[0];
            entity(m).unwrap_or_else(|| m.to_owned())
        })
        .into_owned()
}

/// One `&…;` as ftfy reads it: HTML5's named entities, all-caps forms of the lower-case ones
/// (`&EACUTE;` → `É`), numeric references.
fn entity(m: &str) -> Option<String> {
    let body = &m[1..];
    if let Some(num) = body.strip_prefix('#') {
        let digits = &num[..num.len() - 1];
        let code = match digits.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => digits.parse::<u32>().ok(),
        };
        // html.unescape turns what is not a character into U+FFFD; ftfy keeps text it cannot
        // read whole, so a reference with junk after its digits stays as written.
        return code.map(numeric_reference);
    }
    let named = |name: &str| -> Option<String> {
        let &(a, b) = web_atoms::NAMED_ENTITIES.get(name)?;
        let mut s: String = char::from_u32(a)?.into();
        if b != 0 {
            s.push(char::from_u32(b)?);
        }
        Some(s)
    };
    if let Some(s) = named(body) {
        return Some(s);
    }
    let lower = body.to_ascii_lowercase();
    if body == body.to_ascii_uppercase() && lower != body {
        return named(&lower).map(|s| s.to_uppercase());
    }
    None
}

/// Python's `html.unescape` of `&#N;`: the HTML5 replacements for C1 codes and invalid ones.
fn numeric_reference(code: u32) -> String {
    if (0x80..=0x9f).contains(&code) {
        return c1_as_windows_1252(char::from_u32(code).unwrap_or('\u{fffd}')).into();
    }
    if code == 0 || (0xd800..=0xdfff).contains(&code) || code > 0x10ffff {
        return '\u{fffd}'.into();
    }
    char::from_u32(code).map_or_else(|| '\u{fffd}'.into(), String::from)
}

/// C1 control characters are almost always Windows-1252 bytes read as Latin-1.
fn c1_as_windows_1252(c: char) -> char {
    const TABLE: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match c as u32 {
        n @ 0x80..=0x9f => TABLE[(n - 0x80) as usize],
        _ => c,
    }
}

fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// Half- and full-width forms (U+FF01–U+FFEF) as NFKC writes them, and the ideographic space.
fn standard_width(c: char) -> Vec<char> {
    match c as u32 {
        0x3000 => vec![' '],
        0xff01..=0xffef => c.to_string().nfkc().collect(),
        _ => vec![c],
    }
}

fn uncurl(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// ftfy's `remove_control_chars`: controls that draw nothing, but not the ones that make
/// whitespace, join emoji or set text direction.
fn is_stray_control(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0x206a..=0x206f | 0xfeff | 0xfff9..=0xfffc)
}

#[cfg(test)]
mod tests {
    use super::fix_text;

    #[test]
    fn ftfys_fixes_apply_as_it_documents_them() {
        assert_eq!(fix_text("&lt;tag&gt;"), "<tag>");
        assert_eq!(fix_text("P&EACUTE;REZ &eacute;"), "PÉREZ é");
        assert_eq!(
            fix_text("a <b> &amp; c"),
            "a <b> &amp; c",
            "a line with < keeps its entities"
        );
        assert_eq!(
            fix_text("&amp;\n<b>\n&amp;"),
            "&\n<b>\n&amp;",
            "and so do the lines after it"
        );
        assert_eq!(fix_text("&#65;&#x42;&#0;"), "AB\u{fffd}");
        assert_eq!(fix_text("ﬂuﬃeﬆ"), "fluffiest");
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(fix_text("Ｕﾀｰﾝ"), "Uターン");
        assert_eq!(fix_text("\u{201c}here\u{2019}s\u{201d}"), "\"here's\"");
        assert_eq!(fix_text("a\r\nb\rc"), "a\nb\nc");
        assert_eq!(fix_text("bat\u{7}\u{feff}x\u{1b}[31mred"), "batxred");
        assert_eq!(fix_text("e\u{301}"), "é");
        assert_eq!(fix_text("\u{93}quoted\u{94}"), "\"quoted\"");
        assert_eq!(
            fix_text("👩\u{200d}🚀"),
            "👩\u{200d}🚀",
            "emoji joiners stay"
        );
    }
}
