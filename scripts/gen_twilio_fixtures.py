#!/usr/bin/env python3
"""Writes fixtures/twilio/*.json.

Signatures are computed here with Python's hmac/hashlib (HMAC-SHA1), independently of the Rust code, following
Twilio's published algorithm: base64(HMAC-SHA1(auth token, URL + for each parameter name in sorted order, for
each of its distinct values in sorted order: name + value)); JSON bodies: the URL carries
bodySHA256=hex(SHA-256(body)) and is signed alone. The generator first checks that it reproduces every public
vector in tests/vectors/twilio.json (Twilio's documented example and the helper libraries' tests), then writes
those that fit one account configuration as fixtures of the account `mycompany`, whose WEBHOOK_URL pins the
vectors' URL https://mycompany.com/myapp.php.

Every other fixture is for the account `demo` and is signed for the URL the native tests (tests/common) and
tests/e2e/gateway.test.mjs send to: https://gateway.test/twilio/demo, with the request's query. Expected event
ids are computed here too: "evt_" + sha256("twilio\\n{account}\\n{key}")[:32], the key being MessageSid, or
MessageSid:MessageStatus for status callbacks, or "sha256:" + hex(SHA-256) of the signed parameters (name+value
concatenated, as signed) / of a JSON body. Parameters follow Twilio's "incoming message webhook" and
"outbound message status callback" documentation.

Run from the repository root: python3 scripts/gen_twilio_fixtures.py
"""

import base64
import glob
import hashlib
import hmac
import json
import os
from urllib.parse import urlencode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "twilio")
VECTORS = os.path.join(ROOT, "tests", "vectors", "twilio.json")

ORIGIN = "https://gateway.test"
ACCOUNT = "demo"
# Newest first, as the binding takes them: during a rotation the secondary token is promoted and listed first.
TOKEN = hashlib.sha256(b"sekisho twilio fixtures: primary auth token").hexdigest()[:32]
OLD_TOKEN = hashlib.sha256(b"sekisho twilio fixtures: previous auth token").hexdigest()[:32]
FORGER_TOKEN = hashlib.sha256(b"sekisho twilio fixtures: not the account's token").hexdigest()[:32]
CONFIG = {"AUTH_TOKEN": f"{TOKEN} {OLD_TOKEN}"}
VECTOR_ACCOUNT = "mycompany"
VECTOR_BASE = "https://mycompany.com/myapp.php"
VECTOR_CONFIG = {"AUTH_TOKEN": "12345", "WEBHOOK_URL": VECTOR_BASE}
FORM = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

ACCOUNT_SID = "AC" + hashlib.md5(b"account").hexdigest()
SERVICE_SID = "MG" + hashlib.md5(b"service").hexdigest()
OUR_NUMBER = "+815012345678"
USER_NUMBER = "+819012345678"


def sid(prefix, name):
    return prefix + hashlib.md5(name.encode()).hexdigest()


def signed_suffix(params):
    out = ""
    for name in sorted({n for n, _ in params}):
        for value in sorted({v for n, v in params if n == name}):
            out += name + value
    return out


def signature(token, url, params=()):
    data = (url + signed_suffix(params)).encode()
    return base64.b64encode(hmac.new(token.encode(), data, hashlib.sha1).digest()).decode()


def event_id(key, account=ACCOUNT):
    return "evt_" + hashlib.sha256(f"twilio\n{account}\n{key}".encode()).hexdigest()[:32]


def content_key(data):
    return "sha256:" + hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def form_body(params):
    return urlencode(params)


def raw_of(params):
    """data.raw: each parameter once, an array of its distinct values (sorted) when given several."""
    raw = {}
    for name in sorted({n for n, _ in params}):
        values = sorted({v for n, v in params if n == name})
        raw[name] = values[0] if len(values) == 1 else values
    return raw


def write(name, doc):
    with open(os.path.join(OUT, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


def fixture(name, description, params=None, expect=None, *, query=None, token=TOKEN, signed_url=None, headers=None,
            body=None, content_type=FORM, account=ACCOUNT, config=None, method="POST", source=None):
    """A request to /twilio/{account}[?query]; signed for the URL it arrives at unless `signed_url` says otherwise."""
    url = f"{ORIGIN}/twilio/{account}" + (f"?{query}" if query is not None else "")
    if body is None:
        body = form_body(params or [])
    if headers is None:
        headers = {"content-type": content_type,
                   "x-twilio-signature": signature(token, signed_url or url, params or [])}
    request = {"method": method}
    if query is not None:
        request["query"] = query
    request["headers"] = headers
    request["body"] = body
    write(name, {
        "description": description,
        "source": source or "derived: parameters as Twilio's messaging webhook documentation lists them; signed by "
                            "scripts/gen_twilio_fixtures.py (Python hmac, HMAC-SHA1)",
        "account": account,
        "config": CONFIG if config is None else config,
        "request": request,
        "expect": expect,
    })


VERIFIED = {"scheme": "twilio-hmac-sha1", "key_index": 0}


def accepted(events):
    return {"status": 200, "response_body": EMPTY_TWIML, "events": events}


def inbound(name, description, extra, *, sender=USER_NUMBER, kind="text", text=None, message_extra=None,
            sender_name=None, event_type="message.received", postback=None, key_index=0, token=TOKEN, query=None,
            signed_url=None, message_sid=None):
    message_sid = message_sid or sid("SM", name)
    params = [
        ("ToCountry", "JP"), ("ToState", ""), ("SmsMessageSid", message_sid), ("NumMedia", "0"), ("ToCity", ""),
        ("FromZip", ""), ("SmsSid", message_sid), ("FromState", ""), ("SmsStatus", "received"), ("FromCity", ""),
        ("FromCountry", "JP"), ("To", OUR_NUMBER if not sender.startswith("whatsapp:") else f"whatsapp:{OUR_NUMBER}"),
        ("MessagingServiceSid", SERVICE_SID), ("ToZip", ""), ("NumSegments", "1"), ("MessageSid", message_sid),
        ("AccountSid", ACCOUNT_SID), ("From", sender), ("ApiVersion", "2010-04-01"),
    ]
    params = [(n, v) for n, v in params if n not in {k for k, _ in extra}] + extra
    message = {"id": message_sid, "kind": kind}
    if text is not None:
        message["text"] = text
    message.update(message_extra or {})
    data = {
        "provider_type": "received",
        "conversation": {"id": sender, "kind": "direct"},
        "sender": {"id": sender, **({"name": sender_name} if sender_name else {})},
        "message": message,
        "verification": {"scheme": "twilio-hmac-sha1", "key_index": key_index},
        "ordering": {"key": f"twilio/{ACCOUNT}/{sender}"},
        "raw": raw_of(params),
    }
    if postback:
        data["postback"] = postback
    fixture(name, description, params,
            accepted([{"id": event_id(message_sid), "type": event_type, "data": data}]),
            token=token, query=query, signed_url=signed_url)
    return params


def status_callback(name, description, status, event_type, extra=()):
    message_sid = sid("SM", name)
    params = [("AccountSid", ACCOUNT_SID), ("ApiVersion", "2010-04-01"), ("From", OUR_NUMBER),
              ("MessageSid", message_sid), ("MessageStatus", status), ("MessagingServiceSid", SERVICE_SID),
              ("SmsSid", message_sid), ("SmsStatus", status), ("To", USER_NUMBER), *extra]
    fixture(name, description, params, accepted([{
        "id": event_id(f"{message_sid}:{status}"),
        "type": event_type,
        "data": {
            "provider_type": status,
            "conversation": {"id": USER_NUMBER, "kind": "direct"},
            "message": {"id": message_sid, "kind": "unknown"},
            "verification": VERIFIED,
            "raw": raw_of(params),
        },
    }]))


def vectors():
    """Checks every public vector, then writes those under https://mycompany.com/myapp.php as fixtures."""
    with open(VECTORS, encoding="utf-8") as f:
        doc = json.load(f)
    for v in doc["vectors"]:
        params = [tuple(p) for p in v.get("params", [])]
        body = v.get("body")
        if body is not None:
            digest = hashlib.sha256(body.encode()).hexdigest()
            assert f"bodySHA256={digest}" in v["url"], v["id"]
        assert signature(v["auth_token"], v.get("signed_url", v["url"]), params) == v["expected_signature"], v["id"]
        for other in v.get("also_valid_at", []):
            assert signature(v["auth_token"], other["url"].replace(":1234", ""), params) == v["expected_signature"]
        for negative in v.get("negatives", []):
            assert signature(v["auth_token"], negative["url"], params) != v["expected_signature"], v["id"]
        if not v["url"].startswith(VECTOR_BASE + "?"):
            continue  # another origin: covered by the unit tests of src/channels/twilio.rs
        query = v["url"].split("?", 1)[1]
        source = f"tests/vectors/twilio.json {v['id']} ({v['source'].get('repo', v['source'].get('url'))} " \
                 f"{v['source'].get('path', '')} {v['source'].get('commit', '')[:8]}".rstrip() + \
                 "), recomputed with Python hmac"
        if body is not None:
            expect = {"status": 200, "response_body": '{"accepted":1}', "events": [{
                "id": event_id(content_key(body), VECTOR_ACCOUNT),
                "type": "unrecognized",
                "data": {"provider_type": "json", "verification": VERIFIED, "raw": json.loads(body)},
            }]}
            headers = {"content-type": v["content_type"], "x-twilio-signature": v["expected_signature"]}
        else:
            expect = accepted([{
                "id": event_id(content_key(signed_suffix(params)), VECTOR_ACCOUNT),
                "type": "unrecognized",
                "data": {"provider_type": "unknown", "verification": VERIFIED, "raw": raw_of(params)},
            }])
            headers = {"content-type": FORM, "x-twilio-signature": v["expected_signature"]}
            body = form_body(params)
        fixture(f"vector-{v['id']}", f"Public vector {v['id']}: accepted at {v['url']}", params, expect,
                query=query, headers=headers, body=body, account=VECTOR_ACCOUNT, config=VECTOR_CONFIG, source=source)
    # The documented example with one parameter changed: refused.
    docs = next(v for v in doc["vectors"] if v["id"] == "twilio-docs-webhooks-security")
    tampered = [(n, "9999" if n == "Digits" else val) for n, val in docs["params"]]
    fixture("vector-docs-example-tampered", "The documented example with Digits changed -> invalid_signature",
            tampered, {"status": 401, "reason": "invalid_signature"}, query="foo=1&bar=2",
            headers={"content-type": FORM, "x-twilio-signature": docs["expected_signature"]},
            account=VECTOR_ACCOUNT, config=VECTOR_CONFIG,
            source="tests/vectors/twilio.json twilio-docs-webhooks-security, one value changed")


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "*.json")):
        os.remove(old)
    vectors()

    sms = inbound("sms-text", "An SMS in Japanese -> message.received keyed by MessageSid, answered with empty TwiML",
                  [("Body", "予約を変更したいです。明日の15時は空いていますか?")],
                  text="予約を変更したいです。明日の15時は空いていますか?")

    media = [sid("ME", "first"), sid("ME", "second")]
    mms_sid = sid("MM", "mms-two-media")
    url = lambda me: f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{mms_sid}/Media/{me}"
    inbound("mms-two-media", "An MMS with text and two media -> attachments typed by MediaContentType",
            [("Body", "写真と見積書です"), ("NumMedia", "2"), ("NumSegments", "1"),
             ("MediaContentType0", "image/jpeg"), ("MediaUrl0", url(media[0])),
             ("MediaContentType1", "application/pdf"), ("MediaUrl1", url(media[1]))],
            kind="text", text="写真と見積書です", message_sid=mms_sid,
            message_extra={"attachments": [
                {"kind": "image", "id": media[0], "url": url(media[0]), "content_type": "image/jpeg"},
                {"kind": "file", "id": media[1], "url": url(media[1]), "content_type": "application/pdf"},
            ]})

    whatsapp = f"whatsapp:{USER_NUMBER}"
    inbound("whatsapp-profile-name", "A WhatsApp text: From keeps its whatsapp: prefix, ProfileName is the sender's name",
            [("Body", "こんにちは"), ("ProfileName", "鈴木 一郎"), ("WaId", USER_NUMBER[1:]), ("MessageType", "text")],
            sender=whatsapp, text="こんにちは", sender_name="鈴木 一郎")

    inbound("whatsapp-location", "A WhatsApp location -> message.kind location with Latitude/Longitude, Label, Address",
            [("Body", ""), ("ProfileName", "鈴木 一郎"), ("WaId", USER_NUMBER[1:]), ("MessageType", "location"),
             ("Latitude", "35.681236"), ("Longitude", "139.767125"), ("Label", "東京駅"),
             ("Address", "東京都千代田区丸の内1丁目")],
            sender=whatsapp, kind="location", text="東京駅", sender_name="鈴木 一郎",
            message_extra={"location": {"latitude": 35.681236, "longitude": 139.767125, "title": "東京駅",
                                        "address": "東京都千代田区丸の内1丁目"}})

    inbound("whatsapp-button", "A WhatsApp quick-reply button -> postback with ButtonPayload, ButtonText as text",
            [("Body", "はい"), ("ProfileName", "鈴木 一郎"), ("WaId", USER_NUMBER[1:]), ("MessageType", "button"),
             ("ButtonText", "はい"), ("ButtonPayload", "confirm-booking:42")],
            sender=whatsapp, kind="button", text="はい", sender_name="鈴木 一郎", event_type="postback",
            postback={"data": "confirm-booking:42", "params": {"text": "はい"}})

    inbound("query-string", "A webhook URL with its own query: the query is part of the signed URL",
            [("Body", "query string test")], text="query string test", query="source=sms&campaign=2026%E5%86%AC")

    inbound("default-port", "Signed over the URL with :443 (Twilio has signed both forms): accepted",
            [("Body", "signed with the port")], text="signed with the port",
            signed_url=f"{ORIGIN}:443/twilio/{ACCOUNT}")

    inbound("rotation-previous-token", "Signed with the second (previous) auth token -> accepted, key_index 1",
            [("Body", "sent during the rotation")], text="sent during the rotation", key_index=1, token=OLD_TOKEN)

    status_callback("status-sent", "Status callback sent -> message.sent", "sent", "message.sent")
    status_callback("status-delivered", "Status callback delivered -> message.delivered", "delivered",
                    "message.delivered", [("RawDlrDoneDate", "2311142213")])
    status_callback("status-undelivered", "Status callback undelivered (ErrorCode 30003) -> message.failed",
                    "undelivered", "message.failed", [("ErrorCode", "30003")])
    status_callback("status-queued", "Status callback queued -> message.status (no envelope type of its own)",
                    "queued", "message.status")

    repeated = [("MessageSid", sid("SM", "repeated")), ("MessageSid", sid("SM", "repeated-2")),
                ("From", USER_NUMBER), ("Body", "two sids")]
    fixture("repeated-parameter", "A parameter given twice is signed once per distinct value, in order; two "
            "MessageSids are no message -> unrecognized, keyed by the signed parameters", repeated,
            accepted([{"id": event_id(content_key(signed_suffix(repeated))), "type": "unrecognized",
                       "data": {"provider_type": "unknown", "verification": VERIFIED, "raw": raw_of(repeated)}}]))

    event = {
        "specversion": "1.0", "type": "com.twilio.messaging.inbound-message.received",
        "source": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid('SM', 'json')}.json",
        "id": sid("EZ", "json"), "dataschema": "https://events-schemas.twilio.com/Messaging.InboundMessageV1/6",
        "datacontenttype": "application/json", "time": "2023-11-14T22:13:20.000Z",
        "data": {"messageSid": sid("SM", "json"), "accountSid": ACCOUNT_SID, "from": USER_NUMBER, "to": OUR_NUMBER,
                 "body": "JSONで届いたメッセージ", "numMedia": 0},
    }
    json_body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(json_body.encode()).hexdigest()
    json_url = f"{ORIGIN}/twilio/{ACCOUNT}?bodySHA256={digest}"
    fixture("json-body-sha256", "A JSON body: the URL with bodySHA256 is signed alone, the body must hash to it -> "
            "unrecognized, provider_type = its CloudEvents type", None,
            {"status": 200, "response_body": '{"accepted":1}', "events": [{
                "id": event_id(content_key(json_body)), "type": "unrecognized",
                "data": {"provider_type": event["type"], "verification": VERIFIED, "raw": event}}]},
            query=f"bodySHA256={digest}", body=json_body,
            headers={"content-type": "application/json", "x-twilio-signature": signature(TOKEN, json_url)})
    fixture("json-body-tampered", "A JSON body that does not hash to the signed bodySHA256 -> invalid_signature", None,
            {"status": 401, "reason": "invalid_signature"}, query=f"bodySHA256={digest}",
            body=json_body.replace("JSONで", "偽の"),
            headers={"content-type": "application/json", "x-twilio-signature": signature(TOKEN, json_url)})

    sms_body = form_body(sms)
    good = signature(TOKEN, f"{ORIGIN}/twilio/{ACCOUNT}", sms)
    refused = lambda reason, status=401: {"status": status, "reason": reason}
    fixture("missing-signature", "No X-Twilio-Signature -> missing_signature", body=sms_body,
            headers={"content-type": FORM}, expect=refused("missing_signature"))
    fixture("wrong-signature", "Signed with a token that is not the account's -> invalid_signature", sms,
            refused("invalid_signature"), token=FORGER_TOKEN)
    fixture("signature-not-base64", "A signature that does not decode -> invalid_signature", body=sms_body,
            headers={"content-type": FORM, "x-twilio-signature": "not base64!"}, expect=refused("invalid_signature"))
    fixture("wrong-host", "Signed for another host (what a request meant for another endpoint carries) -> "
            "invalid_signature", sms, refused("invalid_signature"), signed_url=f"https://other.example/twilio/{ACCOUNT}")
    fixture("wrong-query", "Signed without the query the request carries -> invalid_signature", sms,
            refused("invalid_signature"), query="source=sms", signed_url=f"{ORIGIN}/twilio/{ACCOUNT}")
    fixture("tampered-body", "A signed SMS with its Body changed -> invalid_signature",
            body=sms_body.replace(form_body([("Body", dict(sms)["Body"])]), "Body=forged"),
            headers={"content-type": FORM, "x-twilio-signature": good}, expect=refused("invalid_signature"))
    fixture("unknown-account", "An account without AUTH_TOKEN -> 404 not_found", sms, refused("not_found", 404),
            account="nobody", config={})
    fixture("wrong-method", "GET -> 405 (only POST webhooks are served)", None, refused("method_not_allowed", 405),
            method="GET", body="", headers={})


if __name__ == "__main__":
    main()
