//! `sekisho webhook meta set|info`.

use super::{call, list, report, resolve_account, secret_or_generated, usage, Args, Failure};
use crate::provision::meta::{self, App, Product, Subscribe};
use crate::provision::{shown, wrangler_put_line, wrangler_put_placeholder};
use sekisho::config::binding_name;

const VERIFY_TOKEN_RULE: &str =
    "the gateway's rule for verify tokens (1-256 characters of A-Z a-z 0-9 - _ .)";

struct Graph {
    app: App,
    base: String,
    version: String,
}

fn graph(args: &mut Args) -> Result<Graph, Failure> {
    let id = args.credential("app-id", "META_APP_ID")?;
    let secret = args.credential("app-secret", "META_APP_SECRET")?;
    let app = App::new(&id, &secret).map_err(|e| usage(e.to_string()))?;
    let version = args
        .take("graph-version")
        .unwrap_or_else(|| meta::DEFAULT_GRAPH_VERSION.to_owned());
    if !meta::is_valid_graph_version(&version) {
        return Err(usage("--graph-version must look like v24.0"));
    }
    let base = args.api_base("META_API_BASE", meta::DEFAULT_API_BASE);
    Ok(Graph { app, base, version })
}

fn product(name: Option<String>) -> Result<Option<Product>, Failure> {
    name.map(|name| {
        Product::parse(&name)
            .ok_or_else(|| usage("--product must be whatsapp, messenger or instagram"))
    })
    .transpose()
}

pub(super) fn set(mut args: Args) -> Result<(), Failure> {
    let product = product(args.take("product"))?.ok_or_else(|| usage("--product is required"))?;
    let graph = graph(&mut args)?;
    let url = args.required("url")?;
    let account = resolve_account(args.take("account"), product.channel(), &url)?;
    let fields = args
        .take("fields")
        .map(|fields| list(&fields))
        .unwrap_or_else(|| {
            product
                .default_fields()
                .iter()
                .map(|f| (*f).to_owned())
                .collect()
        });
    let (verify_token, generated) = secret_or_generated(
        args.take("verify-token"),
        meta::is_valid_verify_token,
        VERIFY_TOKEN_RULE,
    )?;
    args.finish()?;

    let channel = product.channel();
    let token_binding = binding_name(channel, &account, "VERIFY_TOKEN");
    let secret_binding = binding_name(channel, &account, "APP_SECRET");
    println!("Meta checks the callback URL during the subscription (a GET with this verify token), so the Worker");
    println!(
        "must hold both secrets first (META_APP_SECRET: the app secret, App settings → Basic):"
    );
    println!("  {}", wrangler_put_line(&token_binding, &verify_token));
    println!(
        "  {}",
        wrangler_put_placeholder(&secret_binding, "META_APP_SECRET")
    );
    if generated {
        println!("Then subscribe with the same token:");
        println!(
            "  sekisho webhook meta set --product {channel} --url {url} --fields {} --verify-token '{verify_token}'",
            fields.join(",")
        );
        return Ok(());
    }
    let subscribe = Subscribe {
        product,
        callback_url: url,
        fields,
        verify_token,
    };
    let answer = call(&meta::subscribe_request(
        &graph.base,
        &graph.version,
        &graph.app,
        &subscribe,
    ))?;
    meta::interpret_subscribe(&answer)?;
    println!();
    println!(
        "Meta: app {} subscribed `{}` to {} ({}).",
        graph.app.id(),
        product.object(),
        subscribe.callback_url,
        subscribe.fields.join(",")
    );
    Ok(())
}

pub(super) fn info(mut args: Args) -> Result<(), Failure> {
    let product = product(args.take("product"))?;
    let graph = graph(&mut args)?;
    let expected_url = args.take("url");
    let expected_fields = args
        .take("fields")
        .map(|fields| list(&fields))
        .unwrap_or_default();
    args.finish()?;
    if product.is_none() && (expected_url.is_some() || !expected_fields.is_empty()) {
        return Err(usage("--url and --fields are checked for one --product"));
    }

    let answer = call(&meta::subscriptions_request(
        &graph.base,
        &graph.version,
        &graph.app,
    ))?;
    let subscriptions = meta::interpret_subscriptions(&answer)?;
    for subscription in &subscriptions {
        println!("object: {}", subscription.object);
        println!("  callback_url: {}", shown(&subscription.callback_url));
        println!("  active: {}", subscription.active);
        println!("  fields: {}", subscription.fields.join(","));
    }
    if subscriptions.is_empty() {
        println!("(no subscriptions)");
    }
    match product {
        Some(product) => report(&meta::problems(
            &subscriptions,
            product,
            expected_url.as_deref(),
            &expected_fields,
        )),
        None => Ok(()),
    }
}
