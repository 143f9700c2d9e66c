//! The charsets the Worker decodes with the runtime's `TextDecoder` instead of `encoding_rs`
//! (`src/channels/email/charset.rs`). `tests/vectors/charsets.json` holds byte strings in each of them — text
//! encoded by `encoding_rs`, the sequences its decoders treat specially, and random bytes — with the text
//! `encoding_rs` decodes them to: this test keeps the file equal to what `encoding_rs` gives
//! (`UPDATE_VECTORS=1 cargo test --test email_charsets` rewrites it), and `tests/e2e/charsets.test.mjs` checks
//! that workerd's `TextDecoder` gives the same.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use crate::common;

use serde::{Deserialize, Serialize};

use sekisho::mail::charset::{CharsetDecoder, Encoding, EncodingRs};

const ENCODINGS: [Encoding; 12] = [
    Encoding::ShiftJis,
    Encoding::EucJp,
    Encoding::Iso2022Jp,
    Encoding::Gbk,
    Encoding::Gb18030,
    Encoding::Big5,
    Encoding::EucKr,
    Encoding::Windows874,
    Encoding::Ibm866,
    Encoding::XMacCyrillic,
    Encoding::Utf16Le,
    Encoding::Utf16Be,
];

/// Text every encoding should carry some of: Japanese (kanji, kana, half-width kana, NEC/IBM extensions),
/// Chinese (simplified, traditional, astral), Korean, Thai, Cyrillic, and what no legacy encoding has.
const TEXTS: &[&str] = &[
    "お見積りのご依頼（株式会社鈴木製作所）",
    "ﾊﾝｶｸｶﾀｶﾅ ①②③ ㈱ ⅰⅱ 髙橋 﨑 ～－￠",
    "丂丄 〒105-0011 東京都港区芝公園４丁目",
    "你好，世界 报价请求 欧元€",
    "報價請求 陳大文 𠀀 😀",
    "안녕하세요 세계 견적 요청",
    "สวัสดีครับ ภาษาไทย",
    "Привет, мир Україна Ґґ",
    "ASCII only, with ~ and \\ and ¥",
];

/// Byte sequences the decoders handle specially (escape sequences, lead bytes without trail, ranges).
const EDGES: &[&[u8]] = &[
    b"",
    b"\x1b",
    b"\x1b$",
    b"\x1b$B",
    b"\x1b$B\x24\x22\x1b(B",
    b"\x1b$@\x30\x21\x1b(J\\~\x1b(I\x31\x1b(B",
    b"\x1b$(D\x30\x21\x1b(B",
    b"\x1b$B\x24\x1b(B",
    b"\x0e\x31\x0f",
    b"\x1b(B\x1b(B",
    b"\x82",
    b"\x82\xa0\x82",
    b"\x80\xa0\xfd\xfe\xff",
    b"\x8e\xb1\x8e",
    b"\x8f\xb0\xa1\x8f\xb0",
    b"\x81\x30\x81\x30\x84\x31\xa4\x39\xfe\x39\xfe\x39\xe3\x32\x9a\x35",
    b"\x88\x62\x88\x64\x88\xa3\x88\xa5\x87\x40",
    b"\xa1\x40\xc6\xa1\xf9\xfe",
    b"\xc9\xa1\xfe\xfe\xa1\x41",
    b"\xd8\x00",
    b"\x00\xd8",
    b"\x00\xdc\x00\xd8\x00",
    b"\x3d\xd8\x00\xde",
];

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Vector {
    encoding: String,
    hex: String,
    text: String,
}

/// A fixed xorshift, so the random strings are the same on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn encoding_rs(encoding: Encoding) -> &'static encoding_rs::Encoding {
    encoding_rs::Encoding::for_label(encoding.name().as_bytes()).unwrap()
}

fn vectors() -> Vec<Vector> {
    let mut random = Random(0x05EC_15E0_C4A2_5E75);
    let mut vectors = Vec::new();
    for encoding in ENCODINGS {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for text in TEXTS {
            let (bytes, _, _) = encoding_rs(encoding).encode(text);
            let bytes = match encoding {
                // encoding_rs encodes UTF-16 as UTF-8 (the WHATWG rule): encode these by hand.
                Encoding::Utf16Le => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
                Encoding::Utf16Be => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
                _ => bytes.into_owned(),
            };
            inputs.push(bytes);
        }
        inputs.extend(EDGES.iter().map(|bytes| bytes.to_vec()));
        for _ in 0..60 {
            let len = (random.next() % 24) as usize;
            inputs.push((0..len).map(|_| random.next() as u8).collect());
        }
        for bytes in inputs {
            vectors.push(Vector {
                encoding: encoding.name().to_owned(),
                hex: hex::encode(&bytes),
                text: EncodingRs.decode(encoding, &bytes),
            });
        }
    }
    vectors
}

#[test]
fn vectors_are_what_encoding_rs_decodes() {
    let path = common::crate_root()
        .join("tests")
        .join("vectors")
        .join("charsets.json");
    let generated = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from what encoding_rs decodes: UPDATE_VECTORS=1 cargo test --test email_charsets",
        path.display()
    );
}
