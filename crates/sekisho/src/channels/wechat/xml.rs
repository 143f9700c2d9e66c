//! What the `wechat` and `wecom` channels share about a *decrypted* (or plaintext-mode) message: its XML as
//! JSON, and its normalization into the envelope. The encrypted envelope around it is read by
//! [`encrypted`](super::encrypted), settings live in [`settings`](super::settings).

use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;
use serde_json::{Map, Value};

use crate::channels::text_at;
use crate::envelope::Raw;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Location, Message, Postback,
    Sender, Verification, UNRECOGNIZED_TYPE,
};
use crate::Rejection;

/// Nesting deeper than this is not something WeChat or WeCom send; refusing it bounds the parser's work.
const MAX_DEPTH: usize = 32;

const MALFORMED_XML: Rejection = Rejection::MalformedBody { expected: "XML" };

/// Parses `<xml>…</xml>` into a JSON object of the root's children: leaf elements become strings (CDATA and
/// text alike, entities unescaped), elements with children nested objects, repeated elements arrays.
/// Attributes are ignored (neither provider uses them); a DTD is refused.
pub(super) fn parse(xml: &str) -> Result<Map<String, Value>, Rejection> {
    struct Frame {
        name: String,
        fields: Map<String, Value>,
        text: String,
        has_children: bool,
    }

    fn close(frame: Frame) -> Value {
        if frame.has_children {
            Value::Object(frame.fields)
        } else {
            Value::String(frame.text)
        }
    }

    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Map<String, Value>> = None;
    loop {
        let event = reader.read_event().map_err(|_| MALFORMED_XML)?;
        match event {
            // A second root element.
            XmlEvent::Start(_) | XmlEvent::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err(MALFORMED_XML);
            }
            XmlEvent::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(MALFORMED_XML);
                }
                let name = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| MALFORMED_XML)?
                    .to_owned();
                stack.push(Frame {
                    name,
                    fields: Map::new(),
                    text: String::new(),
                    has_children: false,
                });
            }
            XmlEvent::Empty(start) => {
                let name = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| MALFORMED_XML)?
                    .to_owned();
                match stack.last_mut() {
                    Some(parent) => {
                        parent.has_children = true;
                        insert(&mut parent.fields, name, Value::String(String::new()));
                    }
                    None => root = Some(Map::new()),
                }
            }
            XmlEvent::End(_) => {
                let frame = stack.pop().ok_or(MALFORMED_XML)?;
                match stack.last_mut() {
                    Some(parent) => {
                        parent.has_children = true;
                        let name = frame.name.clone();
                        insert(&mut parent.fields, name, close(frame));
                    }
                    None => root = Some(frame.fields),
                }
            }
            XmlEvent::Text(text) => {
                let text = text.unescape().map_err(|_| MALFORMED_XML)?;
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(MALFORMED_XML),
                }
            }
            XmlEvent::CData(data) => {
                let frame = stack.last_mut().ok_or(MALFORMED_XML)?;
                frame
                    .text
                    .push_str(std::str::from_utf8(&data).map_err(|_| MALFORMED_XML)?);
            }
            XmlEvent::DocType(_) => return Err(MALFORMED_XML),
            XmlEvent::Decl(_) | XmlEvent::PI(_) | XmlEvent::Comment(_) => {}
            XmlEvent::Eof => break,
        }
    }
    match root {
        Some(fields) if stack.is_empty() => Ok(fields),
        _ => Err(MALFORMED_XML),
    }
}

/// A repeated element becomes an array of its values, in document order.
fn insert(fields: &mut Map<String, Value>, name: String, value: Value) {
    match fields.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            fields.insert(name, value);
        }
    }
}

/// A non-empty string field.
pub(super) fn text(raw: &Value, key: &str) -> Option<String> {
    text_at(raw, &[key]).filter(|value| !value.is_empty())
}

/// A decrypted (or plaintext) XML message as one envelope event.
///
/// | MsgType / Event | type |
/// |---|---|
/// | text, image, voice, video, shortvideo, location, link, file | `message.received` |
/// | subscribe / unsubscribe | `follow` / `unfollow` |
/// | SCAN | `qr.scanned` |
/// | LOCATION | `location.reported` |
/// | CLICK | `menu.clicked` |
/// | VIEW, view_miniprogram | `menu.viewed` |
/// | scancode_push, scancode_waitmsg | `menu.scanned` |
/// | pic_sysphoto, pic_photo_or_album, pic_weixin | `menu.photo` |
/// | location_select | `menu.location_selected` |
/// | enter_agent | `agent.entered` |
/// | change_contact | `contact.changed` |
/// | change_external_contact | `external_contact.changed` |
/// | template_card_event | `postback` |
/// | anything else | `unrecognized` |
pub(super) fn normalize(
    fields: Map<String, Value>,
    verification: Verification,
    now_ms: u64,
) -> EventParts {
    let raw = Value::Object(fields);
    let msg_type = text(&raw, "MsgType").unwrap_or_default();
    let event = text(&raw, "Event");
    let (provider_type, event_type) = match (msg_type.as_str(), &event) {
        ("event", Some(event)) => (event.clone(), event_type(event)),
        ("event", None) => (msg_type.clone(), UNRECOGNIZED_TYPE),
        _ => (msg_type.clone(), message_type(&msg_type)),
    };
    let from = text(&raw, "FromUserName");
    let create_time = text(&raw, "CreateTime");
    let dedupe_key = dedupe_key(&raw, &provider_type);
    let time_ms = create_time
        .and_then(|t| t.parse::<u64>().ok())
        .and_then(|s| s.checked_mul(1000))
        .unwrap_or(now_ms);
    let message = if msg_type == "event" {
        event_message(&provider_type, &raw)
    } else {
        Some(message(&msg_type, &raw))
    };
    let data = EventData {
        postback: postback(&provider_type, &raw),
        members: text(&raw, "UserID")
            .filter(|_| event_type == "contact.changed")
            .map(|id| Sender { id, name: None })
            .into_iter()
            .collect(),
        conversation: from.clone().map(|id| Conversation {
            id,
            kind: ConversationKind::Direct,
        }),
        sender: from.map(|id| Sender { id, name: None }),
        message,
        ..EventData::new(provider_type, verification, Raw::rendered(&raw))
    };
    EventParts {
        dedupe_key,
        event_type: event_type.to_owned(),
        time_ms,
        data,
    }
}

/// Fields that tell apart events of one sender in the same second (two menu clicks, two template results, two
/// contact changes about different members); a retry repeats them all.
const EVENT_KEY_FIELDS: [&str; 6] = [
    "EventKey",
    "MsgID",
    "ChangeType",
    "UserID",
    "ExternalUserID",
    "TaskId",
];

/// The de-duplication key, from the message's own fields (authenticated in safe mode, where the whole XML
/// is decrypted), as a JSON array so that no field's value can shift into another's:
///
/// - a message: `["MsgId", FromUserName, MsgId]` — a `MsgId` is only unique per sender;
/// - an event (no `MsgId`): `["event", FromUserName, CreateTime, Event, [field, value]…]` with the
///   [`EVENT_KEY_FIELDS`] that are present, in that order. Events of WeCom's `sys` sender are thereby kept
///   apart by the member they are about.
fn dedupe_key(raw: &Value, provider_type: &str) -> String {
    let from = text(raw, "FromUserName").unwrap_or_default();
    let key = match text(raw, "MsgId") {
        Some(msg_id) => serde_json::json!(["MsgId", from, msg_id]),
        None => {
            let mut parts = vec![
                Value::from("event"),
                Value::from(from),
                Value::from(text(raw, "CreateTime").unwrap_or_default()),
                Value::from(provider_type),
            ];
            parts.extend(EVENT_KEY_FIELDS.iter().filter_map(|field| {
                text(raw, field).map(|value| serde_json::json!([field, value]))
            }));
            Value::Array(parts)
        }
    };
    key.to_string()
}

fn message_type(msg_type: &str) -> &'static str {
    match msg_type {
        "text" | "image" | "voice" | "video" | "shortvideo" | "location" | "link" | "file" => {
            "message.received"
        }
        _ => UNRECOGNIZED_TYPE,
    }
}

/// The Official Account spells menu events in capitals (`CLICK`), WeCom in lower case (`click`).
fn event_type(event: &str) -> &'static str {
    match event.to_ascii_lowercase().as_str() {
        "subscribe" => "follow",
        "unsubscribe" => "unfollow",
        "scan" => "qr.scanned",
        "location" => "location.reported",
        "click" => "menu.clicked",
        "view" | "view_miniprogram" => "menu.viewed",
        "scancode_push" | "scancode_waitmsg" => "menu.scanned",
        "pic_sysphoto" | "pic_photo_or_album" | "pic_weixin" => "menu.photo",
        "location_select" => "menu.location_selected",
        "enter_agent" => "agent.entered",
        "change_contact" => "contact.changed",
        "change_external_contact" => "external_contact.changed",
        "template_card_event" => "postback",
        _ => UNRECOGNIZED_TYPE,
    }
}

fn message(msg_type: &str, raw: &Value) -> Message {
    let attachment = |kind: &str, id_key: &str| Attachment {
        kind: kind.to_owned(),
        id: text(raw, id_key),
        ..Attachment::default()
    };
    let mut message = Message {
        id: text(raw, "MsgId"),
        kind: msg_type.to_owned(),
        ..Message::default()
    };
    match msg_type {
        "text" => message.text = text_at(raw, &["Content"]),
        "image" => message.attachments.push(Attachment {
            url: text(raw, "PicUrl"),
            ..attachment("image", "MediaId")
        }),
        "voice" => {
            message.kind = "audio".to_owned();
            // Recognition is present only when the account enabled speech recognition.
            message.text = text(raw, "Recognition");
            message.attachments.push(attachment("audio", "MediaId"));
        }
        "video" | "shortvideo" => {
            message.kind = "video".to_owned();
            message.attachments.push(attachment("video", "MediaId"));
        }
        "location" => {
            message.text = text(raw, "Label");
            message.location = location(raw, "Location_X", "Location_Y", text(raw, "Label"));
        }
        "link" => {
            message.text = text(raw, "Title");
            message.attachments.push(Attachment {
                kind: "link".to_owned(),
                url: text(raw, "Url"),
                name: text(raw, "Title"),
                ..Attachment::default()
            });
        }
        "file" => message.attachments.push(Attachment {
            name: text(raw, "Title"),
            size: text(raw, "FileTotalLen").and_then(|size| size.parse().ok()),
            ..attachment("file", "FileKey")
        }),
        _ => {}
    }
    message
}

/// A LOCATION report carries a position but is not a message: it is given as a `location` message without id.
fn event_message(event: &str, raw: &Value) -> Option<Message> {
    if !event.eq_ignore_ascii_case("location") {
        return None;
    }
    Some(Message {
        kind: "location".to_owned(),
        location: Some(location(raw, "Latitude", "Longitude", None)?),
        ..Message::default()
    })
}

fn location(
    raw: &Value,
    latitude: &str,
    longitude: &str,
    address: Option<String>,
) -> Option<Location> {
    let latitude = text(raw, latitude)?.trim().parse().ok()?;
    let longitude = text(raw, longitude)?.trim().parse().ok()?;
    Some(Location {
        latitude,
        longitude,
        title: None,
        address,
    })
}

/// The key a menu, QR code or card button carries. A QR code scanned by a new follower arrives as
/// `subscribe` with `EventKey` = `qrscene_` + the scene; the scene is given without the prefix, as in `SCAN`.
fn postback(event: &str, raw: &Value) -> Option<Postback> {
    let key = text(raw, "EventKey")?;
    let data = match event.to_ascii_lowercase().as_str() {
        "subscribe" => key.strip_prefix("qrscene_").unwrap_or(&key).to_owned(),
        "scan"
        | "click"
        | "view"
        | "view_miniprogram"
        | "scancode_push"
        | "scancode_waitmsg"
        | "pic_sysphoto"
        | "pic_photo_or_album"
        | "pic_weixin"
        | "location_select"
        | "template_card_event" => key,
        _ => return None,
    };
    let params = text(raw, "Ticket").map(|ticket| serde_json::json!({ "ticket": ticket }));
    Some(Postback { data, params })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_official_sample_plaintext() {
        let xml = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";
        let fields = parse(xml).unwrap();
        assert_eq!(
            Value::Object(fields),
            serde_json::json!({
                "ToUserName": "gh_10f6c3c3ac5a",
                "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
                "CreateTime": "1409735668",
                "MsgType": "text",
                "Content": "abcdteT",
                "MsgId": "6054768590064713728",
            })
        );
    }

    #[test]
    fn nested_repeated_empty_and_escaped_elements() {
        let xml = "<?xml version=\"1.0\"?><xml><Empty/><Open></Open><Esc>a &amp; b &#20013;</Esc><Mixed>x<![CDATA[<y>]]></Mixed>\
                   <SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>aa</PicMd5Sum></item><item><PicMd5Sum>bb</PicMd5Sum></item></PicList></SendPicsInfo></xml>";
        assert_eq!(
            Value::Object(parse(xml).unwrap()),
            serde_json::json!({
                "Empty": "",
                "Open": "",
                "Esc": "a & b 中",
                "Mixed": "x<y>",
                "SendPicsInfo": {"Count": "2", "PicList": {"item": [{"PicMd5Sum": "aa"}, {"PicMd5Sum": "bb"}]}},
            })
        );
    }

    #[test]
    fn malformed_xml_is_refused() {
        for xml in [
            "",
            "not xml",
            "<xml><a>1</b></xml>",
            "<xml><a>1</a>",
            "<xml></xml><xml></xml>",
            "<xml></xml>trailing",
            "<xml><a>&unknown;</a></xml>",
            "<!DOCTYPE x [<!ENTITY e \"boom\">]><xml><a>&e;</a></xml>",
            "{\"encrypt\":\"abc\"}",
        ] {
            assert_eq!(parse(xml), Err(MALFORMED_XML), "{xml:?}");
        }
        let deep = format!("<xml>{}{}</xml>", "<a>".repeat(40), "</a>".repeat(40));
        assert_eq!(parse(&deep), Err(MALFORMED_XML));
        assert!(parse("<xml/>").unwrap().is_empty());
    }

    fn normalized(xml: &str) -> EventParts {
        normalize(
            parse(xml).unwrap(),
            Verification {
                scheme: "test".into(),
                key_index: 0,
            },
            7,
        )
    }

    #[test]
    fn events_dedupe_on_sender_time_event_and_what_tells_them_apart() {
        let click = "<xml><FromUserName>o1</FromUserName><CreateTime>123</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>K</EventKey></xml>";
        let parts = normalized(click);
        assert_eq!(
            parts.dedupe_key,
            r#"["event","o1","123","CLICK",["EventKey","K"]]"#
        );
        assert_eq!(parts.event_type, "menu.clicked");
        assert_eq!(parts.time_ms, 123_000);
        assert_eq!(parts.data.postback.map(|p| p.data), Some("K".to_owned()));
        // Another menu item clicked in the same second is another event.
        assert_ne!(
            normalized(&click.replace(">K<", ">L<")).dedupe_key,
            normalized(click).dedupe_key
        );
        let no_time = normalized("<xml><MsgType>event</MsgType><Event>odd</Event></xml>");
        assert_eq!(
            (no_time.event_type.as_str(), no_time.time_ms),
            (UNRECOGNIZED_TYPE, 7)
        );
        assert_eq!(no_time.dedupe_key, r#"["event","","","odd"]"#);
        let contact = "<xml><FromUserName>sys</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>update_user</ChangeType><UserID>zhangsan</UserID></xml>";
        let parts = normalized(contact);
        assert_eq!(
            parts.dedupe_key,
            r#"["event","sys","1","change_contact",["ChangeType","update_user"],["UserID","zhangsan"]]"#
        );
        assert_eq!(
            parts.data.members,
            vec![Sender {
                id: "zhangsan".into(),
                name: None
            }]
        );
        // A value with the old separator cannot pose as two fields.
        let shifted = contact.replace(
            "<ChangeType>update_user</ChangeType><UserID>zhangsan</UserID>",
            "<UserID>update_user|zhangsan</UserID>",
        );
        assert_ne!(normalized(&shifted).dedupe_key, parts.dedupe_key);
    }

    /// MsgId has been seen to collide across senders: the key is scoped by FromUserName.
    #[test]
    fn messages_dedupe_on_sender_and_msg_id() {
        let text = "<xml><FromUserName><![CDATA[oA]]></FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>42</MsgId></xml>";
        let a = normalized(text);
        assert_eq!(a.dedupe_key, r#"["MsgId","oA","42"]"#);
        let b = normalized(&text.replace("oA", "oB"));
        assert_eq!(b.dedupe_key, r#"["MsgId","oB","42"]"#);
        assert_ne!(
            crate::envelope::event_id("wechat", "demo", &a.dedupe_key),
            crate::envelope::event_id("wechat", "demo", &b.dedupe_key)
        );
        // The text a sender types is not part of the key: a retry with the same MsgId is a duplicate.
        assert_eq!(
            normalized(&text.replace(">x<", ">y<")).dedupe_key,
            a.dedupe_key
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".*") {
            let _ = parse(&text);
        }

        #[test]
        fn parse_and_normalize_never_panic_on_xml_shaped_input(
            names in proptest::collection::vec("(MsgType|Event|EventKey|CreateTime|MsgId|Location_X|Latitude|UserID|[A-Za-z]{1,8})", 0..8),
            values in proptest::collection::vec("(event|text|voice|location|subscribe|SCAN|qrscene_1|[0-9.]{0,8}|.{0,8})", 0..8),
        ) {
            let body: String = names.iter().zip(&values).map(|(n, v)| format!("<{n}><![CDATA[{v}]]></{n}>")).collect();
            if let Ok(fields) = parse(&format!("<xml>{body}</xml>")) {
                let _ = normalize(fields, Verification { scheme: "t".into(), key_index: 0 }, 0);
            }
        }
    }
}
