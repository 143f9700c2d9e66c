//! A slash command's reply: Slack shows the HTTP response of a slash command to the user who typed it, when it
//! comes within 3 s (`{"response_type":"ephemeral"|"in_channel","text":…}`, `content-type: application/json`).

use serde_json::{json, Value};

use crate::channels::EdgeResponse;
use crate::reply::{
    plain_text, slack_escaped, BackendReply, Budget, NoReply, RenderContext, RenderReply,
};

/// 3 s deadline: 2.5 s by default, at most 2.8 s.
const BUDGET: Budget = Budget {
    default_ms: 2_500,
    max_ms: 2_800,
};
/// Slack truncates message text past 40,000 characters; the gateway cuts well before.
const MAX_TEXT_CHARS: usize = 4_000;

#[derive(Debug)]
pub(super) struct SlashCommandReply;

impl RenderReply for SlashCommandReply {
    fn budget(&self) -> Budget {
        BUDGET
    }

    /// Text is escaped (`&`, `<`, `>`), so it cannot mention `@channel`, a user or a link the backend did not
    /// write as `raw`; it is shown only to the user who typed the command. `raw` is the response object itself
    /// (`blocks`, `response_type`, …), except one that would notify a whole channel or group: see
    /// [`broadcasts`].
    fn render(
        &self,
        reply: &BackendReply,
        _context: &RenderContext,
    ) -> Result<EdgeResponse, NoReply> {
        let body = match reply {
            BackendReply::Text(text) => json!({
                "response_type": "ephemeral",
                "text": slack_escaped(&plain_text(text, MAX_TEXT_CHARS)),
            }),
            BackendReply::Raw(raw @ Value::Object(_)) if broadcasts(raw) => {
                return Err(NoReply::Unrenderable(
                    "`raw` may not notify a channel (<!channel>, <!here>, <!everyone>, <!subteam^…>, link_names, parse=full)",
                ))
            }
            BackendReply::Raw(raw @ Value::Object(_)) => raw.clone(),
            BackendReply::Raw(_) => {
                return Err(NoReply::Unrenderable(
                    "`raw` must be a Slack message object",
                ))
            }
        };
        Ok(EdgeResponse::json(200, body.to_string()))
    }
}

/// Whether a raw reply would notify more than the person who typed the command: a broadcast or group mention
/// (`<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`) in any of its strings, or `link_names`/`parse=full`,
/// which turn a typed `@channel` into one.
fn broadcasts(raw: &Value) -> bool {
    match raw {
        Value::String(text) => {
            let text = text.to_ascii_lowercase();
            ["<!channel", "<!here", "<!everyone", "<!subteam"]
                .iter()
                .any(|mention| text.contains(mention))
        }
        Value::Array(items) => items.iter().any(broadcasts),
        Value::Object(fields) => fields.iter().any(|(name, value)| {
            (name == "link_names" && !matches!(value, Value::Bool(false) | Value::Null))
                || (name == "parse" && value.as_str() != Some("none"))
                || broadcasts(value)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: RenderContext = RenderContext {
        now_ms: 0,
        entropy: [0; 32],
    };

    fn body(reply: BackendReply) -> Value {
        let response = SlashCommandReply.render(&reply, &CONTEXT).unwrap();
        assert_eq!(response.content_type, "application/json");
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn text_is_an_ephemeral_message_without_mentions() {
        assert_eq!(
            body(BackendReply::Text(
                "受け付けました <!channel> <@U1> & <https://evil|ok>".into()
            )),
            json!({
                "response_type": "ephemeral",
                "text": "受け付けました &lt;!channel&gt; &lt;@U1&gt; &amp; &lt;https://evil|ok&gt;"
            })
        );
    }

    #[test]
    fn raw_objects_pass_and_other_values_do_not() {
        let blocks = json!({"response_type": "in_channel", "blocks": [{"type": "section"}]});
        assert_eq!(body(BackendReply::Raw(blocks.clone())), blocks);
        assert!(matches!(
            SlashCommandReply.render(&BackendReply::Raw(json!("text")), &CONTEXT),
            Err(NoReply::Unrenderable(_))
        ));
        let user =
            json!({"response_type": "in_channel", "text": "<@U1> 受け付けました", "parse": "none"});
        assert_eq!(body(BackendReply::Raw(user.clone())), user);
    }

    #[test]
    fn raw_replies_that_would_notify_a_channel_are_refused() {
        for broadcast in [
            json!({"response_type": "in_channel", "text": "<!everyone> 至急"}),
            json!({"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<!HERE|here>"}}]}),
            json!({"text": "<!channel>"}),
            json!({"text": "<!subteam^S123|@support>"}),
            json!({"response_type": "in_channel", "text": "@channel", "link_names": true}),
            json!({"response_type": "in_channel", "text": "@channel", "link_names": 1}),
            json!({"response_type": "in_channel", "text": "@channel", "parse": "full"}),
        ] {
            assert!(
                matches!(
                    SlashCommandReply.render(&BackendReply::Raw(broadcast.clone()), &CONTEXT),
                    Err(NoReply::Unrenderable(_))
                ),
                "{broadcast}"
            );
        }
    }
}
