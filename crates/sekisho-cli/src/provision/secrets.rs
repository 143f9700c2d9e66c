//! Webhook secrets on the admin's side: generating them, masking credentials for display, and the
//! `wrangler secret put` line that stores the same secret on the Worker.

use thiserror::Error;

/// Telegram's `secret_token` alphabet (`A-Z a-z 0-9 _ -`), which is also safe in a Meta verify token and in a
/// shell word. 64 symbols: a random byte masked to 6 bits picks one uniformly.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// Length of a generated secret: 48 symbols of 6 bits = 288 bits.
pub const GENERATED_SECRET_LEN: usize = 48;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomSourceFailed(String);

/// A fresh random secret of [`GENERATED_SECRET_LEN`] characters from `[A-Za-z0-9_-]`.
pub fn generate_secret() -> Result<String, RandomSourceFailed> {
    let mut bytes = [0u8; GENERATED_SECRET_LEN];
    getrandom::fill(&mut bytes).map_err(|e| RandomSourceFailed(e.to_string()))?;
    Ok(secret_from_bytes(&bytes))
}

fn secret_from_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .filter_map(|b| ALPHABET.get(usize::from(b & 0x3f)).map(|&c| char::from(c)))
        .collect()
}

/// Whether every character is in `[A-Za-z0-9_-]` (Telegram's rule for `secret_token`).
pub fn is_token_alphabet(text: &str) -> bool {
    text.bytes().all(|b| ALPHABET.contains(&b))
}

/// A credential for display: its first four characters and its length, never the rest. A Telegram bot token
/// keeps its public bot id (the part before `:`).
pub fn mask(secret: &str) -> String {
    let (visible, rest) = match secret.split_once(':') {
        Some((bot_id, rest)) if bot_id.bytes().all(|b| b.is_ascii_digit()) => {
            (format!("{bot_id}:"), rest)
        }
        _ => (String::new(), secret),
    };
    let chars = rest.chars().count();
    if chars <= 8 {
        return format!("{visible}… ({chars} chars)");
    }
    let head: String = rest.chars().take(4).collect();
    format!("{visible}{head}… ({chars} chars)")
}

/// `text` as one POSIX shell word in single quotes (a `'` becomes `'\''`).
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command that stores `value` as the Worker secret `binding`. `printf %s` adds no newline, so the
/// stored value is exactly the one sent to the provider.
pub fn wrangler_put_line(binding: &str, value: &str) -> String {
    format!(
        "printf %s {} | npx wrangler secret put {binding}",
        shell_quote(value)
    )
}

/// The same command for a secret the CLI does not know (LINE's channel secret, Meta's app secret): it reads the
/// value from an environment variable the admin sets, so the value never lands in shell history.
pub fn wrangler_put_placeholder(binding: &str, variable: &str) -> String {
    format!("printf %s \"${variable}\" | npx wrangler secret put {binding}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_use_the_telegram_alphabet_and_differ() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_eq!(a.len(), GENERATED_SECRET_LEN);
        assert!(is_token_alphabet(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn every_byte_maps_into_the_alphabet() {
        let all: Vec<u8> = (0..=255).collect();
        let secret = secret_from_bytes(&all);
        assert_eq!(secret.len(), 256);
        assert!(is_token_alphabet(&secret));
        assert!(secret.starts_with("ABCD"));
        assert!(secret.contains('_') && secret.contains('-'));
    }

    #[test]
    fn alphabet_check_refuses_other_characters() {
        assert!(is_token_alphabet("abc_DEF-123"));
        assert!(!is_token_alphabet("abc def"));
        assert!(!is_token_alphabet("a.b"));
        assert!(!is_token_alphabet("ü"));
    }

    #[test]
    fn masks_show_a_prefix_and_the_length_only() {
        assert_eq!(
            mask("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
            "123456789:AAHd… (34 chars)"
        );
        assert_eq!(mask("abcdefghijklmnop"), "abcd… (16 chars)");
        assert_eq!(mask("short"), "… (5 chars)");
        assert_eq!(mask("1234|secretsecretsecret"), "1234… (23 chars)");
    }

    #[test]
    fn wrangler_lines_quote_the_value() {
        assert_eq!(
            wrangler_put_line("TELEGRAM_ACME_SECRET_TOKEN", "s3cr-t_"),
            "printf %s 's3cr-t_' | npx wrangler secret put TELEGRAM_ACME_SECRET_TOKEN"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(
            wrangler_put_placeholder("LINE_ACME_CHANNEL_SECRET", "LINE_CHANNEL_SECRET"),
            "printf %s \"$LINE_CHANNEL_SECRET\" | npx wrangler secret put LINE_ACME_CHANNEL_SECRET"
        );
    }
}
