//! An account's notification settings, read from its bindings most specific first:
//! `{CHANNEL}_{ACCOUNT}_{FIELD}` → `{CHANNEL}_{FIELD}` → `{FIELD}`.

use crate::config::{split_values, Account, Bindings};

use super::chatwork::is_valid_room_id;
use super::template::Template;
use super::{
    ChatworkNotice, NotifyError, SettingOrigin, DEFAULT_TEMPLATE, ROOM_FIELD, SELF_UNREAD_FIELD,
    TEMPLATE_FIELD, TYPES_FIELD,
};

/// An account's notification settings, resolved once per request and applied to each of its events.
#[derive(Debug)]
pub struct NoticeSettings {
    room_id: String,
    template_binding: Option<String>,
    self_unread: Option<bool>,
    types: Option<String>,
    /// A template that does not parse. Notices are queued all the same: their attempts wait (retrying on the
    /// delivery schedule) until the template is fixed; the request reports it so an admin finds it at once.
    pub template_problem: Option<NotifyError>,
}

/// The account's settings, or `None` when no room is configured at any level. Once a room is configured,
/// every setting is checked, so a broken one surfaces with the first event whatever its type.
pub fn settings(account: &Account<'_>) -> Result<Option<NoticeSettings>, NotifyError> {
    let Some(room) = lookup(account, ROOM_FIELD) else {
        return Ok(None);
    };
    if !is_valid_room_id(&room.value) {
        return Err(NotifyError::InvalidRoom {
            binding: SettingOrigin::Binding(room.binding),
        });
    }
    let self_unread = lookup(account, SELF_UNREAD_FIELD)
        .map(|setting| {
            parse_flag(&setting.value).ok_or(NotifyError::InvalidSelfUnread {
                binding: setting.binding,
            })
        })
        .transpose()?;
    let template = lookup(account, TEMPLATE_FIELD);
    let template_problem = template_from(template.as_ref()).err();
    Ok(Some(NoticeSettings {
        room_id: room.value,
        template_binding: template.map(|setting| setting.binding),
        self_unread,
        types: lookup(account, TYPES_FIELD).map(|setting| setting.value),
        template_problem,
    }))
}

impl NoticeSettings {
    /// The notice for an event of `event_type`, unless the type filter declines it.
    pub fn notice_for(&self, event_type: &str) -> Option<ChatworkNotice> {
        let selected = self
            .types
            .as_deref()
            .is_none_or(|types| type_selected(types, event_type));
        selected.then(|| ChatworkNotice {
            room_id: self.room_id.clone(),
            template_binding: self.template_binding.clone(),
            self_unread: self.self_unread,
        })
    }
}

/// `line` + `NOTIFY_TEMPLATE` → `LINE_NOTIFY_TEMPLATE`: a setting shared by every account of a channel.
pub fn channel_binding_name(channel: &str, field: &str) -> String {
    let mut name: String = channel
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    name.push('_');
    name.push_str(field);
    name
}

/// Whether a `NOTIFY_TYPES` value selects `event_type`. Entries are separated by commas or whitespace; each
/// is an exact type, a prefix wildcard like `message.*` (any type below `message.`), or `*` for every type.
/// A value with no entries selects nothing.
pub fn type_selected(filter: &str, event_type: &str) -> bool {
    split_values(filter)
        .iter()
        .any(|entry| type_entry_matches(entry, event_type))
}

fn type_entry_matches(entry: &str, event_type: &str) -> bool {
    if entry == "*" {
        return true;
    }
    match entry.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|below| !below.is_empty()),
        None => entry == event_type,
    }
}

/// A configured value and the binding that holds it.
struct Setting {
    binding: String,
    value: String,
}

fn lookup(account: &Account<'_>, field: &str) -> Option<Setting> {
    let chain = [
        account.binding_name(field),
        channel_binding_name(account.channel, field),
        field.to_owned(),
    ];
    first_set(account.bindings(), chain)
}

fn first_set(bindings: &dyn Bindings, chain: impl IntoIterator<Item = String>) -> Option<Setting> {
    chain
        .into_iter()
        .find_map(|binding| read(bindings, &binding).map(|value| Setting { binding, value }))
}

/// A binding's value, trimmed; `None` when unset or blank (the same rule as [`Account::field`]).
pub(super) fn read(bindings: &dyn Bindings, name: &str) -> Option<String> {
    bindings
        .get(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The template a queued notice is rendered with now: the binding it names if still set, else the next one up
/// its chain, else [`DEFAULT_TEMPLATE`].
pub(super) fn template_for_notice(
    bindings: &dyn Bindings,
    template_binding: Option<&str>,
) -> Result<Template, NotifyError> {
    template_from(first_set(bindings, template_chain(template_binding)).as_ref())
}

/// The bindings a notice's template is looked up in at send time, most specific first. Only names ending in
/// `NOTIFY_TEMPLATE` are ever read, so a tampered notice cannot have another binding (the API token) posted.
fn template_chain(template_binding: Option<&str>) -> Vec<String> {
    let Some(binding) = template_binding else {
        return Vec::new();
    };
    let mut chain = Vec::new();
    let scope = binding
        .strip_suffix(TEMPLATE_FIELD)
        .and_then(|prefix| prefix.strip_suffix('_'))
        .filter(|scope| !scope.is_empty());
    if let Some(scope) = scope {
        chain.push(binding.to_owned());
        // Channel names have no underscore, so in `{CHANNEL}_{ACCOUNT}` the first one ends the channel.
        if let Some((channel, _account)) = scope.split_once('_') {
            if !channel.is_empty() {
                chain.push(format!("{channel}_{TEMPLATE_FIELD}"));
            }
        }
    }
    chain.push(TEMPLATE_FIELD.to_owned());
    chain
}

fn template_from(setting: Option<&Setting>) -> Result<Template, NotifyError> {
    let (origin, text) = match setting {
        Some(setting) => (
            SettingOrigin::Binding(setting.binding.clone()),
            setting.value.as_str(),
        ),
        None => (SettingOrigin::DefaultTemplate, DEFAULT_TEMPLATE),
    };
    Template::parse(text).map_err(|source| NotifyError::Template {
        binding: origin,
        source,
    })
}

fn parse_flag(value: &str) -> Option<bool> {
    let value = value.to_ascii_lowercase();
    match value.as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::test_support::*;
    use super::super::TemplateError;
    use super::*;

    #[test]
    fn the_room_comes_from_the_account_then_the_channel_then_the_gateway() {
        let all = env(&[
            ("LINE_ACME_JP_NOTIFY_CHATWORK_ROOM", "111"),
            ("LINE_NOTIFY_CHATWORK_ROOM", "222"),
            ("NOTIFY_CHATWORK_ROOM", "333"),
        ]);
        assert_eq!(room_of(&all).as_deref(), Some("111"));

        let channel_and_global = env(&[
            ("LINE_NOTIFY_CHATWORK_ROOM", "222"),
            ("NOTIFY_CHATWORK_ROOM", "333"),
        ]);
        assert_eq!(room_of(&channel_and_global).as_deref(), Some("222"));

        let global = env(&[("NOTIFY_CHATWORK_ROOM", "333")]);
        assert_eq!(room_of(&global).as_deref(), Some("333"));

        let other_channel_and_account = env(&[
            ("SLACK_NOTIFY_CHATWORK_ROOM", "444"),
            ("LINE_OTHER_NOTIFY_CHATWORK_ROOM", "555"),
        ]);
        assert_eq!(room_of(&other_channel_and_account), None);
    }

    #[test]
    fn no_room_anywhere_means_no_notice_even_with_other_settings() {
        let bindings = env(&[
            ("NOTIFY_TYPES", "*"),
            ("NOTIFY_TEMPLATE", "{{broken"),
            ("NOTIFY_SELF_UNREAD", "maybe"),
        ]);
        assert_eq!(plan_for(&bindings, "message.received"), Ok(None));
    }

    #[test]
    fn a_blank_room_binding_counts_as_unset() {
        let bindings = env(&[
            ("LINE_ACME_JP_NOTIFY_CHATWORK_ROOM", "  "),
            ("NOTIFY_CHATWORK_ROOM", " 333\n"),
        ]);
        assert_eq!(room_of(&bindings).as_deref(), Some("333"));
    }

    #[test]
    fn a_room_id_is_one_to_twenty_digits() {
        let twenty = "9".repeat(20);
        assert_eq!(
            room_of(&env(&[("NOTIFY_CHATWORK_ROOM", &twenty)])),
            Some(twenty.clone())
        );
        for bad in [
            "abc",
            "12 34",
            "-1",
            "１２３",
            "123abc",
            "#!rid123",
            &"9".repeat(21),
        ] {
            let bindings = env(&[("LINE_NOTIFY_CHATWORK_ROOM", bad)]);
            let error = plan_for(&bindings, "message.received").unwrap_err();
            assert_eq!(
                error,
                NotifyError::InvalidRoom {
                    binding: "LINE_NOTIFY_CHATWORK_ROOM".into()
                },
                "{bad:?}"
            );
            assert_eq!(error.reason(), "invalid_notify_room");
            assert!(error.to_string().contains("LINE_NOTIFY_CHATWORK_ROOM"));
        }
    }

    #[test]
    fn the_type_filter_takes_exact_types_prefix_wildcards_and_star() {
        assert!(type_selected("follow, message.*", "message.received"));
        assert!(type_selected("follow, message.*", "message.a.b"));
        assert!(type_selected("follow message.*", "follow"));
        assert!(type_selected("*", "unrecognized"));
        assert!(!type_selected("message.*", "messages.x"));
        assert!(!type_selected("message.*", "message"));
        assert!(!type_selected("message.*", "message."));
        assert!(!type_selected("follow", "unfollow"));
        assert!(!type_selected("message.received", "message.received.extra"));
        assert!(!type_selected(" , ", "message.received"));
    }

    #[test]
    fn the_type_filter_decides_per_event_and_falls_back_like_the_room() {
        let mut bindings = env(&[
            ("NOTIFY_CHATWORK_ROOM", "123"),
            ("NOTIFY_TYPES", "follow"),
            ("LINE_NOTIFY_TYPES", "message.*, form.submitted"),
        ]);
        assert!(plan_for(&bindings, "message.received").unwrap().is_some());
        assert!(plan_for(&bindings, "form.submitted").unwrap().is_some());
        assert_eq!(plan_for(&bindings, "follow"), Ok(None));
        assert_eq!(plan_for(&bindings, "postback"), Ok(None));

        bindings.insert("LINE_ACME_JP_NOTIFY_TYPES".into(), "*".into());
        assert!(plan_for(&bindings, "postback").unwrap().is_some());

        let unfiltered = env(&[("NOTIFY_CHATWORK_ROOM", "123")]);
        for event_type in ["message.received", "unrecognized", "member.joined"] {
            assert!(plan_for(&unfiltered, event_type).unwrap().is_some());
        }
    }

    #[test]
    fn settings_are_checked_even_when_the_filter_declines_the_event() {
        let bindings = env(&[
            ("NOTIFY_CHATWORK_ROOM", "123"),
            ("NOTIFY_TYPES", "follow"),
            ("LINE_NOTIFY_SELF_UNREAD", "maybe"),
        ]);
        assert_eq!(
            plan_for(&bindings, "message.received")
                .unwrap_err()
                .reason(),
            "invalid_notify_self_unread"
        );
    }

    #[test]
    fn the_template_binding_is_the_most_specific_one_set() {
        let mut bindings = env(&[("NOTIFY_CHATWORK_ROOM", "123")]);
        let template_of = |bindings: &HashMap<String, String>| {
            plan_for(bindings, "follow")
                .unwrap()
                .unwrap()
                .template_binding
        };
        assert_eq!(template_of(&bindings), None);
        bindings.insert("NOTIFY_TEMPLATE".into(), "{{type}}".into());
        assert_eq!(template_of(&bindings).as_deref(), Some("NOTIFY_TEMPLATE"));
        bindings.insert("LINE_NOTIFY_TEMPLATE".into(), "{{type}}".into());
        assert_eq!(
            template_of(&bindings).as_deref(),
            Some("LINE_NOTIFY_TEMPLATE")
        );
        bindings.insert("LINE_ACME_JP_NOTIFY_TEMPLATE".into(), "{{type}}".into());
        assert_eq!(
            template_of(&bindings).as_deref(),
            Some("LINE_ACME_JP_NOTIFY_TEMPLATE")
        );
    }

    #[test]
    fn a_broken_template_is_reported_at_first_use_and_the_notice_still_queued() {
        let bindings = env(&[
            ("NOTIFY_CHATWORK_ROOM", "123"),
            ("LINE_ACME_JP_NOTIFY_TEMPLATE", "Hi {{data.sender.idd}}"),
        ]);
        let notice = plan_for(&bindings, "message.received").unwrap().unwrap();
        assert_eq!(
            notice.template_binding.as_deref(),
            Some("LINE_ACME_JP_NOTIFY_TEMPLATE")
        );
        let error = check_template(&Account::new("line", "acme-jp", &bindings)).unwrap_err();
        assert_eq!(
            error,
            NotifyError::Template {
                binding: "LINE_ACME_JP_NOTIFY_TEMPLATE".into(),
                source: TemplateError::UnknownPlaceholder {
                    path: "data.sender.idd".into(),
                    offset: 3
                }
            }
        );
        assert_eq!(
            error.to_string(),
            "notification template `LINE_ACME_JP_NOTIFY_TEMPLATE` is invalid: unknown placeholder \
             {{data.sender.idd}} at byte 3"
        );
    }

    #[test]
    fn self_unread_accepts_yes_and_no_words_and_is_omitted_when_unset() {
        let self_unread_of = |value: Option<&str>| {
            let mut bindings = env(&[("NOTIFY_CHATWORK_ROOM", "123")]);
            if let Some(value) = value {
                bindings.insert("LINE_NOTIFY_SELF_UNREAD".into(), value.into());
            }
            plan_for(&bindings, "follow").map(|notice| notice.and_then(|n| n.self_unread))
        };
        assert_eq!(self_unread_of(None), Ok(None));
        for yes in ["1", "true", "yes", "TRUE", " Yes "] {
            assert_eq!(self_unread_of(Some(yes)), Ok(Some(true)), "{yes:?}");
        }
        for no in ["0", "false", "no", "No"] {
            assert_eq!(self_unread_of(Some(no)), Ok(Some(false)), "{no:?}");
        }
        for bad in ["2", "on", "y", "truee"] {
            let error = self_unread_of(Some(bad)).unwrap_err();
            assert_eq!(
                error,
                NotifyError::InvalidSelfUnread {
                    binding: "LINE_NOTIFY_SELF_UNREAD".into()
                }
            );
            assert_eq!(error.reason(), "invalid_notify_self_unread");
        }
    }
}
