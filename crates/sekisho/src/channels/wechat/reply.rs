//! WeChat and WeCom passive replies (被动回复): the reply message is the HTTP response to the message it
//! answers, `ToUserName`/`FromUserName` swapped and a fresh `CreateTime`; in safe mode encrypted with the key
//! that opened the request and signed with `msg_signature` ([`PassiveReply`]). Both wait 5 s for it (then
//! WeChat retries and, after three tries, shows the user "该公众号暂时无法提供服务").

use serde_json::{Map, Value};

use crate::channels::EdgeResponse;
use crate::crypto::wxbiz::{AesKey, PassiveReply, RANDOM_LEN};
use crate::reply::{cdata, plain_text, BackendReply, Budget, NoReply, RenderContext, RenderReply};

/// 5 s deadline: 4 s by default, at most 4.5 s, leaving the rest for verifying, queueing and the network.
const BUDGET: Budget = Budget {
    default_ms: 4_000,
    max_ms: 4_500,
};
/// Longer reply texts are cut (a gateway limit, well inside what a chat bubble shows).
const MAX_TEXT_CHARS: usize = 2_000;
/// `raw` fields nest at most this deep (a news reply is `Articles` → `item` → fields: 3).
const MAX_RAW_DEPTH: usize = 4;
/// Set by the gateway, never by a backend's `raw`.
const GATEWAY_FIELDS: [&str; 3] = ["ToUserName", "FromUserName", "CreateTime"];

/// The reply to one message: who wrote it (its `FromUserName`), to whom (its `ToUserName`), and in safe mode
/// the key and token that opened it.
#[derive(Debug)]
pub(crate) struct PassiveReplyTo {
    pub(crate) user: String,
    pub(crate) account: String,
    pub(crate) seal: Option<Seal>,
}

/// The account's values that opened the request: the reply is sealed with the same ones, which the
/// provider holds too.
pub(crate) struct Seal {
    pub(crate) key: AesKey,
    pub(crate) token: String,
    pub(crate) receive_id: String,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

impl PassiveReplyTo {
    /// The message's `FromUserName` and `ToUserName` as parsed from its XML; `None` when either is missing.
    pub(crate) fn for_message(fields: &Map<String, Value>, seal: Option<Seal>) -> Option<Self> {
        let field = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        Some(PassiveReplyTo {
            user: field("FromUserName")?.to_owned(),
            account: field("ToUserName")?.to_owned(),
            seal,
        })
    }

    fn message_xml(&self, reply: &BackendReply, now_s: u64) -> Result<String, NoReply> {
        let body = match reply {
            BackendReply::Text(text) => format!(
                "<MsgType>{}</MsgType><Content>{}</Content>",
                cdata("text"),
                cdata(&plain_text(text, MAX_TEXT_CHARS))
            ),
            BackendReply::Raw(Value::Object(fields)) => raw_fields(fields)?,
            BackendReply::Raw(_) => {
                return Err(NoReply::Unrenderable(
                    "`raw` must be an object of the reply's fields",
                ))
            }
        };
        Ok(format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{now_s}</CreateTime>{body}</xml>",
            cdata(&self.user),
            cdata(&self.account),
        ))
    }
}

impl RenderReply for PassiveReplyTo {
    fn budget(&self) -> Budget {
        BUDGET
    }

    fn render(
        &self,
        reply: &BackendReply,
        context: &RenderContext,
    ) -> Result<EdgeResponse, NoReply> {
        let now_s = context.now_ms / 1000;
        let xml = self.message_xml(reply, now_s)?;
        let body = match &self.seal {
            None => xml,
            Some(seal) => {
                let (random, rest) = context.entropy.split_at(RANDOM_LEN);
                let random: &[u8; RANDOM_LEN] = random
                    .try_into()
                    .map_err(|_| NoReply::Unrenderable("entropy"))?;
                let nonce = rest
                    .iter()
                    .take(8)
                    .fold(0u64, |n, &b| (n << 8) | u64::from(b))
                    % 10_000_000_000;
                PassiveReply {
                    key: &seal.key,
                    token: &seal.token,
                    receive_id: &seal.receive_id,
                    timestamp: &now_s.to_string(),
                    nonce: &nonce.to_string(),
                    random,
                }
                .xml(&xml)
                .map_err(|_| NoReply::Unrenderable("the reply is too long to encrypt"))?
            }
        };
        Ok(EdgeResponse {
            status: 200,
            content_type: "application/xml; charset=utf-8",
            body: body.into_bytes(),
        })
    }
}

/// A backend's own reply fields (`{"MsgType":"image","Image":{"MediaId":"…"}}`) as XML elements: strings and
/// numbers in CDATA, objects as nested elements, arrays as repeated `<item>`s (news articles). Element names
/// are checked, and the three fields the gateway sets are refused.
fn raw_fields(fields: &Map<String, Value>) -> Result<String, NoReply> {
    if !fields.get("MsgType").is_some_and(Value::is_string) {
        return Err(NoReply::Unrenderable("`raw` needs a `MsgType` string"));
    }
    if GATEWAY_FIELDS.iter().any(|name| fields.contains_key(*name)) {
        return Err(NoReply::Unrenderable(
            "`raw` may not set ToUserName, FromUserName or CreateTime",
        ));
    }
    let mut xml = String::new();
    write_fields(&mut xml, fields, 1)?;
    Ok(xml)
}

fn write_fields(
    xml: &mut String,
    fields: &Map<String, Value>,
    depth: usize,
) -> Result<(), NoReply> {
    for (name, value) in fields {
        write_element(xml, name, value, depth)?;
    }
    Ok(())
}

fn write_element(xml: &mut String, name: &str, value: &Value, depth: usize) -> Result<(), NoReply> {
    if depth > MAX_RAW_DEPTH {
        return Err(NoReply::Unrenderable("`raw` nests too deep"));
    }
    if !is_element_name(name) {
        return Err(NoReply::Unrenderable(
            "`raw` has a field name that is not an XML name",
        ));
    }
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
    match value {
        Value::String(text) => xml.push_str(&cdata(&plain_text(text, MAX_TEXT_CHARS))),
        Value::Number(number) => xml.push_str(&number.to_string()),
        Value::Object(fields) => write_fields(xml, fields, depth + 1)?,
        Value::Array(items) => {
            for item in items {
                write_element(xml, "item", item, depth + 1)?;
            }
        }
        Value::Bool(_) | Value::Null => {
            return Err(NoReply::Unrenderable(
                "`raw` values are strings, numbers, objects or arrays",
            ))
        }
    }
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
    Ok(())
}

/// ASCII letters, digits and `_`, starting with a letter: every field name WeChat and WeCom define.
fn is_element_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests;
