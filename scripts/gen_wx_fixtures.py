#!/usr/bin/env python3
"""Writes fixtures/wechat/*.json and fixtures/wecom/*.json.

Signatures and ciphertexts are computed here with hashlib and the `cryptography` package, independently of the
Rust code (a straight port of Tencent's WXBizMsgCrypt Python sample). Vectors from shared/vectors are copied
verbatim. Run from the repository root: python3 scripts/gen_wx_fixtures.py
"""

import base64
import datetime
import hashlib
import json
import os
import struct
import urllib.parse

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------- WXBizMsgCrypt


def aes_key(encoding_aes_key):
    assert len(encoding_aes_key) == 43
    # Python's base64 ignores non-zero trailing bits, like the official samples.
    key = base64.b64decode(encoding_aes_key + "=")
    assert len(key) == 32
    return key


def sha1_sorted(*parts):
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def aes_raw(key, plain):
    assert len(plain) % 16 == 0
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def frame(random16, msg, receive_id, declared_len=None):
    length = len(msg) if declared_len is None else declared_len
    return random16 + struct.pack(">I", length) + msg + receive_id


def pkcs7_32(data):
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


def encrypt(encoding_aes_key, random16, msg, receive_id):
    return aes_raw(aes_key(encoding_aes_key), pkcs7_32(frame(random16, msg.encode(), receive_id.encode())))


def decrypt(encoding_aes_key, b64):
    key = aes_key(encoding_aes_key)
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(b64)) + dec.finalize()
    plain = plain[: -plain[-1]]
    (length,) = struct.unpack(">I", plain[16:20])
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


def event_id(channel, account, dedupe_key):
    """The envelope id: evt_ + the first 32 hex digits of sha256(channel \\n account \\n key)."""
    return "evt_" + hashlib.sha256(f"{channel}\n{account}\n{dedupe_key}".encode()).hexdigest()[:32]


def msg_key(sender, msg_id):
    """A message's de-duplication key: its MsgId scoped by the sender (MsgIds collide across senders)."""
    return json.dumps(["MsgId", sender, msg_id], separators=(",", ":"), ensure_ascii=False)


def event_key(sender, create_time, event, *fields):
    """An event's key: sender, time, event, then (name, value) of EventKey/MsgID/ChangeType/UserID/... present."""
    return json.dumps(["event", sender, str(create_time), event, *[list(f) for f in fields]],
                      separators=(",", ":"), ensure_ascii=False)


def random_for(label):
    return hashlib.sha256(label.encode()).hexdigest()[:16].encode()


def qs(pairs):
    return "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in pairs)


# ------------------------------------------------------------------------------------------------- writing

written = {"wechat": [], "wecom": []}


def write(channel, name, fixture):
    path = os.path.join(ROOT, "fixtures", channel, name + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=2)
        f.write("\n")
    written[channel].append(name)


def fixture(description, source, account, config, now_ms, method, query, body, expect):
    return {
        "description": description,
        "source": source,
        "account": account,
        "config": config,
        "now_ms": now_ms,
        "request": {
            "method": method,
            "query": query,
            "headers": {"content-type": "application/json" if body.startswith("{") else "text/xml"} if body else {},
            "body": body,
        },
        "expect": expect,
    }


def rejected(status, reason):
    return {"status": status, "reason": reason, "events": []}


def load_vectors(name):
    for folder in (os.path.join(ROOT, "..", "shared", "vectors"), os.path.join(ROOT, "tests", "vectors")):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return {v["id"]: v for v in json.load(f)["vectors"]}
    raise FileNotFoundError(name)


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


OA = load_vectors("wechat_oa.json")
WC = load_vectors("wecom.json")

# ================================================================================================ WeChat OA

# --- wechatpy-test: plaintext mode, shared/vectors/wechat_oa.json wechat-oa-plain-get-signature
v = OA["wechat-oa-plain-get-signature"]
PLAIN_CFG = {"TOKEN": v["token"]}
ts, nonce = v["timestamp"], v["nonce"]
now = int(ts) * 1000 + 2000
src = "shared/vectors/wechat_oa.json wechat-oa-plain-get-signature (wechatpy tests/test_utils.py @cbf53e06)"
assert sha1_sorted(v["token"], ts, nonce) == v["expected_signature"]
# echostr with a literal '+' and an escaped '/': answered verbatim, '+' is not a space.
raw_query = f"signature={v['expected_signature']}&timestamp={ts}&nonce={nonce}&echostr=4172+abc%2Fdef%3D"
write("wechat", "plain-handshake", fixture(
    "URL verification in plaintext mode: echostr answered verbatim as text/plain ('+' stays '+')",
    src, "wechatpy-test", PLAIN_CFG, now, "GET", raw_query, "",
    {"status": 200, "response_body": "4172+abc/def=", "events": []}))
write("wechat", "plain-handshake-bad-signature", fixture(
    "URL verification with the vector's negative signature (last digit changed)",
    src + " negative", "wechatpy-test", PLAIN_CFG, now, "GET",
    raw_query.replace(v["expected_signature"], v["negative"]["signature"]), "", rejected(401, "invalid_signature")))
write("wechat", "plain-handshake-stale", fixture(
    "URL verification replayed 10 minutes later: outside the default 300 s window",
    src + "; now_ms derived", "wechatpy-test", PLAIN_CFG, int(ts) * 1000 + 600_000, "GET", raw_query, "",
    rejected(401, "stale_timestamp")))
write("wechat", "plain-handshake-missing-echostr", fixture(
    "URL verification without echostr",
    src + "; echostr removed", "wechatpy-test", PLAIN_CFG, now, "GET",
    f"signature={v['expected_signature']}&timestamp={ts}&nonce={nonce}", "", rejected(400, "missing_parameter")))
PLAIN_TEXT = ("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oPlainUser0000000000000000001]]>"
              "</FromUserName><CreateTime>1410685588</CreateTime><MsgType><![CDATA[text]]></MsgType>"
              "<Content><![CDATA[plain & simple]]></Content><MsgId>6060000000000000001</MsgId></xml>")
write("wechat", "plain-text", fixture(
    "Plaintext-mode text message: signature over token/timestamp/nonce only; answered 'success'",
    src + "; body derived from the Official Account text message example", "wechatpy-test", PLAIN_CFG, now, "POST",
    f"signature={v['expected_signature']}&timestamp={ts}&nonce={nonce}&openid=oPlainUser0000000000000000001",
    PLAIN_TEXT,
    {"status": 200, "response_body": "success", "events": [{
        "id": event_id("wechat", "wechatpy-test", msg_key("oPlainUser0000000000000000001", "6060000000000000001")),
        "type": "message.received", "time": iso(1410685588),
        "data": {"provider_type": "text", "conversation": {"id": "oPlainUser0000000000000000001", "kind": "direct"},
                 "sender": {"id": "oPlainUser0000000000000000001"},
                 "message": {"id": "6060000000000000001", "kind": "text", "text": "plain & simple"},
                 "verification": {"scheme": "wechat-sha1", "key_index": 0},
                 "raw": {"ToUserName": "gh_0123456789ab", "FromUserName": "oPlainUser0000000000000000001",
                         "CreateTime": "1410685588", "MsgType": "text", "Content": "plain & simple",
                         "MsgId": "6060000000000000001"}}}]}))
write("wechat", "plain-missing-signature", fixture(
    "Plaintext POST without signature: refused, never a 200",
    "derived", "wechatpy-test", PLAIN_CFG, now, "POST", f"timestamp={ts}&nonce={nonce}", PLAIN_TEXT,
    rejected(401, "missing_signature")))
write("wechat", "plain-missing-timestamp", fixture(
    "Plaintext POST without timestamp",
    "derived", "wechatpy-test", PLAIN_CFG, now, "POST", f"signature={v['expected_signature']}&nonce={nonce}",
    PLAIN_TEXT, rejected(400, "missing_parameter")))
write("wechat", "plain-malformed-xml", fixture(
    "Validly signed plaintext POST whose body is not XML",
    src + "; body derived", "wechatpy-test", PLAIN_CFG, now, "POST",
    f"signature={v['expected_signature']}&timestamp={ts}&nonce={nonce}", "<xml><Content>unclosed</xml>",
    rejected(400, "malformed_body")))
write("wechat", "plain-wrong-method", fixture(
    "PUT is not a WeChat method", "derived", "wechatpy-test", PLAIN_CFG, now, "PUT",
    f"signature={v['expected_signature']}&timestamp={ts}&nonce={nonce}", "", rejected(405, "method_not_allowed")))

# --- official-sample: compatible mode, Tencent's Sample.py
v = OA["wechat-oa-official-python-sample-decrypt"]
OFF_CFG = {"TOKEN": v["token"], "ENCODING_AES_KEY": v["encoding_aes_key"], "APP_ID": v["appid"]}
q = v["query"]
now = int(q["timestamp"]) * 1000 + 1000
src = ("shared/vectors/wechat_oa.json wechat-oa-official-python-sample-decrypt "
       "(Tencent Sample.py via charlesXu86/Chatbot_CN @7e1cd5c2)")
encrypt_b64 = v["body_xml"].split("<Encrypt><![CDATA[")[1].split("]]>")[0]
assert sha1_sorted(v["token"], q["timestamp"], q["nonce"], encrypt_b64) == q["msg_signature"]
assert decrypt(v["encoding_aes_key"], encrypt_b64) == (v["expected"]["plaintext_xml"], v["appid"])
assert encrypt(v["encoding_aes_key"], v["expected"]["random16_ascii"].encode(), v["expected"]["plaintext_xml"], v["appid"]) == encrypt_b64
off_query = f"timestamp={q['timestamp']}&nonce={q['nonce']}&msg_signature={q['msg_signature']}&encrypt_type=aes"
OFF_EVENT = {
    "id": event_id("wechat", "official-sample", msg_key("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "6054768590064713728")),
    "type": "message.received", "time": iso(1409735668),
    "data": {"provider_type": "text", "conversation": {"id": "oyORnuP8q7ou2gfYjqLzSIWZf0rs", "kind": "direct"},
             "sender": {"id": "oyORnuP8q7ou2gfYjqLzSIWZf0rs"},
             "message": {"id": "6054768590064713728", "kind": "text", "text": "abcdteT"},
             "verification": {"scheme": "wechat-aes", "key_index": 0},
             "raw": {"ToUserName": "gh_10f6c3c3ac5a", "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
                     "CreateTime": "1409735668", "MsgType": "text", "Content": "abcdteT",
                     "MsgId": "6054768590064713728"}}}
write("wechat", "official-sample-compat", fixture(
    "Compatible mode: the official sample (plaintext fields and Encrypt side by side); the decrypted copy is used",
    src, "official-sample", OFF_CFG, now, "POST", off_query, v["body_xml"],
    {"status": 200, "response_body": "success", "events": [OFF_EVENT]}))
safe_body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{encrypt_b64}]]></Encrypt></xml>"
write("wechat", "official-sample-safe", fixture(
    "Safe mode: the official sample's Encrypt with only ToUserName beside it (same msg_signature)",
    src + "; outer XML reduced to the safe-mode shape", "official-sample", OFF_CFG, now, "POST", off_query, safe_body,
    {"status": 200, "response_body": "success", "events": [OFF_EVENT]}))
plain_sig = v["query_plain_signature_derived"]
assert sha1_sorted(v["token"], q["timestamp"], q["nonce"]) == plain_sig
write("wechat", "official-sample-handshake", fixture(
    "URL verification for the sample account: echostr verbatim, never encrypted even with an EncodingAESKey",
    src + " query_plain_signature_derived", "official-sample", OFF_CFG, now, "GET",
    f"signature={plain_sig}&timestamp={q['timestamp']}&nonce={q['nonce']}&echostr=5837397520665436492", "",
    {"status": 200, "response_body": "5837397520665436492", "events": []}))
forged = v["body_xml"].split("<Encrypt>")[0].replace("abcdteT", "forged by anyone who saw the URL") + "</xml>"
write("wechat", "official-sample-plaintext-downgrade", fixture(
    "Plaintext-mode POST (signature over token/timestamp/nonce only, no msg_signature) to an account with an "
    "EncodingAESKey: the signature does not cover the body, so it is refused as encryption_required",
    src + " query_plain_signature_derived; body = the sample's plaintext fields, Content altered", "official-sample",
    OFF_CFG, now, "POST", f"signature={plain_sig}&timestamp={q['timestamp']}&nonce={q['nonce']}"
    f"&openid=oyORnuP8q7ou2gfYjqLzSIWZf0rs", forged, rejected(401, "encryption_required")))
tampered = encrypt_b64.replace("hyzAe4", "hyzAe5", 1)
write("wechat", "official-sample-tampered", fixture(
    "The official sample with one Encrypt character changed: msg_signature no longer matches",
    src + "; Encrypt altered", "official-sample", OFF_CFG, now, "POST", off_query,
    v["body_xml"].replace(encrypt_b64, tampered), rejected(401, "invalid_signature")))
write("wechat", "official-sample-stale", fixture(
    "The official sample replayed 6 minutes later",
    src + "; now_ms derived", "official-sample", OFF_CFG, int(q["timestamp"]) * 1000 + 360_000, "POST", off_query,
    v["body_xml"], rejected(401, "stale_timestamp")))

# --- java-sample: the deterministic encrypt vector decrypts to text that is not XML
v = OA["wechat-oa-official-java-aes-encrypt-1"]
JAVA_CFG = {"TOKEN": v["extra"]["token"], "ENCODING_AES_KEY": v["encoding_aes_key"], "APP_ID": v["appid"]}
assert encrypt(v["encoding_aes_key"], v["random16"].encode(), v["plaintext"], v["appid"]) == v["expected_encrypt_b64"]
e = v["extra"]
assert sha1_sorted(e["token"], e["timestamp"], e["nonce"], v["expected_encrypt_b64"]) == e["derived_msg_signature_for_this_encrypt"]
write("wechat", "java-sample-not-xml", fixture(
    "Safe mode with the official Java test's ciphertext: decrypts to '我是中文abcd123', which is not XML -> 400",
    "shared/vectors/wechat_oa.json wechat-oa-official-java-aes-encrypt-1 (Tencent WXBizMsgCryptTest.java via "
    "Wyl015/wuyiling @91349987) with its derived msg_signature", "java-sample", JAVA_CFG,
    int(e["timestamp"]) * 1000, "POST",
    f"signature={sha1_sorted(e['token'], e['timestamp'], e['nonce'])}&timestamp={e['timestamp']}&nonce={e['nonce']}"
    f"&encrypt_type=aes&msg_signature={e['derived_msg_signature_for_this_encrypt']}",
    f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[{v['expected_encrypt_b64']}]]></Encrypt></xml>",
    rejected(400, "malformed_body")))

# --- safe-demo: every normalized type in safe mode, EncodingAESKey rotation, every bad-input reason
NEW_KEY = "SekishoSafeDemoNewKey0123456789abcdefghijkl"
OLD_KEY = "SekishoSafeDemoOldKey0123456789abcdefghijkl"
APP_ID = "wx1234567890abcdef"
TOKEN = "safe-demo-token"
SAFE_CFG = {"TOKEN": TOKEN, "ENCODING_AES_KEY": f"{NEW_KEY} {OLD_KEY}", "APP_ID": APP_ID}
T = 1700000000
OPENID = "oSafeDemoUser000000000000001"
GH = "gh_0123456789ab"


def oa_xml(create_time, msg_type, inner):
    return (f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{inner}</xml>")


def oa_event(create_time, event, inner=""):
    return oa_xml(create_time, "event", f"<Event><![CDATA[{event}]]></Event>{inner}")


def safe_request(name, plaintext=None, *, encrypt_b64=None, key=NEW_KEY, appid=APP_ID, mode="safe", ts=None):
    ts = str(ts or T)
    nonce = str(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    if encrypt_b64 is None:
        encrypt_b64 = encrypt(key, random_for(name), plaintext, appid)
    msg_sig = sha1_sorted(TOKEN, ts, nonce, encrypt_b64)
    query = (f"signature={sha1_sorted(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}&openid={OPENID}"
             f"&encrypt_type=aes&msg_signature={msg_sig}")
    element = f"<Encrypt><![CDATA[{encrypt_b64}]]></Encrypt>"
    if mode == "safe":
        body = f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName>{element}</xml>"
    else:
        body = plaintext.replace("</xml>", element + "</xml>")
    return query, body


SAFE_SRC = ("derived: body shaped like the Official Account message/event examples; encrypted and signed by "
            "scripts/gen_wx_fixtures.py (Python hashlib + cryptography)")
SAFE_NOW = T * 1000 + 1500
SAFE_VERIFY = {"scheme": "wechat-aes", "key_index": 0}
SENDER = {"id": OPENID}
CONV = {"id": OPENID, "kind": "direct"}


def safe_ok(name, description, plaintext, event, **kw):
    query, body = safe_request(name, plaintext, **kw)
    event.setdefault("data", {}).setdefault("verification", SAFE_VERIFY)
    event["data"].setdefault("sender", SENDER)
    event["data"].setdefault("conversation", CONV)
    write("wechat", name, fixture(description, SAFE_SRC, "safe-demo", SAFE_CFG, SAFE_NOW, "POST", query, body,
                                  {"status": 200, "response_body": "success", "events": [event]}))


def safe_bad(name, description, status, reason, plaintext=None, now=SAFE_NOW, **kw):
    query, body = safe_request(name, plaintext, **kw)
    write("wechat", name, fixture(description, SAFE_SRC, "safe-demo", SAFE_CFG, now, "POST", query, body,
                                  rejected(status, reason)))


C = T - 1
safe_ok("safe-text", "Safe mode text message", oa_xml(C, "text", "<Content><![CDATA[你好, Sekisho]]></Content><MsgId>24000000000000001</MsgId>"),
        {"id": event_id("wechat", "safe-demo", msg_key(OPENID, "24000000000000001")),
         "type": "message.received", "time": iso(C),
         "data": {"provider_type": "text", "message": {"id": "24000000000000001", "kind": "text", "text": "你好, Sekisho"},
                  "raw": {"ToUserName": GH, "FromUserName": OPENID, "CreateTime": str(C), "MsgType": "text",
                          "Content": "你好, Sekisho", "MsgId": "24000000000000001"}}})
safe_ok("safe-image", "Safe mode image message (PicUrl, MediaId)",
        oa_xml(C, "image", "<PicUrl><![CDATA[http://mmbiz.qpic.cn/example.jpg]]></PicUrl><MediaId><![CDATA[media_image_1]]></MediaId><MsgId>24000000000000002</MsgId>"),
        {"type": "message.received", "data": {"provider_type": "image", "message": {
            "id": "24000000000000002", "kind": "image",
            "attachments": [{"kind": "image", "id": "media_image_1", "url": "http://mmbiz.qpic.cn/example.jpg"}]}}})
safe_ok("safe-voice", "Safe mode voice message with speech recognition: Recognition becomes the text",
        oa_xml(C, "voice", "<MediaId><![CDATA[media_voice_1]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>24000000000000003</MsgId>"),
        {"type": "message.received", "data": {"provider_type": "voice", "message": {
            "id": "24000000000000003", "kind": "audio", "text": "腾讯微信团队",
            "attachments": [{"kind": "audio", "id": "media_voice_1"}]}, "raw": {"Format": "amr"}}})
safe_ok("safe-video", "Safe mode video message",
        oa_xml(C, "video", "<MediaId><![CDATA[media_video_1]]></MediaId><ThumbMediaId><![CDATA[thumb_1]]></ThumbMediaId><MsgId>24000000000000004</MsgId>"),
        {"type": "message.received", "data": {"provider_type": "video", "message": {
            "id": "24000000000000004", "kind": "video", "attachments": [{"kind": "video", "id": "media_video_1"}]},
            "raw": {"ThumbMediaId": "thumb_1"}}})
safe_ok("safe-shortvideo", "Safe mode short video message",
        oa_xml(C, "shortvideo", "<MediaId><![CDATA[media_short_1]]></MediaId><ThumbMediaId><![CDATA[thumb_2]]></ThumbMediaId><MsgId>24000000000000005</MsgId>"),
        {"type": "message.received", "data": {"provider_type": "shortvideo", "message": {
            "id": "24000000000000005", "kind": "video", "attachments": [{"kind": "video", "id": "media_short_1"}]}}})
safe_ok("safe-location", "Safe mode location message (Location_X = latitude, Location_Y = longitude)",
        oa_xml(C, "location", "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>24000000000000006</MsgId>"),
        {"type": "message.received", "data": {"provider_type": "location", "message": {
            "id": "24000000000000006", "kind": "location", "text": "位置信息",
            "location": {"latitude": 23.134521, "longitude": 113.358803, "address": "位置信息"}}, "raw": {"Scale": "20"}}})
safe_ok("safe-link", "Safe mode link message",
        oa_xml(C, "link", "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[https://mp.weixin.qq.com/]]></Url><MsgId>24000000000000007</MsgId>"),
        {"type": "message.received", "data": {"provider_type": "link", "message": {
            "id": "24000000000000007", "kind": "link", "text": "公众平台官网链接",
            "attachments": [{"kind": "link", "url": "https://mp.weixin.qq.com/", "name": "公众平台官网链接"}]}}})
safe_ok("safe-file", "Safe mode file message",
        oa_xml(C, "file", "<Title><![CDATA[report.pdf]]></Title><Description><![CDATA[quarterly]]></Description><FileKey><![CDATA[filekey_1]]></FileKey><FileMd5><![CDATA[5a3e1b0c]]></FileMd5><FileTotalLen>20480</FileTotalLen><MsgId>24000000000000008</MsgId>"),
        {"type": "message.received", "data": {"provider_type": "file", "message": {
            "id": "24000000000000008", "kind": "file",
            "attachments": [{"kind": "file", "id": "filekey_1", "name": "report.pdf", "size": 20480}]}}})
safe_ok("safe-subscribe", "Safe mode subscribe event -> follow (no scene)",
        oa_event(C, "subscribe", "<EventKey><![CDATA[]]></EventKey>"),
        {"type": "follow", "time": iso(C), "data": {"provider_type": "subscribe", "raw": {"EventKey": ""}}})
safe_ok("safe-subscribe-qrscene", "Follow by scanning a parameterised QR code: EventKey qrscene_123 -> postback 123",
        oa_event(C, "subscribe", "<EventKey><![CDATA[qrscene_123]]></EventKey><Ticket><![CDATA[TICKET_ABC]]></Ticket>"),
        {"type": "follow", "data": {"provider_type": "subscribe",
                                    "postback": {"data": "123", "params": {"ticket": "TICKET_ABC"}},
                                    "raw": {"EventKey": "qrscene_123", "Ticket": "TICKET_ABC"}}})
safe_ok("safe-unsubscribe", "Safe mode unsubscribe event -> unfollow", oa_event(C, "unsubscribe"),
        {"type": "unfollow", "data": {"provider_type": "unsubscribe"}})
safe_ok("safe-scan", "An existing follower scans a parameterised QR code -> qr.scanned",
        oa_event(C, "SCAN", "<EventKey><![CDATA[123]]></EventKey><Ticket><![CDATA[TICKET_ABC]]></Ticket>"),
        {"type": "qr.scanned", "data": {"provider_type": "SCAN", "postback": {"data": "123", "params": {"ticket": "TICKET_ABC"}}}})
safe_ok("safe-location-event", "Location reported on entering the chat -> location.reported",
        oa_event(C, "LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>"),
        {"type": "location.reported", "data": {"provider_type": "LOCATION", "message": {
            "kind": "location", "location": {"latitude": 23.137466, "longitude": 113.352425}},
            "raw": {"Precision": "119.385040"}}})
safe_ok("safe-click", "Menu click -> menu.clicked with the key as postback",
        oa_event(C, "CLICK", "<EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>"),
        {"id": event_id("wechat", "safe-demo", event_key(OPENID, C, "CLICK", ("EventKey", "V1001_TODAY_MUSIC"))),
         "type": "menu.clicked", "data": {"provider_type": "CLICK", "postback": {"data": "V1001_TODAY_MUSIC"}}})
safe_ok("safe-view", "Menu link -> menu.viewed with the URL as postback",
        oa_event(C, "VIEW", "<EventKey><![CDATA[https://www.qq.com/]]></EventKey><MenuId>208379533</MenuId>"),
        {"type": "menu.viewed", "data": {"provider_type": "VIEW", "postback": {"data": "https://www.qq.com/"},
                                         "raw": {"MenuId": "208379533"}}})
safe_ok("safe-unknown-event", "An event Sekisho does not map passes through as unrecognized, nested fields kept",
        oa_event(C, "TEMPLATESENDJOBFINISH", "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>"
                 "<Extra><Nested><![CDATA[deep]]></Nested><Nested><![CDATA[deeper]]></Nested></Extra>"),
        {"type": "unrecognized", "data": {"provider_type": "TEMPLATESENDJOBFINISH", "raw": {
            "MsgID": "200163836", "Status": "success", "Extra": {"Nested": ["deep", "deeper"]}}}})
safe_ok("safe-old-key", "EncodingAESKey rotation: encrypted with the older key (second value) -> key_index 1",
        oa_xml(C, "text", "<Content><![CDATA[sent during the key switch]]></Content><MsgId>24000000000000009</MsgId>"),
        {"type": "message.received", "data": {"message": {"text": "sent during the key switch"},
                                              "verification": {"scheme": "wechat-aes", "key_index": 1}}},
        key=OLD_KEY)
safe_ok("compat-text", "Compatible mode on the safe-demo account",
        oa_xml(C, "text", "<Content><![CDATA[compatible]]></Content><MsgId>24000000000000010</MsgId>"),
        {"type": "message.received", "data": {"message": {"text": "compatible"}}}, mode="compat")

safe_bad("safe-stale-timestamp", "Correctly encrypted and signed, but the timestamp is 301 s old", 401, "stale_timestamp",
         oa_xml(C, "text", "<Content><![CDATA[late]]></Content><MsgId>24000000000000011</MsgId>"), now=(T + 301) * 1000)
safe_bad("safe-future-timestamp", "Timestamp 301 s in the future", 401, "stale_timestamp",
         oa_xml(C, "text", "<Content><![CDATA[early]]></Content><MsgId>24000000000000012</MsgId>"), now=(T - 301) * 1000)
safe_bad("safe-receive-id-mismatch", "Encrypted for another AppID: refused against configuration", 400,
         "receive_id_mismatch", oa_xml(C, "text", "<Content><![CDATA[x]]></Content>"), appid="wx0000000000000000")
safe_bad("safe-malformed-xml", "Decrypts to something that is not XML", 400, "malformed_body", "<xml><Content>")
safe_bad("safe-ciphertext-length", "Signed Encrypt of 20 bytes: not a multiple of the AES block", 400,
         "bad_ciphertext_length", encrypt_b64=base64.b64encode(bytes(range(20))).decode())
safe_bad("safe-ciphertext-not-base64", "Signed Encrypt that is not base64", 400, "ciphertext_not_base64",
         encrypt_b64="not*base64*at*all")
k = aes_key(NEW_KEY)
head = frame(random_for("x"), b"<xml/>", APP_ID.encode())
assert len(head) == 44
safe_bad("safe-bad-padding", "Last byte 0: not a PKCS#7 pad value", 400, "bad_padding",
         encrypt_b64=aes_raw(k, head + bytes(19) + b"\x00"))
safe_bad("safe-bad-padding-33", "Pad value 33: larger than WXBizMsgCrypt's 32-byte block", 400, "bad_padding",
         encrypt_b64=aes_raw(k, head + bytes(51) + b"\x21"))
safe_bad("safe-bad-padding-uneven", "Pad value 4 but one pad byte differs", 400, "bad_padding",
         encrypt_b64=aes_raw(k, head + b"\x04" * 16 + b"\x03\x04\x04\x04"))
safe_bad("safe-length-out-of-range", "The length field points past the end of the plaintext", 400,
         "length_out_of_range",
         encrypt_b64=aes_raw(k, pkcs7_32(frame(random_for("y"), b"<xml/>", APP_ID.encode(), declared_len=1000))))
safe_bad("safe-invalid-utf8", "The decrypted message is not UTF-8", 400, "invalid_utf8",
         encrypt_b64=aes_raw(k, pkcs7_32(frame(random_for("z"), b"<xml>\xff\xfe</xml>", APP_ID.encode()))))
query, body = safe_request("safe-bad-signature", oa_xml(C, "text", "<Content><![CDATA[x]]></Content>"))
write("wechat", "safe-bad-signature", fixture(
    "msg_signature computed with another token", SAFE_SRC, "safe-demo", SAFE_CFG, SAFE_NOW, "POST",
    query.split("&msg_signature=")[0] + "&msg_signature=" + sha1_sorted("other-token", str(T), "1", "x"), body,
    rejected(401, "invalid_signature")))
write("wechat", "safe-missing-msg-signature", fixture(
    "encrypt_type=aes without msg_signature", SAFE_SRC, "safe-demo", SAFE_CFG, SAFE_NOW, "POST",
    query.split("&msg_signature=")[0], body, rejected(401, "missing_signature")))
write("wechat", "safe-missing-encrypt", fixture(
    "encrypt_type=aes but the XML has no Encrypt element", SAFE_SRC, "safe-demo", SAFE_CFG, SAFE_NOW, "POST",
    query, f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName></xml>", rejected(400, "missing_parameter")))
write("wechat", "safe-malformed-envelope", fixture(
    "encrypt_type=aes but the body is not XML", SAFE_SRC, "safe-demo", SAFE_CFG, SAFE_NOW, "POST",
    query, "{\"Encrypt\":\"abc\"}", rejected(400, "malformed_body")))

q_tail, body_tail = safe_request("safe-garbage-tail", oa_xml(C, "text", "<Content><![CDATA[tail]]></Content><MsgId>24000000000000013</MsgId>"))
garbage_tail = body_tail + "<a><![CDATA[" * 2000 + "</nope>&bogus;"
write("wechat", "safe-garbage-tail", fixture(
    "Correctly signed and encrypted, with broken XML after the envelope: only <Encrypt> is read before the "
    "signature, the rest is checked after it and refused", SAFE_SRC, "safe-demo", SAFE_CFG, SAFE_NOW, "POST",
    q_tail, garbage_tail, rejected(400, "malformed_body")))
write("wechat", "safe-garbage-tail-bad-signature", fixture(
    "The same garbage tail with a msg_signature from another token: the signature is checked before anything "
    "after <Encrypt> is read, so the answer is invalid_signature, not malformed_body", SAFE_SRC, "safe-demo",
    SAFE_CFG, SAFE_NOW, "POST",
    q_tail.split("&msg_signature=")[0] + "&msg_signature=" + sha1_sorted("other-token", str(T), "1", "x"),
    garbage_tail, rejected(401, "invalid_signature")))
write("wechat", "safe-duplicate-encrypt", fixture(
    "Correctly signed first <Encrypt> followed by a second one: the envelope is ambiguous and refused after "
    "the signature", SAFE_SRC, "safe-demo", SAFE_CFG, SAFE_NOW, "POST", q_tail,
    body_tail.replace("</xml>", "<Encrypt><![CDATA[AAAA]]></Encrypt></xml>"), rejected(400, "malformed_body")))

# --- misconfigured and limited accounts
write("wechat", "misconfigured-aes-key", fixture(
    "An EncodingAESKey that is not 43 base64 characters: 500 misconfigured on the request, no panic",
    "derived", "bad-key", {"TOKEN": "t", "ENCODING_AES_KEY": "too-short-to-be-a-key", "APP_ID": APP_ID},
    SAFE_NOW, "GET", f"signature={sha1_sorted('t', str(T), '1')}&timestamp={T}&nonce=1&echostr=x", "",
    rejected(500, "misconfigured")))
big = oa_xml(C, "text", "<Content><![CDATA[" + "x" * 200 + "]]></Content>")
write("wechat", "oversized-body", fixture(
    "Body larger than the account's MAX_BODY_BYTES (256)", "derived", "tight-limit",
    {"TOKEN": "t", "MAX_BODY_BYTES": "256"}, SAFE_NOW, "POST",
    f"signature={sha1_sorted('t', str(T), '1')}&timestamp={T}&nonce=1", big, rejected(413, "payload_too_large")))

# ===================================================================================================== WeCom

# --- wecom-sample: Tencent's callback Sample.php
v = WC["wecom-official-verifyurl"]
WS_CFG = {"TOKEN": v["token"], "ENCODING_AES_KEY": v["encoding_aes_key"], "CORP_ID": v["receiveid_corpid"]}
src = "shared/vectors/wecom.json wecom-official-verifyurl (sbzhu/weworkapi_php callback/Sample.php @f2c836f5)"
qd = v["query_decoded"]
assert sha1_sorted(v["token"], qd["timestamp"], qd["nonce"], qd["echostr"]) == qd["msg_signature"]
assert decrypt(v["encoding_aes_key"], qd["echostr"]) == (v["expected"]["response_body"], v["receiveid_corpid"])
raw_query = v["request"].split("?", 1)[1]
write("wecom", "official-verifyurl", fixture(
    "URL verification: encrypted echostr decrypted and answered exactly (no quotes, BOM or newline)",
    src, "wecom-sample", WS_CFG, int(qd["timestamp"]) * 1000 + 500, "GET", raw_query, "",
    {"status": 200, "response_body": v["expected"]["response_body"], "events": []}))
write("wecom", "official-verifyurl-stale", fixture(
    "The official verification request replayed an hour later", src + "; now_ms derived", "wecom-sample", WS_CFG,
    int(qd["timestamp"]) * 1000 + 3_600_000, "GET", raw_query, "", rejected(401, "stale_timestamp")))
write("wecom", "official-verifyurl-form-decoded", fixture(
    "The echostr with '+' turned into spaces (form decoding): the signature no longer matches",
    src + "; '+' replaced by '%20'", "wecom-sample", WS_CFG, int(qd["timestamp"]) * 1000, "GET",
    raw_query.replace("%2B", "%20"), "", rejected(401, "invalid_signature")))
v = WC["wecom-official-decryptmsg"]
q = v["query"]
src = "shared/vectors/wecom.json wecom-official-decryptmsg (sbzhu/weworkapi_php callback/Sample.php @f2c836f5)"
enc = v["body_xml"].split("<Encrypt><![CDATA[")[1].split("]]>")[0]
assert sha1_sorted(v["token"], q["timestamp"], q["nonce"], enc) == q["msg_signature"]
assert decrypt(v["encoding_aes_key"], enc) == (v["expected"]["plaintext_xml"], v["receiveid_corpid"])
msg_query = f"msg_signature={q['msg_signature']}&timestamp={q['timestamp']}&nonce={q['nonce']}"
write("wecom", "official-decryptmsg", fixture(
    "The official encrypted text message (PKCS#7 pad value 30, which a 16-byte unpadder rejects)",
    src, "wecom-sample", WS_CFG, int(q["timestamp"]) * 1000 + 800, "POST", msg_query, v["body_xml"],
    {"status": 200, "response_body": "", "events": [{
        "id": event_id("wecom", "wecom-sample", msg_key("mycreate", "4561255354251345929")),
        "type": "message.received", "time": iso(1409659813),
        "data": {"provider_type": "text", "conversation": {"id": "mycreate", "kind": "direct"},
                 "sender": {"id": "mycreate"},
                 "message": {"id": "4561255354251345929", "kind": "text", "text": "hello"},
                 "verification": {"scheme": "wecom-aes", "key_index": 0},
                 "raw": {"ToUserName": "wx5823bf96d3bd56c7", "FromUserName": "mycreate", "CreateTime": "1409659813",
                         "MsgType": "text", "Content": "hello", "MsgId": "4561255354251345929", "AgentID": "218"}}}]}))
write("wecom", "official-decryptmsg-bad-signature", fixture(
    "The official message with msg_signature's last digit changed", src + "; signature altered", "wecom-sample",
    WS_CFG, int(q["timestamp"]) * 1000, "POST", msg_query.replace("51f3e6", "51f3e7"), v["body_xml"],
    rejected(401, "invalid_signature")))
write("wecom", "official-decryptmsg-missing-signature", fixture(
    "The official message without msg_signature", src + "; msg_signature removed", "wecom-sample", WS_CFG,
    int(q["timestamp"]) * 1000, "POST", f"timestamp={q['timestamp']}&nonce={q['nonce']}", v["body_xml"],
    rejected(401, "missing_signature")))
write("wecom", "official-decryptmsg-missing-nonce", fixture(
    "The official message without nonce", src + "; nonce removed", "wecom-sample", WS_CFG,
    int(q["timestamp"]) * 1000, "POST", f"msg_signature={q['msg_signature']}&timestamp={q['timestamp']}",
    v["body_xml"], rejected(400, "missing_parameter")))
write("wecom", "official-decryptmsg-wrong-corp", fixture(
    "The official message for an account configured with another CorpID: the receive id is checked against "
    "configuration (the envelope's ToUserName is not trusted)", src, "wrong-corp",
    {**WS_CFG, "CORP_ID": "ww0000000000000000"}, int(q["timestamp"]) * 1000, "POST", msg_query, v["body_xml"],
    rejected(400, "receive_id_mismatch")))

# --- wechatpy-work
v = WC["wechatpy-work-check-signature"]
WP_CFG = {"TOKEN": v["token"], "ENCODING_AES_KEY": v["encoding_aes_key"], "CORP_ID": v["receiveid_corpid"]}
qd = v["query_decoded"]
src = "shared/vectors/wecom.json wechatpy-work-check-signature (wechatpy/wechatpy tests/test_crypto.py @ce9c5147)"
assert sha1_sorted(v["token"], qd["timestamp"], qd["nonce"], qd["echostr"]) == qd["msg_signature"]
assert decrypt(v["encoding_aes_key"], qd["echostr"]) == (v["expected"]["response_body"], v["receiveid_corpid"])
wp_query = qs([("msg_signature", qd["msg_signature"]), ("timestamp", qd["timestamp"]), ("nonce", qd["nonce"]),
               ("echostr", qd["echostr"])])
write("wecom", "wechatpy-verifyurl", fixture(
    "wechatpy's WeCom verification vector", src, "wechatpy-work", WP_CFG, int(qd["timestamp"]) * 1000, "GET",
    wp_query, "", {"status": 200, "response_body": v["expected"]["response_body"], "events": []}))
write("wecom", "wechatpy-verifyurl-bad-nonce", fixture(
    "wechatpy's negative: nonce changed by one", src + " negative", "wechatpy-work", WP_CFG,
    int(qd["timestamp"]) * 1000, "GET", wp_query.replace(f"nonce={qd['nonce']}", f"nonce={v['negative']['nonce']}"),
    "", rejected(401, "invalid_signature")))

# --- wecom-demo: app callbacks for every normalized type, rotation, bad inputs
W_NEW = "SekishoWeComDemoNewKey0123456789abcdefghijk"
W_OLD = "SekishoWeComDemoOldKey0123456789abcdefghijk"
CORP = "ww0123456789abcdef"
W_TOKEN = "wecom-demo-token"
WD_CFG = {"TOKEN": W_TOKEN, "ENCODING_AES_KEY": f"{W_NEW},{W_OLD}", "CORP_ID": CORP}
USER = "zhangsan"
W_SRC = ("derived: body shaped like the WeCom 接收消息与事件 examples; encrypted and signed by "
         "scripts/gen_wx_fixtures.py (Python hashlib + cryptography)")


def wc_xml(msg_type, inner, create_time=C, sender=USER):
    return (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{inner}"
            f"<AgentID>1000002</AgentID></xml>")


def wc_event(event, inner="", sender=USER):
    return wc_xml("event", f"<Event><![CDATA[{event}]]></Event>{inner}", sender=sender)


def wc_request(name, plaintext=None, *, encrypt_b64=None, key=W_NEW, receive_id=CORP, token=W_TOKEN):
    nonce = str(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    if encrypt_b64 is None:
        encrypt_b64 = encrypt(key, random_for(name), plaintext, receive_id)
    query = f"msg_signature={sha1_sorted(token, str(T), nonce, encrypt_b64)}&timestamp={T}&nonce={nonce}"
    body = (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt_b64}]]></Encrypt>"
            f"<AgentID><![CDATA[1000002]]></AgentID></xml>")
    return query, body


def wc_ok(name, description, plaintext, event, key=W_NEW, sender=USER):
    query, body = wc_request(name, plaintext, key=key)
    event.setdefault("data", {}).setdefault("verification", {"scheme": "wecom-aes", "key_index": 0})
    event["data"].setdefault("sender", {"id": sender})
    event["data"].setdefault("conversation", {"id": sender, "kind": "direct"})
    write("wecom", name, fixture(description, W_SRC, "wecom-demo", WD_CFG, SAFE_NOW, "POST", query, body,
                                 {"status": 200, "response_body": "", "events": [event]}))


def wc_bad(name, description, status, reason, plaintext=None, now=SAFE_NOW, **kw):
    query, body = wc_request(name, plaintext, **kw)
    write("wecom", name, fixture(description, W_SRC, "wecom-demo", WD_CFG, now, "POST", query, body,
                                 rejected(status, reason)))


echo = "8675309123456789012"
e = encrypt(W_NEW, random_for("echo"), echo, CORP)
write("wecom", "demo-verifyurl", fixture(
    "URL verification on the demo account", W_SRC, "wecom-demo", WD_CFG, SAFE_NOW, "GET",
    qs([("msg_signature", sha1_sorted(W_TOKEN, str(T), "42", e)), ("timestamp", str(T)), ("nonce", "42"), ("echostr", e)]),
    "", {"status": 200, "response_body": echo, "events": []}))
wc_ok("text", "App text message", wc_xml("text", "<Content><![CDATA[请假申请]]></Content><MsgId>7000000000000000001</MsgId>"),
      {"id": event_id("wecom", "wecom-demo", msg_key(USER, "7000000000000000001")),
       "type": "message.received", "time": iso(C), "data": {
          "provider_type": "text", "message": {"id": "7000000000000000001", "kind": "text", "text": "请假申请"},
          "raw": {"AgentID": "1000002", "ToUserName": CORP}}})
wc_ok("image", "App image message",
      wc_xml("image", "<PicUrl><![CDATA[https://wework.qpic.cn/example.png]]></PicUrl><MediaId><![CDATA[media_w_1]]></MediaId><MsgId>7000000000000000002</MsgId>"),
      {"type": "message.received", "data": {"provider_type": "image", "message": {
          "kind": "image", "attachments": [{"kind": "image", "id": "media_w_1", "url": "https://wework.qpic.cn/example.png"}]}}})
wc_ok("voice", "App voice message (no Recognition)",
      wc_xml("voice", "<MediaId><![CDATA[media_w_2]]></MediaId><Format><![CDATA[amr]]></Format><MsgId>7000000000000000003</MsgId>"),
      {"type": "message.received", "data": {"provider_type": "voice", "message": {
          "kind": "audio", "attachments": [{"kind": "audio", "id": "media_w_2"}]}}})
wc_ok("video", "App video message",
      wc_xml("video", "<MediaId><![CDATA[media_w_3]]></MediaId><ThumbMediaId><![CDATA[thumb_w_3]]></ThumbMediaId><MsgId>7000000000000000004</MsgId>"),
      {"type": "message.received", "data": {"provider_type": "video", "message": {"kind": "video"}}})
wc_ok("location", "App location message",
      wc_xml("location", "<Location_X>31.2304</Location_X><Location_Y>121.4737</Location_Y><Scale>15</Scale><Label><![CDATA[上海市]]></Label><MsgId>7000000000000000005</MsgId><AppType><![CDATA[wxwork]]></AppType>"),
      {"type": "message.received", "data": {"message": {"kind": "location", "location": {"latitude": 31.2304, "longitude": 121.4737, "address": "上海市"}}}})
wc_ok("link", "App link message",
      wc_xml("link", "<Title><![CDATA[企业微信]]></Title><Description><![CDATA[desc]]></Description><Url><![CDATA[https://work.weixin.qq.com/]]></Url><PicUrl><![CDATA[https://work.weixin.qq.com/p.png]]></PicUrl><MsgId>7000000000000000006</MsgId>"),
      {"type": "message.received", "data": {"message": {"kind": "link", "text": "企业微信"}}})
wc_ok("subscribe", "Member added to the app's visible range -> follow", wc_event("subscribe"),
      {"type": "follow", "data": {"provider_type": "subscribe"}})
wc_ok("unsubscribe", "Member removed -> unfollow", wc_event("unsubscribe"),
      {"type": "unfollow", "data": {"provider_type": "unsubscribe"}})
wc_ok("enter-agent", "Member opens the app -> agent.entered", wc_event("enter_agent", "<EventKey><![CDATA[]]></EventKey>"),
      {"type": "agent.entered", "data": {"provider_type": "enter_agent"}})
wc_ok("location-event", "Location reported -> location.reported",
      wc_event("LOCATION", "<Latitude>23.104</Latitude><Longitude>113.320</Longitude><Precision>65.000</Precision><AppType><![CDATA[wxwork]]></AppType>"),
      {"type": "location.reported", "data": {"message": {"kind": "location", "location": {"latitude": 23.104, "longitude": 113.32}}}})
wc_ok("click", "Menu click (lower-case event name in WeCom) -> menu.clicked",
      wc_event("click", "<EventKey><![CDATA[MENU_KEY]]></EventKey>"),
      {"type": "menu.clicked", "data": {"provider_type": "click", "postback": {"data": "MENU_KEY"}}})
wc_ok("view", "Menu link -> menu.viewed", wc_event("view", "<EventKey><![CDATA[https://work.weixin.qq.com/]]></EventKey>"),
      {"type": "menu.viewed", "data": {"postback": {"data": "https://work.weixin.qq.com/"}}})
wc_ok("change-contact", "Contact change from 'sys' about a member -> contact.changed with the member",
      wc_event("change_contact", "<ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID><Name><![CDATA[李四]]></Name>", sender="sys"),
      {"id": event_id("wecom", "wecom-demo", event_key("sys", C, "change_contact", ("ChangeType", "update_user"),
                                                       ("UserID", "lisi"))),
       "type": "contact.changed", "data": {"provider_type": "change_contact", "members": [{"id": "lisi"}],
                                           "raw": {"ChangeType": "update_user", "Name": "李四"}}}, sender="sys")
wc_ok("template-card-event", "Template card button -> postback",
      wc_event("template_card_event", "<EventKey><![CDATA[button_approve]]></EventKey><TaskId><![CDATA[task_1]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[rc]]></ResponseCode>"),
      {"type": "postback", "data": {"postback": {"data": "button_approve"}, "raw": {"TaskId": "task_1"}}})
wc_ok("unknown-event", "An unmapped event passes through as unrecognized",
      wc_event("batch_job_result", "<BatchJob><JobId><![CDATA[S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4]]></JobId><JobType><![CDATA[sync_user]]></JobType><ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg></BatchJob>"),
      {"type": "unrecognized", "data": {"provider_type": "batch_job_result", "raw": {"BatchJob": {
          "JobId": "S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4", "JobType": "sync_user", "ErrCode": "0", "ErrMsg": "ok"}}}})
wc_ok("old-key", "EncodingAESKey rotation: message encrypted with the older key -> key_index 1",
      wc_xml("text", "<Content><![CDATA[old key]]></Content><MsgId>7000000000000000007</MsgId>"),
      {"type": "message.received", "data": {"verification": {"scheme": "wecom-aes", "key_index": 1}}}, key=W_OLD)
wc_bad("stale-timestamp", "Encrypted and signed, 10 minutes old", 401, "stale_timestamp",
       wc_xml("text", "<Content><![CDATA[x]]></Content>"), now=(T + 600) * 1000)
wc_bad("bad-padding", "Last byte 0", 400, "bad_padding",
       encrypt_b64=aes_raw(aes_key(W_NEW), frame(random_for("p"), b"<xml/>", CORP.encode()) + bytes(19) + b"\x00"))
wc_bad("length-out-of-range", "Length field past the end", 400, "length_out_of_range",
       encrypt_b64=aes_raw(aes_key(W_NEW), pkcs7_32(frame(random_for("l"), b"<xml/>", CORP.encode(), declared_len=70000))))
wc_bad("ciphertext-length", "Ciphertext of 33 bytes", 400, "bad_ciphertext_length",
       encrypt_b64=base64.b64encode(bytes(33)).decode())
wc_bad("invalid-utf8", "Message bytes not UTF-8", 400, "invalid_utf8",
       encrypt_b64=aes_raw(aes_key(W_NEW), pkcs7_32(frame(random_for("u"), b"\xc3\x28", CORP.encode()))))
wc_bad("receive-id-mismatch", "Encrypted for another CorpID", 400, "receive_id_mismatch",
       wc_xml("text", "<Content><![CDATA[x]]></Content>"), receive_id="ww9999999999999999")
wc_bad("malformed-xml", "Decrypts to malformed XML", 400, "malformed_body", "<xml><a></b></xml>")
wc_bad("wrong-token", "Signed with a token that is not configured", 401, "invalid_signature",
       wc_xml("text", "<Content><![CDATA[x]]></Content>"), token="not-the-token")

PLAIN_WC = wc_xml("text", "<Content><![CDATA[not encrypted]]></Content><MsgId>7000000000000000099</MsgId>")
write("wecom", "plaintext-body", fixture(
    "WeCom always encrypts: a WeChat-plaintext-style request (signature over token/timestamp/nonce, plaintext "
    "XML) is refused, nothing forwarded", W_SRC, "wecom-demo", WD_CFG, SAFE_NOW, "POST",
    f"signature={sha1_sorted(W_TOKEN, str(T), '5')}&timestamp={T}&nonce=5", PLAIN_WC, rejected(401, "missing_signature")))
write("wecom", "plaintext-body-msg-signature", fixture(
    "A plaintext XML body with msg_signature over token/timestamp/nonce only: there is no Encrypt to verify",
    W_SRC, "wecom-demo", WD_CFG, SAFE_NOW, "POST",
    f"msg_signature={sha1_sorted(W_TOKEN, str(T), '5')}&timestamp={T}&nonce=5", PLAIN_WC,
    rejected(400, "missing_parameter")))
q_tail, body_tail = wc_request("garbage-tail", wc_xml("text", "<Content><![CDATA[tail]]></Content><MsgId>7000000000000000098</MsgId>"))
wc_garbage = body_tail + "<a><![CDATA[" * 2000 + "</nope>"
write("wecom", "garbage-tail", fixture(
    "Correctly signed, with broken XML after the envelope: refused after the signature", W_SRC, "wecom-demo",
    WD_CFG, SAFE_NOW, "POST", q_tail, wc_garbage, rejected(400, "malformed_body")))
write("wecom", "garbage-tail-bad-signature", fixture(
    "The same garbage tail with a wrong msg_signature: invalid_signature, the rest never parsed", W_SRC,
    "wecom-demo", WD_CFG, SAFE_NOW, "POST",
    "msg_signature=" + sha1_sorted("not-the-token", str(T), "1", "x") + "&" + q_tail.split("&", 1)[1], wc_garbage,
    rejected(401, "invalid_signature")))

# --- aibot-demo: AI-bot API mode (JSON, empty receive id)
A_KEY = "SekishoAiBotDemoKey00123456789abcdefghijklm"
A_TOKEN = "aibot-demo-token"
A_CFG = {"TOKEN": A_TOKEN, "ENCODING_AES_KEY": A_KEY, "MODE": "aibot"}
A_SRC = ("derived: JSON shaped like the WeCom 智能机器人 接收消息/接收事件 examples; encrypted (receive id \"\") and "
         "signed by scripts/gen_wx_fixtures.py")


def ai_request(name, message_json, receive_id=""):
    nonce = str(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    enc = encrypt(A_KEY, random_for(name), message_json, receive_id)
    query = f"msg_signature={sha1_sorted(A_TOKEN, str(T), nonce, enc)}&timestamp={T}&nonce={nonce}"
    return query, json.dumps({"encrypt": enc})


def ai_ok(name, description, message, event):
    query, body = ai_request(name, json.dumps(message, ensure_ascii=False))
    event.setdefault("data", {}).setdefault("verification", {"scheme": "wecom-aes", "key_index": 0})
    event["data"].setdefault("raw", message)
    write("wecom", name, fixture(description, A_SRC, "aibot-demo", A_CFG, SAFE_NOW, "POST", query, body,
                                 {"status": 200, "response_body": "", "events": [event]}))


echo = "3141592653589793238"
e = encrypt(A_KEY, random_for("aibot-echo"), echo, "")
write("wecom", "aibot-verifyurl", fixture(
    "AI bot URL verification: echostr encrypted for the empty receive id", A_SRC, "aibot-demo", A_CFG, SAFE_NOW,
    "GET", qs([("msg_signature", sha1_sorted(A_TOKEN, str(T), "7", e)), ("timestamp", str(T)), ("nonce", "7"),
               ("echostr", e)]), "", {"status": 200, "response_body": echo, "events": []}))
ai_ok("aibot-text-group", "AI bot: @-mention in a group -> message.received in the group, response_url as reply",
      {"msgid": "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=", "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": "group",
       "from": {"userid": USER}, "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?code=x",
       "msgtype": "text", "text": {"content": "@RobotA hello robot"}},
      {"id": event_id("wecom", "aibot-demo", json.dumps(["msgid", USER, "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="],
                                                        separators=(",", ":"))),
       "type": "message.received", "data": {
          "provider_type": "text", "conversation": {"id": "CHATID", "kind": "group"}, "sender": {"id": USER},
          "message": {"id": "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=", "kind": "text", "text": "@RobotA hello robot"},
          "reply": {"token": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?code=x"}}})
ai_ok("aibot-mixed-single", "AI bot: mixed text and image in a single chat",
      {"msgid": "MIXED0001", "aibotid": "AIBOTID", "chattype": "single", "from": {"userid": USER},
       "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?code=y", "msgtype": "mixed",
       "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": "看这张图"}},
                              {"msgtype": "image", "image": {"url": "https://example.invalid/encrypted-image"}}]}},
      {"type": "message.received", "data": {
          "provider_type": "mixed", "conversation": {"id": USER, "kind": "direct"},
          "message": {"kind": "mixed", "text": "看这张图", "attachments": [{"kind": "image", "url": "https://example.invalid/encrypted-image"}]}}})
ai_ok("aibot-enter-chat", "AI bot: user opens the single chat -> agent.entered",
      {"msgid": "EVENT0001", "create_time": 1700000000, "aibotid": "AIBOTID", "chattype": "single",
       "from": {"corpid": "wpxxxx", "userid": USER}, "msgtype": "event", "event": {"eventtype": "enter_chat"}},
      {"type": "agent.entered", "time": iso(T), "data": {"provider_type": "enter_chat", "sender": {"id": USER}}})
ai_ok("aibot-template-card", "AI bot: template card button -> postback with the event key",
      {"msgid": "EVENT0002", "create_time": 1700000000, "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": "group",
       "from": {"userid": USER}, "msgtype": "event",
       "event": {"eventtype": "template_card_event",
                 "template_card_event": {"card_type": "button_interaction", "event_key": "approve", "task_id": "t1"}}},
      {"type": "postback", "data": {"provider_type": "template_card_event", "postback": {"data": "approve"}}})
ai_ok("aibot-stream", "AI bot: stream refresh is passed through as unrecognized",
      {"msgid": "STREAM0001", "aibotid": "AIBOTID", "chattype": "single", "from": {"userid": USER},
       "msgtype": "stream", "stream": {"id": "STREAMID"}},
      {"type": "unrecognized", "data": {"provider_type": "stream"}})
query, body = ai_request("aibot-corp-receive-id", json.dumps({"msgid": "X", "msgtype": "text"}), receive_id=CORP)
write("wecom", "aibot-receive-id-mismatch", fixture(
    "AI bot account, message encrypted for a CorpID instead of the empty receive id", A_SRC, "aibot-demo", A_CFG,
    SAFE_NOW, "POST", query, body, rejected(400, "receive_id_mismatch")))
query, body = ai_request("aibot-xml-envelope", json.dumps({"msgid": "X", "msgtype": "text"}))
write("wecom", "aibot-xml-envelope", fixture(
    "AI bot account given an XML envelope instead of JSON", A_SRC, "aibot-demo", A_CFG, SAFE_NOW, "POST", query,
    f"<xml><Encrypt><![CDATA[{json.loads(body)['encrypt']}]]></Encrypt></xml>", rejected(400, "malformed_body")))
query, body = ai_request("aibot-not-json", "this is not json")
write("wecom", "aibot-inner-not-json", fixture(
    "AI bot message that decrypts to something that is not JSON", A_SRC, "aibot-demo", A_CFG, SAFE_NOW, "POST",
    query, body, rejected(400, "malformed_body")))

query, body = ai_request("aibot-garbage-tail", json.dumps({"msgid": "T1", "msgtype": "text", "from": {"userid": USER}}))
write("wecom", "aibot-garbage-tail", fixture(
    "AI bot: correctly signed {\"encrypt\"} followed by broken JSON: only encrypt is read before the signature, "
    "the rest is refused after it", A_SRC, "aibot-demo", A_CFG, SAFE_NOW, "POST", query,
    body[:-1] + ', "x": [[[[ garbage', rejected(400, "malformed_body")))
write("wecom", "aibot-garbage-tail-bad-signature", fixture(
    "AI bot: the same broken JSON with a wrong msg_signature -> invalid_signature", A_SRC, "aibot-demo", A_CFG,
    SAFE_NOW, "POST", "msg_signature=" + sha1_sorted("not-the-token", "1") + "&" + query.split("&", 1)[1],
    body[:-1] + ', "x": [[[[ garbage', rejected(401, "invalid_signature")))

write("wecom", "misconfigured-aes-key", fixture(
    "An EncodingAESKey with a character outside base64: 500 misconfigured, no panic", "derived", "bad-key",
    {"TOKEN": "t", "ENCODING_AES_KEY": "!" * 43, "CORP_ID": CORP}, SAFE_NOW, "POST",
    f"msg_signature={'0' * 40}&timestamp={T}&nonce=1", "<xml/>", rejected(500, "misconfigured")))
write("wecom", "oversized-body", fixture(
    "Body larger than the account's MAX_BODY_BYTES (512)", "derived", "tight-limit",
    {"TOKEN": "t", "ENCODING_AES_KEY": W_NEW, "CORP_ID": CORP, "MAX_BODY_BYTES": "512"}, SAFE_NOW, "POST",
    f"msg_signature={'0' * 40}&timestamp={T}&nonce=1", "<xml><Encrypt><![CDATA[" + "A" * 600 + "]]></Encrypt></xml>",
    rejected(413, "payload_too_large")))

for channel, names in written.items():
    print(channel, len(names))
