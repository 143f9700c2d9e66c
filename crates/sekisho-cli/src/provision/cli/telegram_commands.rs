//! `sekisho webhook telegram set|info`.

use super::{call, list, report, resolve_account, secret_or_generated, usage, Args, Failure};
use crate::provision::telegram::{self, BotToken, SetWebhook};
use crate::provision::{mask, wrangler_put_line};
use sekisho::config::binding_name;

const SECRET_RULE: &str = "Telegram's rule (1-256 characters of A-Z a-z 0-9 _ -)";

fn bot_token(args: &mut Args) -> Result<BotToken, Failure> {
    let token = args.credential("bot-token", "TELEGRAM_BOT_TOKEN")?;
    BotToken::parse(&token).map_err(|e| usage(e.to_string()))
}

pub(super) fn set(mut args: Args) -> Result<(), Failure> {
    let token = bot_token(&mut args)?;
    let url = args.required("url")?;
    let account = resolve_account(args.take("account"), "telegram", &url)?;
    let (secret_token, generated) = secret_or_generated(
        args.take("secret-token"),
        telegram::is_valid_secret_token,
        SECRET_RULE,
    )?;
    let allowed_updates = args.take("allowed-updates").map(|updates| list(&updates));
    let drop_pending_updates = args.flag("drop-pending-updates");
    let base = args.api_base("TELEGRAM_API_BASE", telegram::DEFAULT_API_BASE);
    args.finish()?;

    let set = SetWebhook {
        url,
        secret_token,
        allowed_updates,
        drop_pending_updates,
    };
    let answer = call(&telegram::set_webhook_request(&base, &token, &set))?;
    let description = telegram::interpret_set_webhook(&answer)?;
    let secret_binding = binding_name("telegram", &account, "SECRET_TOKEN");
    println!(
        "Telegram: {description} (bot {}) → {}",
        mask(token.expose()),
        set.url
    );
    println!(
        "secret_token: {} ({} chars)",
        if generated { "generated" } else { "as given" },
        set.secret_token.len()
    );
    println!();
    println!("Store the same secret token on the Worker, so the gateway accepts what Telegram now sends:");
    println!(
        "  {}",
        wrangler_put_line(&secret_binding, &set.secret_token)
    );
    println!(
        "Optional, for the de-duplication key: {} = \"{}\" (a [vars] entry, not secret).",
        binding_name("telegram", &account, "BOT_ID"),
        token.bot_id()
    );
    println!(
        "Until the secret is stored, Telegram's deliveries get 401 and are retried. Check with:"
    );
    println!("  sekisho webhook telegram info --url {}", set.url);
    Ok(())
}

/// How far back a reported delivery error counts as recent, by default.
const DEFAULT_RECENT_HOURS: u64 = 24;

pub(super) fn info(mut args: Args) -> Result<(), Failure> {
    let token = bot_token(&mut args)?;
    let expected_url = args.take("url");
    let recent_hours = match args.take("recent-hours") {
        None => DEFAULT_RECENT_HOURS,
        Some(hours) => hours
            .parse::<u64>()
            .map_err(|_| usage("--recent-hours must be a whole number of hours"))?,
    };
    let base = args.api_base("TELEGRAM_API_BASE", telegram::DEFAULT_API_BASE);
    args.finish()?;

    let answer = call(&telegram::webhook_info_request(&base, &token))?;
    let info = telegram::interpret_webhook_info(&answer)?;
    println!("bot: {}", mask(token.expose()));
    for (name, value) in info.lines() {
        println!("{name}: {value}");
    }
    report(&info.problems(
        super::now_s(),
        recent_hours.saturating_mul(3600),
        expected_url.as_deref(),
    ))
}
