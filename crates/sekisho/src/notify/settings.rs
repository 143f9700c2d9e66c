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
mod tests;
