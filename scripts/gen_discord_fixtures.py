#!/usr/bin/env python3
"""Writes fixtures/discord/*.json.

Signatures are computed here with the `cryptography` package's Ed25519 (OpenSSL), independently of the Rust code
(ed25519-dalek). The application key pair is RFC 8032 section 7.1 TEST 1, the older (rotated-out) one TEST 2; the
generator first checks that it reproduces the RFC's published signatures for them. Expected event ids and times
are computed here too: id = "evt_" + sha256("discord\\n{account}\\n{interaction id}")[:32], time = the
interaction id's snowflake time. Interaction bodies follow the examples and field tables of Discord's developer
documentation (Interactions > Receiving and Responding, Application Commands, Message Components).

Run from the repository root: python3 scripts/gen_discord_fixtures.py
"""

import datetime
import hashlib
import json
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "discord")

# RFC 8032 section 7.1, TEST 1 and TEST 2 (secret key = seed, public key, message, signature).
RFC_TEST_1 = (
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    b"",
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
)
RFC_TEST_2 = (
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    b"\x72",
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
)
RFC_SOURCE = "RFC 8032 section 7.1 TEST 1 key pair"
# Not the application's key: what a forger (or Discord's deliberate invalid-signature check) signs with.
FORGER_SEED = hashlib.sha256(b"sekisho discord fixtures: not the application key").hexdigest()

ACCOUNT = "demo"
TIMESTAMP = "1700000000"
NOW_MS = 1700000001234
DISCORD_EPOCH_MS = 1420070400000
APP_ID = "1174117000000000000"
GUILD_ID = "1174117100000000001"
CHANNEL_ID = "1174117100000000002"
DM_CHANNEL_ID = "1174117100000000003"
CONFIG = {"PUBLIC_KEY": f"{RFC_TEST_1[1]} {RFC_TEST_2[1]}"}


def key(seed):
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))


def public_hex(seed):
    return key(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign(seed, timestamp, body):
    return key(seed).sign(timestamp.encode() + body.encode()).hex()


for seed, public, message, signature in (RFC_TEST_1, RFC_TEST_2):
    assert public_hex(seed) == public, "RFC 8032 public key"
    assert key(seed).sign(message).hex() == signature, "RFC 8032 signature"


def snowflake(unix_ms, increment):
    return str(((unix_ms - DISCORD_EPOCH_MS) << 22) | increment)


def snowflake_time(interaction_id):
    ms = (int(interaction_id) >> 22) + DISCORD_EPOCH_MS
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def event_id(interaction_id, account=ACCOUNT):
    return "evt_" + hashlib.sha256(f"discord\n{account}\n{interaction_id}".encode()).hexdigest()[:32]


def body_of(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


MEMBER = {
    "avatar": None,
    "deaf": False,
    "joined_at": "2023-01-10T09:00:00.000000+00:00",
    "mute": False,
    "nick": "Ichiro (support)",
    "permissions": "2147483647",
    "roles": [],
    "user": {
        "avatar": None,
        "discriminator": "0",
        "global_name": "Ichiro Suzuki",
        "id": "1174117200000000001",
        "public_flags": 0,
        "username": "ichiro.suzuki",
    },
}
DM_USER = {
    "avatar": None,
    "discriminator": "0",
    "global_name": None,
    "id": "1174117200000000002",
    "public_flags": 0,
    "username": "hanako",
}
GUILD_CHANNEL = {"id": CHANNEL_ID, "type": 0, "name": "support", "guild_id": GUILD_ID, "nsfw": False}
DM_CHANNEL = {"id": DM_CHANNEL_ID, "type": 1, "recipients": [DM_USER]}


def interaction(kind, n, data, *, dm=False, extra=None):
    iid = snowflake(NOW_MS - 1000 + n, n)
    value = {
        "app_permissions": "562949953421311",
        "application_id": APP_ID,
        "authorizing_integration_owners": {"0": GUILD_ID} if not dm else {"1": DM_USER["id"]},
        "entitlements": [],
        "id": iid,
        "locale": "ja",
        "token": f"aW50ZXJhY3Rpb246{iid}:fixture-interaction-token",
        "type": kind,
        "version": 1,
    }
    if dm:
        value.update({"channel": DM_CHANNEL, "channel_id": DM_CHANNEL_ID, "context": 1, "user": DM_USER})
    else:
        value.update({
            "channel": GUILD_CHANNEL, "channel_id": CHANNEL_ID, "context": 0, "guild_id": GUILD_ID,
            "guild": {"id": GUILD_ID, "locale": "ja", "features": []}, "guild_locale": "ja", "member": MEMBER,
        })
    if data is not None:
        value["data"] = data
    value.update(extra or {})
    return iid, body_of(value)


def fixture(name, description, body, expect, *, headers=None, seed=RFC_TEST_1[0], timestamp=TIMESTAMP,
            now_ms=NOW_MS, method="POST", extra_path=None, account=ACCOUNT, config=None, source=None):
    if headers is None:
        headers = {
            "content-type": "application/json",
            "x-signature-ed25519": sign(seed, timestamp, body),
            "x-signature-timestamp": timestamp,
        }
    doc = {
        "description": description,
        "source": source or f"derived: interaction shaped after Discord's developer documentation; signed with the {RFC_SOURCE} by scripts/gen_discord_fixtures.py (Python cryptography / OpenSSL Ed25519)",
        "account": account,
        "config": config or CONFIG,
    }
    if now_ms is not None:
        doc["now_ms"] = now_ms
    doc["request"] = {"method": method}
    if extra_path:
        doc["request"]["extra_path"] = extra_path
    doc["request"]["headers"] = headers
    doc["request"]["body"] = body
    doc["expect"] = expect
    with open(os.path.join(OUT, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


def accepted(answer, events):
    return {"status": 200, "response_body": answer, "events": events}


def rejected(status, reason):
    return {"status": status, "reason": reason, "events": []}


def verification(key_index=0):
    return {"scheme": "discord-ed25519", "key_index": key_index}


GUILD_CONVERSATION = {"id": CHANNEL_ID, "kind": "channel"}
GUILD_SENDER = {"id": MEMBER["user"]["id"], "name": "Ichiro (support)"}


def event(iid, event_type, provider_type, postback, *, dm=False, key_index=0):
    return {
        "id": event_id(iid),
        "type": event_type,
        "time": snowflake_time(iid),
        "data": {
            "provider_type": provider_type,
            "conversation": {"id": DM_CHANNEL_ID, "kind": "direct"} if dm else GUILD_CONVERSATION,
            "sender": {"id": DM_USER["id"], "name": "hanako"} if dm else GUILD_SENDER,
            "postback": postback,
            "reply": {"token": f"aW50ZXJhY3Rpb246{iid}:fixture-interaction-token"},
            "verification": verification(key_index),
            "ordering": {
                "key": f"discord/{ACCOUNT}/{DM_CHANNEL_ID if dm else CHANNEL_ID}",
                "sequence": (int(iid) >> 22) + DISCORD_EPOCH_MS,
            },
        },
    }


def with_raw(ev, body):
    """data.raw is the interaction itself; the expectation checks the fields a follow-up needs."""
    raw = json.loads(body)
    ev["data"]["raw"] = {"id": raw["id"], "type": raw["type"], "token": raw["token"], "application_id": APP_ID}
    return ev


os.makedirs(OUT, exist_ok=True)
for old in os.listdir(OUT):
    if old.endswith(".json"):
        os.remove(os.path.join(OUT, old))

# ---- PING -------------------------------------------------------------------------------------------------------
PING = body_of({"application_id": APP_ID, "entitlements": [], "id": snowflake(NOW_MS - 500, 1), "token": "aW50ZXJhY3Rpb246cGluZw:fixture-ping-token", "type": 1, "user": {"avatar": "c6a249645d46209f337279cd2ca998c7", "discriminator": "0", "global_name": "Discord", "id": "643945264868098049", "public_flags": 1, "username": "discord"}, "version": 1})
fixture("ping", "PING (type 1), as Discord sends when the Interactions Endpoint URL is saved: answered {\"type\":1}, nothing forwarded",
        PING, accepted('{"type":1}', []))
fixture("ping-old-key", "PING signed with the older of two configured public keys (rotation): still answered",
        PING, accepted('{"type":1}', []), seed=RFC_TEST_2[0],
        source=f"derived: signed with the RFC 8032 section 7.1 TEST 2 key pair (the second PUBLIC_KEY value) by scripts/gen_discord_fixtures.py")

# ---- application commands ---------------------------------------------------------------------------------------
iid, body = interaction(2, 2, {
    "guild_id": GUILD_ID, "id": "1174117300000000001", "name": "ticket", "type": 1,
    "options": [{"name": "subject", "type": 3, "value": "請求書の再発行"}, {"name": "urgent", "type": 5, "value": True}],
})
fixture("command-guild", "A slash command in a guild channel -> command.invoked (sender from member.user, nick as name), answered {\"type\":5}",
        body, accepted('{"type":5}', [with_raw(event(iid, "command.invoked", "APPLICATION_COMMAND", {
            "data": "ticket", "params": [{"name": "subject", "type": 3, "value": "請求書の再発行"}, {"name": "urgent", "type": 5, "value": True}],
        }), body)]))

iid, body = interaction(2, 3, {"id": "1174117300000000002", "name": "status", "type": 1}, dm=True)
fixture("command-dm", "A slash command in a DM with the bot: user instead of member, conversation direct, no options",
        body, accepted('{"type":5}', [with_raw(event(iid, "command.invoked", "APPLICATION_COMMAND", {"data": "status"}, dm=True), body)]))

iid, body = interaction(2, 4, {"id": "1174117300000000003", "name": "ticket", "type": 1, "options": [{"name": "subject", "type": 3, "value": "rotation"}]})
fixture("command-old-key", "A slash command signed with the older configured key: accepted, key_index 1",
        body, accepted('{"type":5}', [with_raw(event(iid, "command.invoked", "APPLICATION_COMMAND", {
            "data": "ticket", "params": [{"name": "subject", "type": 3, "value": "rotation"}]}, key_index=1), body)]),
        seed=RFC_TEST_2[0],
        source="derived: signed with the RFC 8032 section 7.1 TEST 2 key pair (the second PUBLIC_KEY value) by scripts/gen_discord_fixtures.py")

# ---- message components -----------------------------------------------------------------------------------------
MESSAGE = {"id": "1174117400000000001", "channel_id": CHANNEL_ID, "type": 0, "content": "お問い合わせありがとうございます", "author": {"id": APP_ID, "username": "sekisho-bot", "bot": True, "discriminator": "0"}, "timestamp": "2023-11-14T22:00:00.000000+00:00", "flags": 0, "components": []}
iid, body = interaction(3, 5, {"component_type": 2, "custom_id": "ticket:close:42"}, extra={"message": MESSAGE})
fixture("button", "A button click -> interaction.component, postback custom_id, answered {\"type\":6} (deferred update)",
        body, accepted('{"type":6}', [with_raw(event(iid, "interaction.component", "MESSAGE_COMPONENT", {
            "data": "ticket:close:42", "params": {"component_type": 2}}), body)]))

iid, body = interaction(3, 6, {"component_type": 3, "custom_id": "ticket:priority", "values": ["high", "billing"]}, extra={"message": MESSAGE})
fixture("select-menu", "A string select -> interaction.component, postback custom_id with the chosen values",
        body, accepted('{"type":6}', [with_raw(event(iid, "interaction.component", "MESSAGE_COMPONENT", {
            "data": "ticket:priority", "params": {"component_type": 3, "values": ["high", "billing"]}}), body)]))

# ---- autocomplete -----------------------------------------------------------------------------------------------
iid, body = interaction(4, 7, {"id": "1174117300000000001", "name": "ticket", "type": 1, "options": [{"name": "subject", "type": 3, "value": "請求", "focused": True}]})
fixture("autocomplete", "Autocomplete -> interaction.autocomplete, answered with no choices (type 8)",
        body, accepted('{"type":8,"data":{"choices":[]}}', [with_raw(event(iid, "interaction.autocomplete", "APPLICATION_COMMAND_AUTOCOMPLETE", {
            "data": "ticket", "params": [{"name": "subject", "type": 3, "value": "請求", "focused": True}]}), body)]))

# ---- modal submit -----------------------------------------------------------------------------------------------
COMPONENTS = [
    {"type": 1, "components": [{"type": 4, "custom_id": "company", "value": "株式会社サンプル"}]},
    {"type": 1, "components": [{"type": 4, "custom_id": "details", "value": "請求書を\n再発行してください"}]},
]
iid, body = interaction(5, 8, {"custom_id": "ticket:form", "components": COMPONENTS})
fixture("modal-submit", "A modal submit -> interaction.modal_submitted, postback custom_id with the submitted components, answered {\"type\":5}",
        body, accepted('{"type":5}', [with_raw(event(iid, "interaction.modal_submitted", "MODAL_SUBMIT", {
            "data": "ticket:form", "params": COMPONENTS}), body)]))

# ---- a type Sekisho does not know -------------------------------------------------------------------------------
iid, body = interaction(9, 9, {"name": "future"})
ev = with_raw(event(iid, "unrecognized", "9", None), body)
del ev["data"]["postback"]
fixture("unrecognized-type", "An interaction type newer than this gateway -> unrecognized, forwarded, answered {\"type\":5}",
        body, accepted('{"type":5}', [ev]))

# ---- rejections -------------------------------------------------------------------------------------------------
_, body = interaction(2, 10, {"id": "1174117300000000002", "name": "status", "type": 1})
fixture("invalid-signature-ping", "What Discord sends when the URL is saved and periodically: a PING with an invalid signature. Must be 401, or Discord rejects the endpoint",
        PING, rejected(401, "invalid_signature"), seed=FORGER_SEED, now_ms=None)
fixture("forged-command", "A slash command signed with a key that is not configured", body,
        rejected(401, "invalid_signature"), seed=FORGER_SEED, now_ms=None)
good = sign(RFC_TEST_1[0], TIMESTAMP, body)
fixture("tampered-body", "A correctly signed command whose body was changed afterwards (the user id)",
        body.replace(MEMBER["user"]["id"], "1174117299999999999"), rejected(401, "invalid_signature"), now_ms=None,
        headers={"content-type": "application/json", "x-signature-ed25519": good, "x-signature-timestamp": TIMESTAMP})
fixture("tampered-timestamp", "A correct signature presented with another timestamp (the timestamp is signed)",
        body, rejected(401, "invalid_signature"), now_ms=None,
        headers={"content-type": "application/json", "x-signature-ed25519": good, "x-signature-timestamp": "1700000001"})
fixture("signature-not-hex", "A signature header that is not 128 hex digits", body, rejected(401, "invalid_signature"), now_ms=None,
        headers={"content-type": "application/json", "x-signature-ed25519": good[:126], "x-signature-timestamp": TIMESTAMP})
fixture("missing-signature", "No X-Signature-Ed25519 header", body, rejected(401, "missing_signature"), now_ms=None,
        headers={"content-type": "application/json", "x-signature-timestamp": TIMESTAMP})
fixture("missing-timestamp", "No X-Signature-Timestamp header (the timestamp is part of what is signed)", body,
        rejected(401, "missing_signature"), now_ms=None,
        headers={"content-type": "application/json", "x-signature-ed25519": good})
fixture("stale-timestamp", "A genuine signature received 301 s after its timestamp (a replay)", body,
        rejected(401, "stale_timestamp"), now_ms=1700000301000)
fixture("future-timestamp", "A genuine signature whose timestamp is 301 s ahead of the gateway's clock", body,
        rejected(401, "stale_timestamp"), now_ms=1699999699000)
fixture("edge-of-window", "A genuine signature received exactly 300 s after its timestamp: still accepted", PING,
        accepted('{"type":1}', []), now_ms=1700000300000)
fixture("signed-malformed-json", "A correctly signed body that is not JSON", '{"type":2,', rejected(400, "malformed_body"))
fixture("signed-no-type", "A correctly signed JSON object without an interaction type", '{"id":"1"}', rejected(400, "malformed_body"))
fixture("wrong-method", "GET on the interactions route", "", rejected(405, "method_not_allowed"), method="GET", now_ms=None,
        headers={})
fixture("extra-path", "An extra path segment after the account", PING, rejected(404, "not_found"),
        extra_path=["interactions"], now_ms=None)
fixture("misconfigured-key", "The account's PUBLIC_KEY is not 64 hex digits: 500 misconfigured (the log names DISCORD_BADKEY_PUBLIC_KEY)",
        PING, rejected(500, "misconfigured"), account="badkey", config={"PUBLIC_KEY": RFC_TEST_1[1][:62]}, now_ms=None)

print(f"wrote {len([f for f in os.listdir(OUT) if f.endswith('.json')])} fixtures to {OUT}")
