//! E-mail charsets through the runtime's own `TextDecoder` (workerd implements the WHATWG encodings), so the
//! Worker carries no `encoding_rs` tables. The core calls it only for the charsets `mail-parser` cannot decode
//! itself, after handling byte order marks ([`sekisho::mail::charset`]).

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use sekisho::mail::charset::{CharsetDecoder, Encoding};

#[wasm_bindgen]
extern "C" {
    type TextDecoder;
    #[wasm_bindgen(constructor, catch)]
    fn new(label: &str, options: &JsValue) -> Result<TextDecoder, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn decode(this: &TextDecoder, input: &[u8]) -> Result<String, JsValue>;
}

/// `new TextDecoder(name, { ignoreBOM: true }).decode(bytes)`: replacement characters for malformed input (not
/// `fatal`), and a byte order mark kept as text (the core has already taken the one that counts).
pub(crate) struct RuntimeCharsets;

impl CharsetDecoder for RuntimeCharsets {
    fn decode(&self, encoding: Encoding, bytes: &[u8]) -> String {
        let options = js_sys::Object::new();
        let decoded = js_sys::Reflect::set(&options, &"ignoreBOM".into(), &JsValue::TRUE)
            .and_then(|_| TextDecoder::new(encoding.name(), &options))
            .and_then(|decoder| decoder.decode(bytes));
        match decoded {
            Ok(text) => text,
            Err(error) => {
                // Every workerd decodes these; should one not, the text stays as mail-parser read it.
                super::emit(&sekisho::log::operation_failed(
                    "TextDecoder failed",
                    &format!("{}: {error:?}", encoding.name()),
                ));
                String::from_utf8_lossy(bytes).into_owned()
            }
        }
    }
}
