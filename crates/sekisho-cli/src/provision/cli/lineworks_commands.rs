//! `sekisho webhook lineworks set|info`.

use super::{call, list, report, resolve_account, usage, Args, Failure};
use crate::provision::lineworks::{self, ALL_CALLBACK_EVENTS};
use crate::provision::{mask, shown, wrangler_put_placeholder};
use sekisho::config::binding_name;

struct Bot {
    token: String,
    id: String,
    base: String,
}

fn bot(args: &mut Args) -> Result<Bot, Failure> {
    let token = args.credential("access-token", "LINEWORKS_ACCESS_TOKEN")?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(usage(
            "the access token must be printable ASCII without spaces",
        ));
    }
    let id = args.required("bot-id")?;
    if !lineworks::is_valid_bot_id(&id) {
        return Err(usage("--bot-id must be the bot's numeric id"));
    }
    let base = args.api_base("LINEWORKS_API_BASE", lineworks::DEFAULT_API_BASE);
    Ok(Bot { token, id, base })
}

pub(super) fn set(mut args: Args) -> Result<(), Failure> {
    let bot = bot(&mut args)?;
    let url = args.required("url")?;
    let account = resolve_account(args.take("account"), "lineworks", &url)?;
    let events = args
        .take("events")
        .map(|events| list(&events))
        .unwrap_or_else(|| {
            ALL_CALLBACK_EVENTS
                .iter()
                .map(|e| (*e).to_owned())
                .collect()
        });
    args.finish()?;

    let request = lineworks::set_callback_request(&bot.base, &bot.token, &bot.id, &url, &events);
    lineworks::interpret_set_callback(&call(&request)?)?;
    println!(
        "LINE WORKS: bot {} calls back {url} for {} (access token {})",
        bot.id,
        events.join(","),
        mask(&bot.token)
    );
    println!();
    println!("LINE WORKS signs with the Bot Secret, which the Worker must hold. Copy it from the Developer Console");
    println!("(Bot → your bot → Bot Secret) into LINEWORKS_BOT_SECRET, then:");
    println!(
        "  {}",
        wrangler_put_placeholder(
            &binding_name("lineworks", &account, "BOT_SECRET"),
            "LINEWORKS_BOT_SECRET"
        )
    );
    println!(
        "and set {} = \"{}\" (a [vars] entry or a secret: the gateway checks X-WORKS-BotId against it).",
        binding_name("lineworks", &account, "BOT_ID"),
        bot.id
    );
    Ok(())
}

pub(super) fn info(mut args: Args) -> Result<(), Failure> {
    let bot = bot(&mut args)?;
    let expected_url = args.take("url");
    let expected_events = args
        .take("events")
        .map(|events| list(&events))
        .unwrap_or_default();
    args.finish()?;

    let answer = call(&lineworks::bot_request(&bot.base, &bot.token, &bot.id))?;
    let callback = lineworks::interpret_bot(&answer)?;
    println!("bot: {} ({})", bot.id, shown(&callback.bot_name));
    println!("enableCallback: {}", callback.enable_callback);
    println!("callbackUrl: {}", shown(&callback.callback_url));
    println!(
        "callbackEvents: {}",
        shown(&callback.callback_events.join(","))
    );
    report(&callback.problems(expected_url.as_deref(), &expected_events))
}
