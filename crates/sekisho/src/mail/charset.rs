//! The charsets `mail-parser` decodes only with its `full_encoding` feature, which would put `encoding_rs` and
//! its CJK tables (about 125 KB of the gzipped Worker) into the Wasm: Shift_JIS, EUC-JP, ISO-2022-JP, GBK,
//! gb18030, Big5, EUC-KR, windows-874, IBM866 and x-mac-cyrillic. Without the feature `mail-parser` reads text
//! in these as UTF-8 (lossy); [`redecode`](super::redecode) then decodes it again through a [`CharsetDecoder`]
//! the caller passes in: the runtime's own `TextDecoder` in the Worker (workerd implements the WHATWG
//! encodings), [`EncodingRs`] natively. Both implement the WHATWG Encoding Standard, whose reference
//! implementation `encoding_rs` is, so the text is what `full_encoding` gave.
//!
//! What `encoding_rs` did around the decoding itself is done here, the same for every decoder: the BOM sniffing
//! of `Encoding::new_decoder` (a UTF-8 or UTF-16 byte order mark overrides the declared charset) and the two
//! encodings `TextDecoder` does not offer, `x-user-defined` and `replacement`.

/// The encodings a [`CharsetDecoder`] is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ShiftJis,
    EucJp,
    Iso2022Jp,
    Gbk,
    Gb18030,
    Big5,
    EucKr,
    Windows874,
    Ibm866,
    XMacCyrillic,
    /// Only after a UTF-16 byte order mark (which is not passed on).
    Utf16Le,
    /// Only after a UTF-16 byte order mark (which is not passed on).
    Utf16Be,
}

impl Encoding {
    /// The encoding's WHATWG name, a label every `TextDecoder` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::ShiftJis => "shift_jis",
            Encoding::EucJp => "euc-jp",
            Encoding::Iso2022Jp => "iso-2022-jp",
            Encoding::Gbk => "gbk",
            Encoding::Gb18030 => "gb18030",
            Encoding::Big5 => "big5",
            Encoding::EucKr => "euc-kr",
            Encoding::Windows874 => "windows-874",
            Encoding::Ibm866 => "ibm866",
            Encoding::XMacCyrillic => "x-mac-cyrillic",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
        }
    }
}

/// Decodes bytes of one [`Encoding`] the WHATWG way: malformed sequences become U+FFFD, the end of the input
/// ends the stream, a byte order mark is text like any other (it was handled before the call).
pub trait CharsetDecoder {
    fn decode(&self, encoding: Encoding, bytes: &[u8]) -> String;
}

/// A charset label that `mail-parser` maps to one of the decoders `full_encoding` provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Charset {
    Decoder(Encoding),
    XUserDefined,
    Replacement,
}

/// The labels of mail-parser 0.11's charset map (`decoders/charsets/map.rs`, folded as it folds them) whose
/// decoders come from `encoding_rs`; a test checks them against `mail-parser` and the WHATWG label list.
const LOSSY_LABELS: &[(&[u8], Charset)] = {
    use Charset::{Decoder, Replacement, XUserDefined};
    use Encoding::*;
    &[
        (b"csshiftjis", Decoder(ShiftJis)),
        (b"ms932", Decoder(ShiftJis)),
        (b"ms_kanji", Decoder(ShiftJis)),
        (b"shift_jis", Decoder(ShiftJis)),
        (b"sjis", Decoder(ShiftJis)),
        (b"windows_31j", Decoder(ShiftJis)),
        (b"x_sjis", Decoder(ShiftJis)),
        (b"cseucpkdfmtjapanese", Decoder(EucJp)),
        (b"euc_jp", Decoder(EucJp)),
        (
            b"extended_unix_code_packed_format_for_japanese",
            Decoder(EucJp),
        ),
        (b"x_euc_jp", Decoder(EucJp)),
        (b"csiso2022jp", Decoder(Iso2022Jp)),
        (b"iso_2022_jp", Decoder(Iso2022Jp)),
        (b"chinese", Decoder(Gbk)),
        (b"cp936", Decoder(Gbk)),
        (b"csgb2312", Decoder(Gbk)),
        (b"csgbk", Decoder(Gbk)),
        (b"csiso58gb231280", Decoder(Gbk)),
        (b"gb_2312", Decoder(Gbk)),
        (b"gb_2312_80", Decoder(Gbk)),
        (b"gbk", Decoder(Gbk)),
        (b"iso_ir_58", Decoder(Gbk)),
        (b"ms936", Decoder(Gbk)),
        (b"windows_936", Decoder(Gbk)),
        (b"x_gbk", Decoder(Gbk)),
        (b"csgb18030", Decoder(Gb18030)),
        (b"gb18030", Decoder(Gb18030)),
        (b"gb2312", Decoder(Gb18030)),
        (b"big5", Decoder(Big5)),
        (b"big5_hkscs", Decoder(Big5)),
        (b"cn_big5", Decoder(Big5)),
        (b"csbig5", Decoder(Big5)),
        (b"x_x_big5", Decoder(Big5)),
        (b"cseuckr", Decoder(EucKr)),
        (b"csksc56011987", Decoder(EucKr)),
        (b"euc_kr", Decoder(EucKr)),
        (b"iso_ir_149", Decoder(EucKr)),
        (b"korean", Decoder(EucKr)),
        (b"ks_c_5601_1987", Decoder(EucKr)),
        (b"ks_c_5601_1989", Decoder(EucKr)),
        (b"ksc5601", Decoder(EucKr)),
        (b"ksc_5601", Decoder(EucKr)),
        (b"windows_949", Decoder(EucKr)),
        (b"cswindows874", Decoder(Windows874)),
        (b"dos_874", Decoder(Windows874)),
        (b"windows_874", Decoder(Windows874)),
        (b"866", Decoder(Ibm866)),
        (b"cp866", Decoder(Ibm866)),
        (b"csibm866", Decoder(Ibm866)),
        (b"ibm866", Decoder(Ibm866)),
        (b"x_mac_cyrillic", Decoder(XMacCyrillic)),
        (b"x_mac_ukrainian", Decoder(XMacCyrillic)),
        (b"x_user_defined", XUserDefined),
        (b"csiso2022kr", Replacement),
        (b"hz_gb_2312", Replacement),
        (b"iso_2022_cn", Replacement),
        (b"iso_2022_cn_ext", Replacement),
        (b"iso_2022_kr", Replacement),
        (b"replacement", Replacement),
    ]
};

/// Labels Japanese mailers and gateways write that neither `mail-parser` nor the WHATWG list knows (so
/// `mail-parser` reads them as UTF-8), folded like [`LOSSY_LABELS`]: Microsoft's names for its Shift_JIS
/// (`cp932`, `windows-932`, …) and for its ISO-2022-JP with the NEC and NEC-selected IBM extensions
/// (`iso-2022-jp-ms`, `cp50220`–`cp50222`), which the WHATWG decoders include; EUC-JP spelled without a dash.
/// The JIS X 0213 variants (`shift_jisx0213`, `iso-2022-jp-2004`, …) are not here: their extra characters are
/// not in the WHATWG tables, so mapping them would invent text.
const JAPANESE_LABELS: &[(&[u8], Charset)] = {
    use Charset::Decoder;
    use Encoding::*;
    &[
        (b"cp932", Decoder(ShiftJis)),
        (b"ms_932", Decoder(ShiftJis)),
        (b"windows_932", Decoder(ShiftJis)),
        (b"x_ms_cp932", Decoder(ShiftJis)),
        (b"cswindows31j", Decoder(ShiftJis)),
        (b"shiftjis", Decoder(ShiftJis)),
        (b"iso_2022_jp_ms", Decoder(Iso2022Jp)),
        (b"cp50220", Decoder(Iso2022Jp)),
        (b"cp50221", Decoder(Iso2022Jp)),
        (b"cp50222", Decoder(Iso2022Jp)),
        (b"eucjp", Decoder(EucJp)),
        (b"eucjp_ms", Decoder(EucJp)),
        (b"euc_jp_ms", Decoder(EucJp)),
        (b"ujis", Decoder(EucJp)),
    ]
};

/// The charset of `label` if `mail-parser` (without `full_encoding`) reads it as UTF-8 only. Labels compare
/// as `mail-parser` compares them: ASCII case-insensitively, `-` and `_` alike, on their first 45 bytes.
pub(super) fn lossy_charset(label: &[u8]) -> Option<Charset> {
    let mut folded = [0u8; 45];
    for (to, from) in folded.iter_mut().zip(label) {
        *to = match from {
            b'A'..=b'Z' => from + 32,
            b'-' => b'_',
            other => *other,
        };
    }
    let folded = folded.get(..label.len().clamp(1, 45))?;
    LOSSY_LABELS
        .iter()
        .chain(JAPANESE_LABELS)
        .find(|(known, _)| *known == folded)
        .map(|&(_, charset)| charset)
}

/// What `encoding_rs`'s `new_decoder()` + `decode_to_string(…, last = true)` gives for `bytes` in `charset`.
pub(super) fn decode(decoder: &dyn CharsetDecoder, charset: Charset, bytes: &[u8]) -> String {
    // BOM sniffing: a byte order mark picks UTF-8 or UTF-16 whatever the label said, and is dropped.
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return decoder.decode(Encoding::Utf16Le, rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return decoder.decode(Encoding::Utf16Be, rest);
    }
    match charset {
        Charset::Decoder(encoding) => decoder.decode(encoding, bytes),
        // ASCII as is, every other byte to the private-use area.
        Charset::XUserDefined => bytes
            .iter()
            .map(|&byte| match byte {
                0..=0x7F => char::from(byte),
                _ => char::from_u32(0xF780 + u32::from(byte) - 0x80).unwrap_or('\u{FFFD}'),
            })
            .collect(),
        // Encodings that are never decoded (ISO-2022-KR, HZ, …): one U+FFFD for any content.
        Charset::Replacement if bytes.is_empty() => String::new(),
        Charset::Replacement => "\u{FFFD}".to_owned(),
    }
}

/// The decoder for native builds (the CLI, the tests): `encoding_rs`, which the Worker does not carry.
#[cfg(feature = "tooling")]
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodingRs;

#[cfg(feature = "tooling")]
impl CharsetDecoder for EncodingRs {
    fn decode(&self, encoding: Encoding, bytes: &[u8]) -> String {
        let encoding = match encoding {
            Encoding::ShiftJis => encoding_rs::SHIFT_JIS,
            Encoding::EucJp => encoding_rs::EUC_JP,
            Encoding::Iso2022Jp => encoding_rs::ISO_2022_JP,
            Encoding::Gbk => encoding_rs::GBK,
            Encoding::Gb18030 => encoding_rs::GB18030,
            Encoding::Big5 => encoding_rs::BIG5,
            Encoding::EucKr => encoding_rs::EUC_KR,
            Encoding::Windows874 => encoding_rs::WINDOWS_874,
            Encoding::Ibm866 => encoding_rs::IBM866,
            Encoding::XMacCyrillic => encoding_rs::X_MAC_CYRILLIC,
            Encoding::Utf16Le => encoding_rs::UTF_16LE,
            Encoding::Utf16Be => encoding_rs::UTF_16BE,
        };
        encoding.decode_without_bom_handling(bytes).0.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::decoders::charsets::map::charset_decoder;
    use proptest::prelude::*;

    use super::*;

    /// The WHATWG Encoding Standard's labels (as encoding_rs 0.8 lists them).
    const WHATWG_LABELS: &[&str] = &[
        "l1",
        "l2",
        "l3",
        "l4",
        "l5",
        "l6",
        "l9",
        "866",
        "mac",
        "koi",
        "gbk",
        "big5",
        "utf8",
        "koi8",
        "sjis",
        "ucs-2",
        "ms932",
        "cp866",
        "utf-8",
        "cp819",
        "ascii",
        "x-gbk",
        "greek",
        "cp1250",
        "cp1251",
        "latin1",
        "gb2312",
        "cp1252",
        "latin2",
        "cp1253",
        "latin3",
        "cp1254",
        "latin4",
        "cp1255",
        "csbig5",
        "latin5",
        "utf-16",
        "cp1256",
        "ibm866",
        "latin6",
        "cp1257",
        "cp1258",
        "greek8",
        "ibm819",
        "arabic",
        "visual",
        "korean",
        "euc-jp",
        "koi8-r",
        "koi8_r",
        "euc-kr",
        "x-sjis",
        "koi8-u",
        "hebrew",
        "tis-620",
        "gb18030",
        "ksc5601",
        "gb_2312",
        "dos-874",
        "cn-big5",
        "unicode",
        "chinese",
        "logical",
        "cskoi8r",
        "cseuckr",
        "koi8-ru",
        "x-cp1250",
        "ksc_5601",
        "x-cp1251",
        "iso88591",
        "csgb2312",
        "x-cp1252",
        "iso88592",
        "x-cp1253",
        "iso88593",
        "ecma-114",
        "x-cp1254",
        "iso88594",
        "x-cp1255",
        "iso88595",
        "x-x-big5",
        "x-cp1256",
        "csibm866",
        "iso88596",
        "x-cp1257",
        "iso88597",
        "asmo-708",
        "ecma-118",
        "elot_928",
        "x-cp1258",
        "iso88598",
        "iso88599",
        "cyrillic",
        "utf-16be",
        "utf-16le",
        "us-ascii",
        "ms_kanji",
        "x-euc-jp",
        "iso885910",
        "iso8859-1",
        "iso885911",
        "iso8859-2",
        "iso8859-3",
        "iso885913",
        "iso8859-4",
        "iso885914",
        "iso8859-5",
        "iso885915",
        "iso8859-6",
        "iso8859-7",
        "iso8859-8",
        "iso-ir-58",
        "iso8859-9",
        "csunicode",
        "macintosh",
        "shift-jis",
        "shift_jis",
        "iso-ir-100",
        "iso8859-10",
        "iso-ir-110",
        "gb_2312-80",
        "iso-8859-1",
        "iso_8859-1",
        "iso-ir-101",
        "iso8859-11",
        "iso-8859-2",
        "iso_8859-2",
        "hz-gb-2312",
        "iso-8859-3",
        "iso_8859-3",
        "iso8859-13",
        "iso-8859-4",
        "iso_8859-4",
        "iso8859-14",
        "iso-ir-144",
        "iso-8859-5",
        "iso_8859-5",
        "iso8859-15",
        "iso-8859-6",
        "iso_8859-6",
        "iso-ir-126",
        "iso-8859-7",
        "iso_8859-7",
        "iso-ir-127",
        "iso-ir-157",
        "iso-8859-8",
        "iso_8859-8",
        "iso-ir-138",
        "iso-ir-148",
        "iso-8859-9",
        "iso_8859-9",
        "iso-ir-109",
        "iso-ir-149",
        "big5-hkscs",
        "csshiftjis",
        "iso-8859-10",
        "iso-8859-11",
        "csisolatin1",
        "csisolatin2",
        "iso-8859-13",
        "csisolatin3",
        "iso-8859-14",
        "windows-874",
        "csisolatin4",
        "iso-8859-15",
        "iso_8859-15",
        "csisolatin5",
        "iso-8859-16",
        "csisolatin6",
        "windows-949",
        "csisolatin9",
        "csiso88596e",
        "csiso88598e",
        "unicodefffe",
        "unicodefeff",
        "csmacintosh",
        "csiso88596i",
        "csiso88598i",
        "windows-31j",
        "x-mac-roman",
        "iso-2022-cn",
        "iso-2022-jp",
        "csiso2022jp",
        "iso-2022-kr",
        "csiso2022kr",
        "replacement",
        "windows-1250",
        "windows-1251",
        "windows-1252",
        "windows-1253",
        "windows-1254",
        "windows-1255",
        "windows-1256",
        "windows-1257",
        "windows-1258",
        "iso-8859-6-e",
        "iso-8859-8-e",
        "iso-8859-6-i",
        "iso-8859-8-i",
        "sun_eu_greek",
        "csksc56011987",
        "unicode20utf8",
        "unicode11utf8",
        "ks_c_5601-1987",
        "ansi_x3.4-1968",
        "ks_c_5601-1989",
        "x-mac-cyrillic",
        "x-user-defined",
        "csiso58gb231280",
        "iso-10646-ucs-2",
        "iso_8859-1:1987",
        "iso_8859-2:1987",
        "iso_8859-6:1987",
        "iso_8859-7:1987",
        "iso_8859-3:1988",
        "iso_8859-4:1988",
        "iso_8859-5:1988",
        "iso_8859-8:1988",
        "x-unicode20utf8",
        "iso_8859-9:1989",
        "csisolatingreek",
        "x-mac-ukrainian",
        "iso-2022-cn-ext",
        "csisolatinarabic",
        "csisolatinhebrew",
        "unicode-1-1-utf-8",
        "csisolatincyrillic",
        "cseucpkdfmtjapanese",
    ];

    /// Whether mail-parser (as built here, without `full_encoding`) reads `label` as UTF-8 only, which a
    /// decoder of a real single-byte or multi-byte table never does for the 128 non-ASCII bytes.
    fn mail_parser_reads_as_utf8(label: &[u8]) -> bool {
        let high: Vec<u8> = (0x80..=0xFF).collect();
        charset_decoder(label).is_some_and(|decode| decode(&high) == String::from_utf8_lossy(&high))
    }

    #[test]
    fn the_lossy_labels_are_exactly_the_ones_mail_parser_reads_as_utf8() {
        let is_utf8 = |label: &str| {
            encoding_rs::Encoding::for_label(label.as_bytes()) == Some(encoding_rs::UTF_8)
        };
        let table = LOSSY_LABELS
            .iter()
            .map(|(label, _)| String::from_utf8_lossy(label));
        for label in WHATWG_LABELS
            .iter()
            .map(|l| l.to_string())
            .chain(table.map(String::from))
        {
            if is_utf8(&label) || JAPANESE_LABELS.iter().any(|(l, _)| *l == label.as_bytes()) {
                continue;
            }
            for spelling in [label.clone(), label.to_uppercase(), label.replace('-', "_")] {
                assert_eq!(
                    lossy_charset(spelling.as_bytes()).is_some(),
                    mail_parser_reads_as_utf8(spelling.as_bytes()),
                    "{spelling}"
                );
            }
        }
    }

    #[test]
    fn the_japanese_labels_are_unknown_to_mail_parser_and_whatwg_and_map_in_every_spelling() {
        for (label, charset) in JAPANESE_LABELS {
            let dashed: Vec<u8> = label
                .iter()
                .map(|&b| if b == b'_' { b'-' } else { b })
                .collect();
            assert!(charset_decoder(label).is_none() && charset_decoder(&dashed).is_none());
            assert!(encoding_rs::Encoding::for_label(&dashed).is_none());
            assert!(!LOSSY_LABELS.iter().any(|(l, _)| l == label));
            assert_eq!(lossy_charset(&dashed.to_ascii_uppercase()), Some(*charset));
        }
        for (label, encoding) in [
            ("x-sjis", Encoding::ShiftJis),
            ("Shift-JIS", Encoding::ShiftJis),
            ("CP932", Encoding::ShiftJis),
            ("Windows-31J", Encoding::ShiftJis),
            ("ISO-2022-JP-MS", Encoding::Iso2022Jp),
            ("x-euc-jp", Encoding::EucJp),
        ] {
            assert_eq!(
                lossy_charset(label.as_bytes()),
                Some(Charset::Decoder(encoding)),
                "{label}"
            );
        }
    }

    #[test]
    fn each_lossy_label_names_the_encoding_whatwg_gives_it() {
        for (label, charset) in LOSSY_LABELS {
            let whatwg = encoding_rs::Encoding::for_label(label).or_else(|| {
                let dashed: Vec<u8> = label
                    .iter()
                    .map(|&b| if b == b'_' { b'-' } else { b })
                    .collect();
                encoding_rs::Encoding::for_label(&dashed)
            });
            let expected = match charset {
                Charset::Decoder(encoding) => {
                    encoding_rs::Encoding::for_label(encoding.name().as_bytes())
                }
                Charset::XUserDefined => Some(encoding_rs::X_USER_DEFINED),
                Charset::Replacement => Some(encoding_rs::REPLACEMENT),
            };
            // The GBK decoder is the gb18030 decoder (WHATWG), so mail-parser's gb2312 → gb18030 is the same.
            let decoder = |e: &'static encoding_rs::Encoding| {
                if e == encoding_rs::GBK {
                    encoding_rs::GB18030
                } else {
                    e
                }
            };
            // Labels WHATWG does not know (ms936, x_x_big5, …) are mail-parser's own aliases.
            if let Some(whatwg) = whatwg {
                assert_eq!(
                    Some(decoder(whatwg)),
                    expected.map(decoder),
                    "{}",
                    String::from_utf8_lossy(label)
                );
            }
        }
    }

    /// What mail-parser's `full_encoding` did: `new_decoder()` (BOM sniffing) and `decode_to_string` to the end.
    fn full_encoding(charset: Charset, bytes: &[u8]) -> String {
        let encoding = match charset {
            Charset::Decoder(encoding) => {
                encoding_rs::Encoding::for_label(encoding.name().as_bytes()).unwrap()
            }
            Charset::XUserDefined => encoding_rs::X_USER_DEFINED,
            Charset::Replacement => encoding_rs::REPLACEMENT,
        };
        let mut decoder = encoding.new_decoder();
        let mut text = String::with_capacity(bytes.len() * 4 + 16);
        let (result, _, _) = decoder.decode_to_string(bytes, &mut text, true);
        assert_eq!(result, encoding_rs::CoderResult::InputEmpty);
        text
    }

    fn charsets() -> impl Strategy<Value = Charset> {
        prop::sample::select(
            LOSSY_LABELS
                .iter()
                .map(|&(_, charset)| charset)
                .collect::<Vec<_>>(),
        )
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let prefix = prop::sample::select(vec![
            &b""[..],
            b"\xEF\xBB\xBF",
            b"\xFF\xFE",
            b"\xFE\xFF",
            b"\xEF\xBB",
            b"\xFF",
            b"\x1b$B",
        ]);
        (prefix, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(prefix, rest)| {
            let mut bytes = prefix.to_vec();
            bytes.extend(rest);
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]
        #[test]
        fn decoding_is_what_full_encoding_did(charset in charsets(), bytes in bytes()) {
            prop_assert_eq!(decode(&EncodingRs, charset, &bytes), full_encoding(charset, &bytes));
        }
    }
}
