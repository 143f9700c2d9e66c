use proptest::prelude::*;
use serde_json::json;

use super::super::paths::SCHEMA_PATHS;
use super::super::test_support::*;
use super::super::DEFAULT_TEMPLATE;
use super::*;

#[test]
fn a_typed_backslash_n_in_the_template_is_a_line_break_but_not_in_values() {
    let template = Template::parse("[info]{{data.raw.a}}\\n{{data.raw.b}}[/info]").unwrap();
    let event = serde_json::json!({"data": {"raw": {"a": "one\\ntwo", "b": "three"}}});
    assert_eq!(template.render(&event), "[info]one\\ntwo\nthree[/info]");
}

#[test]
fn the_default_template_is_valid_and_reads_well() {
    let message = render(DEFAULT_TEMPLATE, &line_message_event());
    assert_eq!(
            message,
            "[info][title]message.received: line/acme-jp[/title]佐藤 花子 (U4af4980629)\nこんにちは[/info]"
        );
}

#[test]
fn markup_in_values_is_neutralised_but_the_template_keeps_its_own() {
    let mut event = line_message_event();
    event["data"]["message"]["text"] =
        json!("[toall][To:1234]hi[/info][rp aid=1 to=2-3][preview id=1 ht=2]");
    event["data"]["sender"]["name"] = json!("[piconname:1]");
    let message = render(DEFAULT_TEMPLATE, &event);
    assert_eq!(
        message,
        "[info][title]message.received: line/acme-jp[/title]［piconname:1］ (U4af4980629)\n\
             ［toall］［To:1234］hi［/info］［rp aid=1 to=2-3］［preview id=1 ht=2］[/info]"
    );
    assert_eq!(message.matches("[info]").count(), 1);
    assert!(!message.contains("[toall]"));
    assert!(!message.contains("[To:"));
}

#[test]
fn single_line_values_cannot_forge_lines_and_texts_keep_only_their_line_breaks() {
    let mut event = line_message_event();
    // A LINE display name, an e-mail subject decoded from `=?utf-8?q?Invoice=0D=0ABcc=3A_all?=`, a form field.
    event["data"]["sender"]["name"] = json!("佐藤 花子\r\n承認者: 管理者\u{2028}");
    event["data"]["sender"]["id"] = json!("U4af\u{1b}[2J4980629\n");
    event["data"]["message"]["text"] = json!("一行目\r\n二行目\r三行目\u{0}\u{1b}[31m\tend");
    event["data"]["email"] = json!({"subject": "Invoice\r\nBcc: all", "from": {"name": "A\nB"}});
    event["data"]["raw"] = json!({"inquiry": "料金\r\nについて\u{7}", "list": ["a\nb", "c"]});
    let message = render(DEFAULT_TEMPLATE, &event);
    assert_eq!(
        message,
        "[info][title]message.received: line/acme-jp[/title]佐藤 花子 承認者: 管理者  \
             (U4af ［2J4980629 )\n一行目\n二行目\n三行目［31m\tend[/info]"
    );
    assert_eq!(
            render(
                "{{data.email.subject}}|{{data.email.from.name}}|{{data.raw.inquiry}}|{{data.raw.list}}|{{data.email}}",
                &event
            ),
            r#"Invoice Bcc: all|A B|料金
について|a
b, c|{"from":{"name":"A\nB"},"subject":"Invoice\r\nBcc: all"}"#
        );
}

#[test]
fn markup_inside_rendered_json_is_neutralised_too() {
    let event = json!({"data": {"raw": {"note": ["[toall]"], "nested": {"x": "[qt]"}}}});
    assert_eq!(
        render("{{data.raw}}", &event),
        r#"{"nested":{"x":"［qt］"},"note":［"［toall］"］}"#
    );
}

#[test]
fn values_cannot_inject_placeholders() {
    let event = json!({
        "type": "{{data.reply.token}}",
        "data": {"reply": {"token": "secret-reply-token"}, "raw": {"a": "{{type}}", "b": "}}{{"}}
    });
    assert_eq!(
        render("{{type}} {{data.raw.a}} {{ data.raw.b }}", &event),
        "{{data.reply.token}} {{type}} }}{{"
    );
}

#[test]
fn values_render_by_their_json_kind() {
    let event = json!({
        "data": {
            "message": {"attachments": [{"kind": "file", "name": "a.pdf", "size": 20480}, {"kind": "image"}]},
            "verification": {"scheme": "line-hmac-sha256", "key_index": 0},
            "raw": {
                "count": 3,
                "ratio": 0.25,
                "big": -12345678901234_i64,
                "ok": true,
                "no": false,
                "nothing": null,
                "tags": ["a", 1, true, null, ["x", "y"], {"k": "v"}],
                "empty": [],
                "object": {"b": 1, "a": "テスト"},
                "1": "numeric key"
            }
        }
    });
    let cases = [
        ("{{data.raw.count}}", "3"),
        ("{{data.raw.ratio}}", "0.25"),
        ("{{data.raw.big}}", "-12345678901234"),
        ("{{data.raw.ok}}/{{data.raw.no}}", "true/false"),
        ("<{{data.raw.nothing}}>", "<>"),
        ("{{data.raw.tags}}", r#"a, 1, true, , x, y, {"k":"v"}"#),
        ("<{{data.raw.empty}}>", "<>"),
        ("{{data.raw.object}}", r#"{"a":"テスト","b":1}"#),
        ("{{data.raw.tags.4.1}}", "y"),
        ("{{data.raw.1}}", "numeric key"),
        ("{{data.verification.key_index}}", "0"),
        (
            "{{data.message.attachments.0.name}} {{data.message.attachments.0.size}}",
            "a.pdf 20480",
        ),
        ("<{{data.message.attachments.1.name}}>", "<>"),
        ("<{{data.message.attachments.7.name}}>", "<>"),
        ("{{data.message.attachments.1}}", r#"{"kind":"image"}"#),
        (
            "<{{data.sender.name}}><{{data.email.subject}}><{{data.raw.count.deeper}}>",
            "<><><>",
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(render(template, &event), expected, "{template}");
    }
}

#[test]
fn placeholders_allow_spaces_inside_the_braces() {
    let event = json!({"type": "follow", "channel": "line"});
    assert_eq!(
        render("{{type}}|{{ type }}|{{\tchannel\n}}", &event),
        "follow|follow|line"
    );
    assert_eq!(render("a { b } c {x}", &event), "a { b } c {x}");
}

#[test]
fn parse_errors_name_the_problem_and_its_byte_offset() {
    let cases = [
        (
            "Hello {{type",
            TemplateError::UnclosedPlaceholder { offset: 6 },
        ),
        (
            "{{type}} {{data.raw.x",
            TemplateError::UnclosedPlaceholder { offset: 9 },
        ),
        (
            "{{ {{type}} }}",
            TemplateError::UnclosedPlaceholder { offset: 0 },
        ),
        ("Hello }} there", TemplateError::UnopenedClose { offset: 6 }),
        ("{{type}}}}", TemplateError::UnopenedClose { offset: 8 }),
        ("あ}}", TemplateError::UnopenedClose { offset: 3 }),
        ("x {{}}", TemplateError::EmptyPlaceholder { offset: 2 }),
        ("x {{   }}", TemplateError::EmptyPlaceholder { offset: 2 }),
        (
            "件名：{{data.sender.idd}}",
            TemplateError::UnknownPlaceholder {
                path: "data.sender.idd".into(),
                offset: 9,
            },
        ),
        (
            "{{data.message.attachments.x.name}}",
            TemplateError::UnknownPlaceholder {
                path: "data.message.attachments.x.name".into(),
                offset: 0,
            },
        ),
        (
            "{{data.raw..x}}",
            TemplateError::UnknownPlaceholder {
                path: "data.raw..x".into(),
                offset: 0,
            },
        ),
        (
            "{{Type}}",
            TemplateError::UnknownPlaceholder {
                path: "Type".into(),
                offset: 0,
            },
        ),
        (
            "{{data.rawx}}",
            TemplateError::UnknownPlaceholder {
                path: "data.rawx".into(),
                offset: 0,
            },
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(Template::parse(template), Err(expected), "{template}");
    }
    assert_eq!(
        Template::parse("Hi {{data.sender.idd}}")
            .unwrap_err()
            .to_string(),
        "unknown placeholder {{data.sender.idd}} at byte 3"
    );
    assert_eq!(
        Template::parse("Hello {{type").unwrap_err().to_string(),
        "`{{` at byte 6 is not closed by `}}`"
    );
    assert_eq!(
        Template::parse("a }}").unwrap_err().to_string(),
        "`}}` at byte 2 closes no placeholder"
    );
}

fn known_template_path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(SCHEMA_PATHS.to_vec()).prop_map(|path| path.replace('*', "0")),
        prop::sample::select(vec![
            "data",
            "data.raw",
            "data.raw.company",
            "data.raw.0.text",
            "data.email",
            "data.sender",
            "data.message.attachments",
        ])
        .prop_map(str::to_owned),
    ]
}

proptest! {
    #[test]
    fn parsing_and_rendering_never_panic(text in template_text(), event in json_event()) {
        match Template::parse(&text) {
            Ok(template) => {
                let _ = template.render(&event);
            }
            Err(error) => {
                let offset = match &error {
                    TemplateError::UnclosedPlaceholder { offset }
                    | TemplateError::UnopenedClose { offset }
                    | TemplateError::EmptyPlaceholder { offset }
                    | TemplateError::UnknownPlaceholder { offset, .. } => *offset,
                };
                prop_assert!(offset < text.len());
                prop_assert!(text.is_char_boundary(offset));
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }

    #[test]
    fn inserted_values_never_carry_square_brackets(
        paths in prop::collection::vec(known_template_path(), 1..6),
        event in json_event(),
    ) {
        let text: String = paths.iter().map(|path| format!("{{{{ {path} }}}}|")).collect();
        let rendered = Template::parse(&text).expect("known paths parse").render(&event);
        prop_assert!(!rendered.contains('[') && !rendered.contains(']'), "{rendered}");
    }

}
