//! WXBizMsgCrypt: the message encryption shared by WeChat Official Accounts and WeCom.
//!
//! - key = base64(EncodingAESKey + "="), 32 bytes; AES-256-CBC with iv = key[0..16].
//! - plaintext = random(16) ‖ u32 big-endian msg_len ‖ msg ‖ receive_id, PKCS#7-padded to 32-byte blocks.
//! - signature = hex(sha1(concat(sort(token, timestamp, nonce[, Encrypt/echostr])))).

use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};

use super::{secrets_equal, DecryptError};

/// Length of an EncodingAESKey as the consoles issue it.
pub const ENCODING_AES_KEY_LEN: usize = 43;
const BLOCK: usize = 16;
/// WXBizMsgCrypt pads to 32-byte blocks, not to the AES block size, so pad values run 1..=32.
const PAD_BLOCK: usize = 32;
/// The random prefix of every encrypted message.
pub const RANDOM_LEN: usize = 16;
const HEADER_LEN: usize = RANDOM_LEN + 4;

/// The official EncodingAESKeys are non-canonical base64 (their last character carries non-zero
/// trailing bits), so a strict decoder rejects real keys.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decoded EncodingAESKey.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey {
    key: [u8; 32],
    iv: [u8; 16],
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(..)")
    }
}

/// Why an EncodingAESKey is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AesKeyError {
    #[error("EncodingAESKey must be exactly 43 characters")]
    Length,
    #[error("EncodingAESKey is not base64")]
    NotBase64,
}

/// A message too long for the 32-bit length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message is longer than the 32-bit length field allows")]
pub struct MessageTooLong;

impl AesKey {
    pub fn from_encoding_aes_key(text: &str) -> Result<AesKey, AesKeyError> {
        if text.len() != ENCODING_AES_KEY_LEN {
            return Err(AesKeyError::Length);
        }
        let bytes = LENIENT
            .decode(format!("{text}="))
            .map_err(|_| AesKeyError::NotBase64)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| AesKeyError::NotBase64)?;
        let mut iv = [0u8; 16];
        iv.iter_mut()
            .zip(key.iter())
            .for_each(|(iv_byte, key_byte)| *iv_byte = *key_byte);
        Ok(AesKey { key, iv })
    }

    fn decryptor(&self) -> cbc::Decryptor<Aes256> {
        cbc::Decryptor::<Aes256>::new(&self.key.into(), &self.iv.into())
    }

    fn encryptor(&self) -> cbc::Encryptor<Aes256> {
        cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.iv.into())
    }
}

/// A successfully decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    pub random: [u8; RANDOM_LEN],
    pub message: String,
    /// The PKCS#7 pad value that was removed (1..=32).
    pub pad: u8,
}

/// Decrypts `encrypt` (base64) and checks padding, length field, receive id and UTF-8, in that order.
pub fn decrypt(key: &AesKey, encrypt: &str, receive_id: &str) -> Result<Decrypted, DecryptError> {
    let mut buffer = LENIENT
        .decode(encrypt.trim())
        .map_err(|_| DecryptError::CiphertextNotBase64)?;
    if buffer.is_empty() || buffer.len() % BLOCK != 0 {
        return Err(DecryptError::CiphertextLength);
    }
    let plain = key
        .decryptor()
        .decrypt_padded_mut::<NoPadding>(&mut buffer)
        .map_err(|_| DecryptError::CiphertextLength)?;
    let pad = *plain.last().ok_or(DecryptError::CiphertextLength)?;
    let pad_len = usize::from(pad);
    if !(1..=PAD_BLOCK).contains(&pad_len) || pad_len > plain.len() {
        return Err(DecryptError::BadPadding);
    }
    let content_len = plain.len() - pad_len;
    let (content, padding) = plain.split_at(content_len);
    if padding.iter().any(|&byte| byte != pad) {
        return Err(DecryptError::BadPadding);
    }
    let random: [u8; RANDOM_LEN] = content
        .get(..RANDOM_LEN)
        .and_then(|r| r.try_into().ok())
        .ok_or(DecryptError::LengthOutOfRange)?;
    let length_field: [u8; 4] = content
        .get(RANDOM_LEN..HEADER_LEN)
        .and_then(|l| l.try_into().ok())
        .ok_or(DecryptError::LengthOutOfRange)?;
    let msg_len = usize::try_from(u32::from_be_bytes(length_field))
        .map_err(|_| DecryptError::LengthOutOfRange)?;
    let msg_end = HEADER_LEN
        .checked_add(msg_len)
        .ok_or(DecryptError::LengthOutOfRange)?;
    let message = content
        .get(HEADER_LEN..msg_end)
        .ok_or(DecryptError::LengthOutOfRange)?;
    let found_receive_id = content
        .get(msg_end..)
        .ok_or(DecryptError::LengthOutOfRange)?;
    if !secrets_equal(found_receive_id, receive_id.as_bytes()) {
        return Err(DecryptError::ReceiveIdMismatch);
    }
    let message = std::str::from_utf8(message)
        .map_err(|_| DecryptError::NotUtf8)?
        .to_owned();
    Ok(Decrypted {
        random,
        message,
        pad,
    })
}

/// Tries every key (newest first, for EncodingAESKey rotation) and returns the index of the one that decrypted.
/// When none does, the error is the one that got furthest: a wrong key almost always fails on padding, so a
/// later failure (say, a receive-id mismatch) says more about what was sent.
pub fn decrypt_any(
    keys: &[AesKey],
    encrypt: &str,
    receive_id: &str,
) -> Result<(usize, Decrypted), DecryptError> {
    let mut furthest: Option<DecryptError> = None;
    for (index, key) in keys.iter().enumerate() {
        match decrypt(key, encrypt, receive_id) {
            Ok(decrypted) => return Ok((index, decrypted)),
            Err(error) => {
                if furthest.is_none_or(|seen| stage(error) > stage(seen)) {
                    furthest = Some(error);
                }
            }
        }
    }
    Err(furthest.unwrap_or(DecryptError::BadPadding))
}

fn stage(error: DecryptError) -> u8 {
    match error {
        DecryptError::CiphertextNotBase64 => 0,
        DecryptError::CiphertextLength => 1,
        DecryptError::BadPadding => 2,
        DecryptError::LengthOutOfRange => 3,
        DecryptError::ReceiveIdMismatch => 4,
        DecryptError::NotUtf8 => 5,
    }
}

/// Encrypts `message` for `receive_id` with the given 16 random bytes (injected, so the result is reproducible).
pub fn encrypt(
    key: &AesKey,
    random: &[u8; RANDOM_LEN],
    message: &[u8],
    receive_id: &str,
) -> Result<String, MessageTooLong> {
    let msg_len = u32::try_from(message.len()).map_err(|_| MessageTooLong)?;
    let unpadded = HEADER_LEN + message.len() + receive_id.len();
    let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
    let mut buffer = Vec::with_capacity(unpadded + pad);
    buffer.extend_from_slice(random);
    buffer.extend_from_slice(&msg_len.to_be_bytes());
    buffer.extend_from_slice(message);
    buffer.extend_from_slice(receive_id.as_bytes());
    // pad is in 1..=32, so it fits a byte.
    buffer.resize(unpadded + pad, pad as u8);
    let length = buffer.len();
    let cipher = key
        .encryptor()
        .encrypt_padded_mut::<NoPadding>(&mut buffer, length)
        .map_err(|_| MessageTooLong)?;
    Ok(STANDARD.encode(cipher))
}

/// SHA-1 over the lexicographically sorted, concatenated strings.
pub fn signature(parts: &[&str]) -> [u8; 20] {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// [`signature`] as the lowercase hex the providers send.
pub fn signature_hex(parts: &[&str]) -> String {
    super::hex_encode(&signature(parts))
}

/// Index of the first token whose signature over `token` + `parts` equals the presented hex signature.
/// Every token is checked, each in constant time; a signature that is not 40 hex digits matches nothing.
pub fn matching_token<T: AsRef<str>>(
    tokens: &[T],
    parts: &[&str],
    presented_hex: &str,
) -> Option<usize> {
    let presented = hex::decode(presented_hex)
        .ok()
        .filter(|bytes| bytes.len() == 20)?;
    let mut found = None;
    for (index, token) in tokens.iter().enumerate() {
        let mut all = Vec::with_capacity(parts.len() + 1);
        all.push(token.as_ref());
        all.extend_from_slice(parts);
        if secrets_equal(&signature(&all), &presented) && found.is_none() {
            found = Some(index);
        }
    }
    found
}

/// An encrypted passive reply as the Official Account and WeCom apps expect it in the response body.
pub struct PassiveReply<'a> {
    pub key: &'a AesKey,
    pub token: &'a str,
    pub receive_id: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub random: &'a [u8; RANDOM_LEN],
}

impl PassiveReply<'_> {
    /// `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>` around the encrypted `reply_xml`.
    pub fn xml(&self, reply_xml: &str) -> Result<String, MessageTooLong> {
        let (encrypt, signature) = self.seal(reply_xml)?;
        Ok(format!(
            "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature>\
             <TimeStamp>{}</TimeStamp><Nonce><![CDATA[{}]]></Nonce></xml>",
            self.timestamp, self.nonce
        ))
    }

    /// The JSON form WeCom AI bots expect: `{"encrypt","msgsignature","timestamp","nonce"}`.
    pub fn json(&self, reply_json: &str) -> Result<String, MessageTooLong> {
        let (encrypt, signature) = self.seal(reply_json)?;
        Ok(serde_json::json!({
            "encrypt": encrypt,
            "msgsignature": signature,
            "timestamp": self.timestamp,
            "nonce": self.nonce,
        })
        .to_string())
    }

    fn seal(&self, reply: &str) -> Result<(String, String), MessageTooLong> {
        let encrypt = encrypt(self.key, self.random, reply.as_bytes(), self.receive_id)?;
        let signature = signature_hex(&[self.token, self.timestamp, self.nonce, &encrypt]);
        Ok((encrypt, signature))
    }
}

#[cfg(test)]
mod tests;
