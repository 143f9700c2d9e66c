//! What an account may hold, declared as data: each channel lists its fields
//! ([`crate::channels::Channel::fields`]); the fields every account may carry (backend, replies, notifications,
//! body cap) are [`COMMON_FIELDS`]. The registry checks every value against its field's [`Format`] before it is
//! stored ([`crate::registry::fields`]).

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

/// `TIMESTAMP_SKEW_S`, declared alike by every channel whose signature covers a timestamp.
pub const TIMESTAMP_SKEW_FIELD: FieldSpec = FieldSpec::setting(
    "TIMESTAMP_SKEW_S",
    Format::Number {
        min: 1,
        max: 86_400,
    },
)
.help(
    "署名の時刻のずれの許容（秒）",
    "Allowed clock skew of the signature's timestamp, in seconds",
);

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
