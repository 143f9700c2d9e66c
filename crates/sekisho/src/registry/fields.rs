//! What an account may hold: each channel declares its own fields ([`crate::channels::Channel::fields`]); the
//! fields every account may carry (backend, replies, notifications, body cap) are declared once here. A value is
//! checked against its field's [`Format`] before anything is stored.

use std::collections::BTreeMap;

use crate::channels;
use crate::mail;

/// One field an account may hold, under the same name as its environment binding
/// `{CHANNEL}_{ACCOUNT}_{FIELD}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FieldSpec {
    pub name: &'static str,
    pub required: bool,
    /// Stored sealed, shown only by fingerprint; may hold several values (rotation), newest first.
    pub secret: bool,
    pub format: Format,
    /// Where the admin finds the value, in Japanese and English (the console shows it beside the field).
    pub help_ja: &'static str,
    pub help_en: &'static str,
}

impl FieldSpec {
    pub const fn secret(name: &'static str, format: Format) -> FieldSpec {
        FieldSpec {
            name,
            required: true,
            secret: true,
            format,
            help_ja: "",
            help_en: "",
        }
    }

    pub const fn setting(name: &'static str, format: Format) -> FieldSpec {
        FieldSpec {
            name,
            required: false,
            secret: false,
            format,
            help_ja: "",
            help_en: "",
        }
    }

    pub const fn optional(self) -> FieldSpec {
        FieldSpec {
            required: false,
            ..self
        }
    }

    pub const fn required(self) -> FieldSpec {
        FieldSpec {
            required: true,
            ..self
        }
    }

    pub const fn sealed(self) -> FieldSpec {
        FieldSpec {
            secret: true,
            ..self
        }
    }

    pub const fn help(self, ja: &'static str, en: &'static str) -> FieldSpec {
        FieldSpec {
            help_ja: ja,
            help_en: en,
            ..self
        }
    }
}

/// The shape a value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Format {
    /// Exactly `len` hexadecimal digits (LINE's channel secret: 32; Discord's public key: 64).
    Hex { len: usize },
    /// A WeChat/WeCom EncodingAESKey: 43 characters of the base64 alphabet.
    EncodingAesKey,
    /// `https://…`, or `http://` only to 127.0.0.1 (a local backend in development).
    Url,
    /// Decimal digits, within bounds.
    Number { min: u64, max: u64 },
    /// One of the listed words.
    OneOf { values: &'static [&'static str] },
    /// Printable ASCII without spaces, `min..=max` characters (tokens, ids).
    Token { min: usize, max: usize },
    /// Any text up to `max` bytes without control characters other than line breaks (templates).
    Text { max: usize },
    /// A PEM block (LINE WORKS' private key file).
    Pem,
    /// A comma-separated list of e-mail addresses.
    Addresses,
}

impl Format {
    /// `Err(problem)` in a few words the console shows next to the field.
    pub fn check(&self, value: &str) -> Result<(), &'static str> {
        match *self {
            Format::Hex { len } => (value.len() == len
                && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(())
            .ok_or(match len {
                32 => "must be 32 hexadecimal digits",
                64 => "must be 64 hexadecimal digits",
                _ => "wrong number of hexadecimal digits",
            }),
            Format::EncodingAesKey => (value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
            .then_some(())
            .ok_or("must be 43 characters of letters, digits, + and /"),
            Format::Url => check_url(value),
            Format::Number { min, max } => match value.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(())
                }
                _ => Err("must be a whole number in the allowed range"),
            },
            Format::OneOf { values } => values
                .contains(&value)
                .then_some(())
                .ok_or("is not one of the allowed values"),
            Format::Token { min, max } => ((min..=max).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_graphic()))
            .then_some(())
            .ok_or("must be printable characters without spaces, of the allowed length"),
            Format::Text { max } => (value.len() <= max
                && !value
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\r'))
            .then_some(())
            .ok_or("too long, or holds control characters"),
            Format::Pem => (value.trim_start().starts_with("-----BEGIN ")
                && value.trim_end().ends_with("-----")
                && value.len() <= 8192)
                .then_some(())
                .ok_or("must be a PEM private key (-----BEGIN … -----END …-----)"),
            Format::Addresses => {
                let ok = value.split(',').map(str::trim).all(|address| {
                    let mut parts = address.splitn(2, '@');
                    let local = parts.next().unwrap_or_default();
                    let domain = parts.next().unwrap_or_default();
                    !local.is_empty()
                        && domain.contains('.')
                        && address.len() <= 254
                        && address.bytes().all(|b| b.is_ascii_graphic())
                });
                ok.then_some(())
                    .ok_or("must be e-mail addresses separated by commas")
            }
        }
    }
}

fn check_url(value: &str) -> Result<(), &'static str> {
    let rest = if let Some(rest) = value.strip_prefix("https://") {
        rest
    } else if let Some(rest) = value.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(host, _port)| host);
        if host != "127.0.0.1" {
            return Err("must be https (http only to 127.0.0.1)");
        }
        rest
    } else {
        return Err("must be https (http only to 127.0.0.1)");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || value.len() > 2048 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("is not a valid URL");
    }
    Ok(())
}

/// Fields any account may carry, whatever its channel.
pub static COMMON_FIELDS: &[FieldSpec] = &[
    FieldSpec::setting("BACKEND_URL", Format::Url).help(
        "イベントの転送先（バックエンドの受信 URL）。未設定なら BACKEND_URL を使います",
        "Where this account's events are delivered; unset: the gateway's BACKEND_URL",
    ),
    FieldSpec::setting("REPLY_URL", Format::Url).help(
        "返信をプロバイダーの応答に載せる場合の問い合わせ先",
        "The backend asked for a reply carried in the provider's response",
    ),
    FieldSpec::setting(
        "REPLY_TIMEOUT_MS",
        Format::Number {
            min: 1,
            max: 30_000,
        },
    )
    .help(
        "返信の問い合わせを待つ時間（ミリ秒）",
        "How long the reply call may take, in milliseconds",
    ),
    FieldSpec::setting(
        "MAX_BODY_BYTES",
        Format::Number {
            min: 1,
            max: 104_857_600,
        },
    )
    .help(
        "受け付ける本文の上限（バイト）",
        "The largest body accepted, in bytes",
    ),
    FieldSpec::setting(
        "NOTIFY_CHATWORK_ROOM",
        Format::Number {
            min: 1,
            max: u64::MAX,
        },
    )
    .help(
        "通知先の Chatwork ルーム ID（ルームを開いたときのアドレスの rid の後の数字）",
        "The Chatwork room announced in (the number after `rid` in the room's address)",
    ),
    FieldSpec::setting("NOTIFY_TEMPLATE", Format::Text { max: 4096 }).help(
        "Chatwork 通知のテンプレート",
        "The Chatwork notification template",
    ),
    FieldSpec::setting("NOTIFY_TYPES", Format::Text { max: 1024 }).help(
        "通知するイベント種別（カンマ区切り）",
        "The event types announced (comma-separated)",
    ),
    FieldSpec::setting(
        "NOTIFY_SELF_UNREAD",
        Format::OneOf {
            values: &["true", "false"],
        },
    )
    .help(
        "自分宛ての通知を未読にする",
        "Leave the bot's own notices unread",
    ),
    FieldSpec::secret(
        "BACKEND_SIGNING_SECRET",
        Format::Token { min: 10, max: 200 },
    )
    .optional()
    .help(
        "このアカウントのイベントに署名する whsec_ 鍵（未設定なら BACKEND_SIGNING_SECRET）",
        "The whsec_ key this account's events are signed with; unset: the gateway's",
    ),
];

/// The fields of `channel` (its own, then the common ones), or `None` for an unknown channel.
pub fn fields_of(channel: &str) -> Option<Vec<&'static FieldSpec>> {
    let own: &'static [FieldSpec] = if channel == mail::CHANNEL {
        mail::FIELDS
    } else {
        channels::find(channel)?.fields()
    };
    Some(own.iter().chain(COMMON_FIELDS.iter()).collect())
}

/// The spec of one field of `channel`.
pub fn field_of(channel: &str, name: &str) -> Option<&'static FieldSpec> {
    fields_of(channel)?
        .into_iter()
        .find(|spec| spec.name == name)
}

/// Every channel a registry account may belong to: the HTTP channels and e-mail.
pub fn channel_names() -> impl Iterator<Item = &'static str> {
    channels::CHANNELS
        .iter()
        .map(|channel| channel.name())
        .chain([mail::CHANNEL])
}

/// A value given for a field in a write, before it is sealed: one value for a setting; one or several for a
/// secret (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GivenValue {
    One(String),
    Several(Vec<String>),
}

/// A refused field, as the API answers it: `422 {"error":"invalid_field","field":…,"problem":…}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: &'static str,
}

impl FieldError {
    pub fn new(field: &str, problem: &'static str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            problem,
        }
    }
}

/// Checks a whole account's fields: every name declared, every required field present, every value of its
/// format. Returns the values per field, trimmed, in field order.
pub fn validate(
    channel: &str,
    given: &BTreeMap<String, GivenValue>,
) -> Result<BTreeMap<String, Vec<String>>, FieldError> {
    let specs = fields_of(channel).unwrap_or_default();
    for name in given.keys() {
        if !specs.iter().any(|spec| spec.name == name) {
            return Err(FieldError::new(name, "is not a field of this channel"));
        }
    }
    let mut out = BTreeMap::new();
    for spec in specs {
        match given.get(spec.name) {
            None if spec.required => return Err(FieldError::new(spec.name, "is required")),
            None => {}
            Some(value) => {
                let values = check_value(spec, value)?;
                out.insert(spec.name.to_owned(), values);
            }
        }
    }
    Ok(out)
}

/// One field's value(s), checked: a secret may have several (at most [`MAX_SECRET_VALUES`]), a setting one.
pub fn check_value(spec: &FieldSpec, value: &GivenValue) -> Result<Vec<String>, FieldError> {
    let values: Vec<String> = match value {
        GivenValue::One(value) => vec![value.trim().to_owned()],
        GivenValue::Several(_) if !spec.secret => {
            return Err(FieldError::new(spec.name, "takes one value, not a list"))
        }
        GivenValue::Several(values) => values.iter().map(|v| v.trim().to_owned()).collect(),
    };
    if values.is_empty() || values.iter().any(String::is_empty) {
        return Err(FieldError::new(spec.name, "is empty"));
    }
    if values.len() > MAX_SECRET_VALUES {
        return Err(FieldError::new(
            spec.name,
            "has too many values (at most 5)",
        ));
    }
    if matches!(spec.format, Format::Pem) && values.len() > 1 {
        return Err(FieldError::new(spec.name, "takes one value"));
    }
    if spec.secret
        && !matches!(spec.format, Format::Pem)
        && values.iter().any(|v| v.contains([',', ' ', '\t', '\n']))
    {
        return Err(FieldError::new(
            spec.name,
            "must not contain commas or whitespace (they separate rotated values)",
        ));
    }
    for value in &values {
        spec.format
            .check(value)
            .map_err(|problem| FieldError::new(spec.name, problem))?;
    }
    let mut unique = values.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != values.len() {
        return Err(FieldError::new(spec.name, "holds the same value twice"));
    }
    Ok(values)
}

/// At most this many values per secret field: the newest and a few being retired.
pub const MAX_SECRET_VALUES: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_declares_its_account_field_as_a_required_field() {
        for channel in channels::CHANNELS {
            let specs = fields_of(channel.name()).unwrap();
            let account_field = specs
                .iter()
                .find(|spec| spec.name == channel.account_field())
                .unwrap_or_else(|| {
                    panic!("{} declares {}", channel.name(), channel.account_field())
                });
            assert!(account_field.required, "{}", channel.name());
            for spec in &specs {
                assert!(
                    !spec.help_en.is_empty() && !spec.help_ja.is_empty(),
                    "{}: {}",
                    channel.name(),
                    spec.name
                );
            }
            let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(
                before,
                names.len(),
                "{} declares a field twice",
                channel.name()
            );
        }
        assert!(fields_of("email")
            .unwrap()
            .iter()
            .any(|s| s.name == "ADDRESS" && s.required));
        assert!(fields_of("nope").is_none());
    }

    #[test]
    fn formats_accept_the_real_shapes_and_refuse_others() {
        let hex32 = Format::Hex { len: 32 };
        assert!(hex32.check("0123456789abcdef0123456789ABCDEF").is_ok());
        assert!(hex32.check("0123456789abcdef").is_err());
        assert!(hex32.check("0123456789abcdef0123456789abcdeg").is_err());
        // The EncodingAESKey of the WeChat documentation's sample.
        let aes = Format::EncodingAesKey;
        assert!(aes
            .check("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
            .is_ok());
        assert!(aes
            .check("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF=")
            .is_err());
        assert!(Format::Hex { len: 64 }
            .check("e6a6e1f8c0c4b4bb2ff24e9b9e3d4e1a7d3c3a1f4e1a7d3c3a1f4e1a7d3c3a1f")
            .is_ok());
        assert!(Format::Url.check("https://backend.example/in?x=1").is_ok());
        assert!(Format::Url.check("http://127.0.0.1:8788/in").is_ok());
        assert!(Format::Url.check("http://localhost:8788/in").is_err());
        assert!(Format::Url.check("http://127.0.0.1.evil.example/").is_err());
        assert!(Format::Url.check("ftp://x").is_err());
        assert!(Format::Url.check("https://").is_err());
        assert!(Format::Addresses
            .check("a@example.com, b@example.co.jp")
            .is_ok());
        assert!(Format::Addresses.check("nobody").is_err());
        assert!(Format::Pem
            .check("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
            .is_ok());
        assert!(Format::Pem.check("MIIE").is_err());
        assert!(Format::Text { max: 5 }.check("abc\n").is_ok());
        assert!(Format::Text { max: 5 }.check("a\u{0}").is_err());
    }

    #[test]
    fn a_private_key_keeps_its_line_breaks_but_other_secrets_refuse_separators() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIE abc\n-----END PRIVATE KEY-----";
        let spec = field_of("lineworks", "PRIVATE_KEY").unwrap();
        assert_eq!(
            check_value(spec, &GivenValue::One(pem.into())).unwrap(),
            [pem]
        );
        let secret = field_of("line", "CHANNEL_SECRET").unwrap();
        assert!(check_value(
            secret,
            &GivenValue::One("0123456789abcdef,123456789abcdef".into())
        )
        .is_err());
    }
}
