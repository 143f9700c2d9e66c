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
