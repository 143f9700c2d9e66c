//! `sekisho webhook line set|test|info`.

use super::{call, report, resolve_account, usage, Args, Failure};
use crate::provision::{line, mask, wrangler_put_placeholder};
use sekisho::config::binding_name;

fn access_token(args: &mut Args) -> Result<String, Failure> {
    let token = args.credential("channel-access-token", "LINE_CHANNEL_ACCESS_TOKEN")?;
    if token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(usage(
            "the channel access token must be printable ASCII without spaces",
        ))
    }
}

fn base(args: &mut Args) -> String {
    args.api_base("LINE_API_BASE", line::DEFAULT_API_BASE)
}

pub(super) fn set(mut args: Args) -> Result<(), Failure> {
    let token = access_token(&mut args)?;
    let url = args.required("url")?;
    let account = resolve_account(args.take("account"), "line", &url)?;
    let base = base(&mut args);
    args.finish()?;

    line::interpret_set_endpoint(&call(&line::set_endpoint_request(&base, &token, &url))?)?;
    println!(
        "LINE: webhook URL set to {url} (channel access token {})",
        mask(&token)
    );
    println!();
    println!("LINE signs with the channel secret, which the Worker must hold. Copy it from the LINE Developers");
    println!("console (your Messaging API channel → Basic settings → Channel secret) into LINE_CHANNEL_SECRET, then:");
    println!(
        "  {}",
        wrangler_put_placeholder(
            &binding_name("line", &account, "CHANNEL_SECRET"),
            "LINE_CHANNEL_SECRET"
        )
    );
    println!(
        "Turn on \"Use webhook\" (Messaging API tab) if it is off, then check the round trip with:"
    );
    println!("  sekisho webhook line test");
    Ok(())
}

pub(super) fn test(mut args: Args) -> Result<(), Failure> {
    let token = access_token(&mut args)?;
    let endpoint = args.take("url");
    let base = base(&mut args);
    args.finish()?;

    let answer = call(&line::test_endpoint_request(
        &base,
        &token,
        endpoint.as_deref(),
    ))?;
    let result = line::interpret_test(&answer)?;
    println!("success: {}", result.success);
    println!("timestamp: {}", crate::provision::shown(&result.timestamp));
    println!("statusCode: {}", result.status_code);
    println!("reason: {}", crate::provision::shown(&result.reason));
    println!("detail: {}", crate::provision::shown(&result.detail));
    report(&result.problems())
}

pub(super) fn info(mut args: Args) -> Result<(), Failure> {
    let token = access_token(&mut args)?;
    let expected_url = args.take("url");
    let base = base(&mut args);
    args.finish()?;

    let info = line::interpret_endpoint_info(&call(&line::endpoint_info_request(&base, &token))?)?;
    println!("endpoint: {}", crate::provision::shown(&info.endpoint));
    println!("active: {}", info.active);
    report(&info.problems(expected_url.as_deref()))
}
