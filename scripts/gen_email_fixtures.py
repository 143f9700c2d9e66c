#!/usr/bin/env python3
"""Writes fixtures/email/<name>.eml and fixtures/email/<name>.json.

Every message is built with Python's own e-mail encoders, independently of the Rust code:
  - charsets: the `iso2022_jp`, `shift_jis` and `utf-8` codecs;
  - transfer encodings: `email.base64mime.body_encode` and `email.quoprimime.body_encode` (what `MIMEText`
    uses internally);
  - RFC 2047 encoded words: `email.header.Header` (the ISO-2022-JP and UTF-8 ones), or `email.base64mime.header_encode`
    for Shift_JIS (Python's `Header` silently converts Shift_JIS to ISO-2022-JP, see README);
  - RFC 2231 parameters: `Message.add_header(..., filename=('UTF-8', '', name))`;
  - dates: `email.utils.format_datetime`;
  - serialisation: `email.generator.BytesGenerator` with the compat32 policy and CRLF line endings, which also folds
    long header lines.
Only `malformed` is assembled by hand, because Python's generator refuses to write most of its defects.

Everything is fixed (dates, Message-IDs, MIME boundaries), so a rerun writes identical bytes. The block at the end
parses every .eml back with `email.policy.default` and checks it against the JSON expectations.

Run from anywhere: python3 scripts/gen_email_fixtures.py
"""

import datetime
import email
import email.base64mime
import email.generator
import email.policy
import email.quoprimime
import email.utils
import io
import json
import os
import re
import struct
import unicodedata
import zlib
from email.header import Header
from email.message import Message

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "email")

ACCOUNT = "support"
CONFIG = {"ADDRESS": "support@example.com, info@example.co.jp"}

# What real SMTP carries: CRLF everywhere; compat32 keeps our header values and encoded words as given.
WIRE = email.policy.compat32.clone(linesep="\r\n")


# --------------------------------------------------------------------------------------------------- helpers


def when(y, mo, d, h, mi, s, offset_hours=9):
    """(RFC 5322 date string, Unix milliseconds) for a wall-clock time at a fixed UTC offset."""
    tz = datetime.timezone(datetime.timedelta(hours=offset_hours))
    dt = datetime.datetime(y, mo, d, h, mi, s, tzinfo=tz)
    return email.utils.format_datetime(dt), int(dt.timestamp()) * 1000


class CasedHeader(Header):
    """`email.header.Header`, with the encoded words' charset label and encoding letter spelled the way a given
    mail client spells them (Python writes `=?iso-2022-jp?b?`, Thunderbird `=?ISO-2022-JP?B?`, Outlook
    `=?iso-2022-jp?B?`). The encoded text itself is Python's."""

    def __init__(self, label=None, letter="B", **kw):
        super().__init__(**kw)
        self._label = label
        self._letter = letter

    def encode(self, splitchars=";, \t", maxlinelen=None, linesep="\n"):
        out = super().encode(splitchars, maxlinelen, linesep)
        if self._label is None:
            return out
        return re.sub(r"=\?[^?]+\?[bB]\?", "=?%s?%s?" % (self._label, self._letter), out)


def words(text, charset, label=None, letter="B", name="Subject", prefix=None):
    """An RFC 2047 header value: `text` in `charset`, optionally after a plain-ASCII `prefix` ("Re: ")."""
    h = CasedHeader(label=label, letter=letter, header_name=name)
    if prefix is not None:
        h.append(prefix, "us-ascii")
    h.append(text, charset)
    return h


def mailbox(display, address, charset, label=None, letter="B", name="From"):
    """`=?cs?B?...?= <address>` for a non-ASCII display name."""
    h = CasedHeader(label=label, letter=letter, header_name=name)
    h.append(display, charset)
    h.append("<%s>" % address, "us-ascii")
    return h


def mailboxes(items, label=None, letter="B", name="Cc"):
    """Several mailboxes in one header; items are (display or None, address, charset or None). Consecutive ASCII
    text goes into one Header chunk so that folding does not double the space after a comma."""
    segments = []
    for i, (display, address, charset) in enumerate(items):
        sep = ", " if i + 1 < len(items) else ""
        if display is None:
            segments.append((address + sep, "us-ascii"))
        elif charset is None:
            segments.append(("%s <%s>%s" % (display, address, sep), "us-ascii"))
        else:
            segments.append((display, charset))
            segments.append(("<%s>%s" % (address, sep), "us-ascii"))
    merged = []
    for text, charset in segments:
        if merged and charset == "us-ascii" and merged[-1][1] == "us-ascii":
            merged[-1] = (merged[-1][0] + text, charset)
        else:
            merged.append((text, charset))
    h = CasedHeader(label=label, letter=letter, header_name=name)
    for text, charset in merged:
        h.append(text, charset)
    return h


def sjis_words(text, label="Shift_JIS", limit=60):
    """Shift_JIS encoded words. Python's Header would convert Shift_JIS to ISO-2022-JP (email.charset maps
    shift_jis -> iso-2022-jp for output), so the words are cut by hand at character boundaries and each one is
    encoded with email.base64mime.header_encode."""
    out, chunk = [], ""
    for ch in text:
        trial = chunk + ch
        if chunk and len(email.base64mime.header_encode(trial.encode("shift_jis"), label)) > limit:
            out.append(chunk)
            chunk = ch
        else:
            chunk = trial
    out.append(chunk)
    encoded = [email.base64mime.header_encode(c.encode("shift_jis"), label) for c in out]
    return " ".join(w.replace("?b?", "?B?", 1) for w in encoded)


def body(text, codec, cte, crlf=False):
    """Encode `text` with the charset codec, then with the transfer encoding, as MIMEText would."""
    if crlf:
        text = text.replace("\n", "\r\n")
    raw = text.encode(codec)
    cte = cte.lower()
    if cte == "base64":
        return email.base64mime.body_encode(raw)
    if cte == "quoted-printable":
        return email.quoprimime.body_encode(raw.decode("latin-1"))
    if cte == "7bit":
        return raw.decode("ascii")
    if cte == "8bit":
        return raw.decode("ascii", "surrogateescape")  # BytesGenerator writes the raw bytes back
    raise ValueError(cte)


def binary(data):
    return email.base64mime.body_encode(data)


def part(headers, payload=None, parts=None, preamble=None, epilogue=None):
    m = Message()
    for k, v in headers:
        if isinstance(v, tuple):  # (value, {param: value}) -> add_header, which does RFC 2231 for tuples
            m.add_header(k, v[0], **v[1])
        else:
            m[k] = v
    if parts is not None:
        for p in parts:
            m.attach(p)
        m.preamble = preamble
        m.epilogue = epilogue
    else:
        m.set_payload(payload)
    return m


def serialise(msg):
    buf = io.BytesIO()
    email.generator.BytesGenerator(buf, mangle_from_=False, policy=WIRE).flatten(msg)
    raw = buf.getvalue()
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw


def received(from_host, ip, by, id_, date_str, for_addr=None, with_="ESMTPS"):
    s = "from %s (%s [%s]) by %s with %s id %s" % (from_host, from_host, ip, by, with_, id_)
    if for_addr:
        s += " for <%s>" % for_addr
    return s + "; " + date_str


def addr(address, name=None):
    d = {"address": address}
    if name is not None:
        d["name"] = name
    return d


def text_expect(text):
    return text.replace("\r\n", "\n").rstrip()


def conversation(message_id, in_reply_to, references):
    if references:
        return references[0]
    if in_reply_to:
        return in_reply_to[0]
    return message_id


def portable_jis(*texts):
    """Characters whose JIS X 0208 mapping is the same in Python's codecs and in WHATWG/encoding_rs (which decode
    like cp932): no WAVE DASH/FULLWIDTH TILDE, MINUS SIGN/FULLWIDTH HYPHEN-MINUS, EM DASH/HORIZONTAL BAR,
    DOUBLE VERTICAL LINE/PARALLEL TO, cent/pound/not signs."""
    for t in texts:
        assert t.encode("shift_jis") == t.encode("cp932"), t
        assert t.encode("shift_jis").decode("cp932") == t, t
        assert t.encode("iso2022_jp").decode("iso2022_jp") == t, t


# ------------------------------------------------------------------------------------------- binary payloads


def png(hex_bytes):
    data = bytes.fromhex(hex_bytes)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + chunk) == crc, kind
        if kind == b"IDAT":
            zlib.decompress(chunk)
        kinds.append(kind)
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    return data


# 1x1 fully transparent RGBA, and 2x2 RGB (red/blue checker). Literals so zlib versions cannot change the bytes.
PNG_1X1 = png(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000b4944415478da63"
    "6000020000050001e9fadcd80000000049454e44ae426082"
)
PNG_2X2 = png(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000134944415478da63"
    "b8a0a8cd9076860188812c002004049dd956f16a0000000049454e44ae426082"
)


def minimal_pdf(line):
    """A one-page PDF with a correct xref table."""
    content = b"BT /F1 18 Tf 72 760 Td (" + line + b") Tj ET\n"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


PDF_QUOTE = minimal_pdf(b"Quotation Q-2024-0313 / Suzuki Seisakusho")


# ---------------------------------------------------------------------------------------------- the messages

FIXTURES = []


def fixture(fn):
    FIXTURES.append(fn)
    return fn


def email_expect(message_id, subject, from_, to, text, date_ms, cc=(), in_reply_to=(), references=(),
                 html_contains=None, attachments=()):
    return {
        "message_id": message_id,
        "subject": subject,
        "from": from_,
        "to": list(to),
        "cc": list(cc),
        "in_reply_to": list(in_reply_to),
        "references": list(references),
        "conversation_id": conversation(message_id, list(in_reply_to), list(references)),
        "text": text,
        "html_contains": html_contains,
        "attachments": list(attachments),
        "date_ms": date_ms,
    }


@fixture
def plain_ascii():
    date, ms = when(2024, 3, 11, 2, 11, 58, offset_hours=-7)
    rcv, _ = when(2024, 3, 11, 9, 12, 3, offset_hours=0)
    mid = "6F1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D@example.net"
    text = (
        "Hello,\n"
        "\n"
        "I ordered a pair of walking shoes (order #10423) on March 4 and the tracking\n"
        "page still says \"label created\". Could you check whether the parcel has\n"
        "actually shipped? I need them before March 20.\n"
        "\n"
        "Thanks,\n"
        "John Smith\n"
    )
    msg = part([
        ("Received", received("mail.example.net", "198.51.100.25", "route1.mx.cloudflare.net", "4TtYx81Qk2z9C",
                              rcv, "support@example.com")),
        ("From", "John Smith <john.smith@example.net>"),
        ("Content-Type", "text/plain; charset=us-ascii"),
        ("Content-Transfer-Encoding", "7bit"),
        ("Mime-Version", "1.0 (Mac OS X Mail 16.0 \\(3774.500.171.1.1\\))"),
        ("Subject", "Question about my order #10423"),
        ("Message-Id", "<%s>" % mid),
        ("Date", date),
        ("To", "support@example.com"),
        ("X-Mailer", "Apple Mail (2.3774.500.171.1.1)"),
    ], body(text, "ascii", "7bit"))
    return {
        "description": "Apple Mail: a single text/plain us-ascii 7bit part from an English-speaking customer.",
        "encoders": "7bit us-ascii",
        "envelope": {"from": "john.smith@example.net", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, "Question about my order #10423", addr("john.smith@example.net", "John Smith"),
                              [addr("support@example.com")], text_expect(text), ms),
    }


@fixture
def multipart_alternative_utf8():
    date, ms = when(2024, 3, 12, 10, 23, 45)
    rcv, _ = when(2024, 3, 12, 1, 23, 47, offset_hours=0)
    mid = "CAJx5q9F3kR0vYt8W2mNpQ-7zL1aB+c4dE_fGhIjKlMnOp=w@mail.gmail.com"
    subject = "【ご相談】ギフト用ラッピングと熨斗の対応について"
    name = "佐藤 花子"
    text = (
        "ご担当者様\n"
        "\n"
        "はじめてご連絡いたします。佐藤と申します。\n"
        "母の誕生日に贈るため、商品番号 GX-2210 の今治タオルセットを購入予定です。\n"
        "ギフト用のラッピングと、熨斗（のし）の名入れはお願いできますでしょうか。\n"
        "\n"
        "お手数ですが、よろしくお願いいたします。\n"
        "\n"
        "佐藤 花子\n"
    )
    html = (
        '<div dir="ltr"><div>ご担当者様</div><div><br></div>'
        "<div>はじめてご連絡いたします。佐藤と申します。</div>"
        "<div>母の誕生日に贈るため、商品番号 <b>GX-2210</b> の今治タオルセットを購入予定です。</div>"
        "<div>ギフト用のラッピングと、熨斗（のし）の名入れはお願いできますでしょうか。</div>"
        "<div><br></div><div>お手数ですが、よろしくお願いいたします。</div><div><br></div>"
        '<div>佐藤 花子</div></div>\n'
    )
    boundary = "000000000000a1b2c3d4e5f60718"
    msg = part([
        ("Received", received("mail-pj1-f41.google.com", "203.0.113.41", "route2.mx.cloudflare.net",
                              "4TvL0c2Hd8zB1", rcv, "support@example.com")),
        ("Received", "by mail-pj1-f41.google.com with SMTP id 98e67ed59e1d1-29b8a2c3d4eso1234567a91.1 "
                     "for <support@example.com>; Mon, 11 Mar 2024 18:23:46 -0700 (PDT)"),
        ("MIME-Version", "1.0"),
        ("From", mailbox(name, "hanako.sato@example.jp", "utf-8", label="UTF-8")),
        ("Date", date),
        ("Message-ID", "<%s>" % mid),
        ("Subject", words(subject, "utf-8", label="UTF-8")),
        ("To", "support@example.com"),
        ("Content-Type", 'multipart/alternative; boundary="%s"' % boundary),
    ], parts=[
        part([("Content-Type", 'text/plain; charset="UTF-8"'), ("Content-Transfer-Encoding", "quoted-printable")],
             body(text, "utf-8", "quoted-printable")),
        part([("Content-Type", 'text/html; charset="UTF-8"'), ("Content-Transfer-Encoding", "quoted-printable")],
             body(html, "utf-8", "quoted-printable")),
    ], epilogue="")
    return {
        "description": "Gmail web: multipart/alternative with UTF-8 quoted-printable text/plain and text/html, "
                       "Japanese body; Subject and From name as =?UTF-8?B?...?= words (the Subject folded into "
                       "two words).",
        "encoders": "utf-8, quoprimime.body_encode, Header utf-8 B words",
        "envelope": {"from": "hanako.sato@example.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("hanako.sato@example.jp", name), [addr("support@example.com")],
                              text_expect(text), ms, html_contains="今治タオルセット"),
    }


@fixture
def iso2022jp():
    date, ms = when(2024, 3, 13, 14, 5, 31)
    rcv, _ = when(2024, 3, 13, 5, 5, 33, offset_hours=0)
    mid = "5c1f3a2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b@example.co.jp"
    subject = "【お見積りのご依頼】業務用プリンター３台の設置について（株式会社鈴木製作所）"
    name = "鈴木 一郎"
    text = (
        "株式会社エグザンプル\n"
        "サポートご担当者様\n"
        "\n"
        "いつもお世話になっております。\n"
        "株式会社鈴木製作所　総務部の鈴木です。\n"
        "\n"
        "先日カタログで拝見した業務用プリンターについて、\n"
        "以下の条件でお見積りをお願いできますでしょうか。\n"
        "\n"
        "・台数：３台\n"
        "・設置場所：本社２階および３階\n"
        "・希望納期：４月１５日まで\n"
        "\n"
        "※保守契約（５年）の料金も併せてお知らせください。\n"
        "\n"
        "よろしくお願い申し上げます。\n"
        "\n"
        "━━━━━━━━━━━━━━━━━━━━\n"
        "株式会社鈴木製作所　総務部\n"
        "鈴木 一郎（すずき いちろう）\n"
        "〒１０５００１１　東京都港区芝公園４丁目２番８号\n"
        "ＴＥＬ：０３　５５５５　０１２３\n"
        "━━━━━━━━━━━━━━━━━━━━\n"
    )
    portable_jis(subject, name, text)
    msg = part([
        ("Received", received("smtp.example.co.jp", "192.0.2.17", "route3.mx.cloudflare.net", "4TwB7n1Xq5z7K",
                              rcv, "support@example.com")),
        ("Message-ID", "<%s>" % mid),
        ("Date", date),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("Content-Language", "ja"),
        ("To", "support@example.com"),
        ("From", mailbox(name, "ichiro.suzuki@example.co.jp", "iso-2022-jp", label="ISO-2022-JP")),
        ("Subject", words(subject, "iso-2022-jp", label="ISO-2022-JP")),
        ("Content-Type", "text/plain; charset=ISO-2022-JP"),
        ("Content-Transfer-Encoding", "7bit"),
    ], body(text, "iso2022_jp", "7bit"))
    return {
        "description": "Thunderbird (Japanese locale, classic setting): text/plain; charset=ISO-2022-JP, 7bit, with "
                       "kanji, hiragana, katakana, full-width digits/letters, full-width space, box-drawing rule and "
                       "the 〒 mark; Subject (three folded words) and From name as =?ISO-2022-JP?B?...?= words, each "
                       "word switching back to ASCII (ESC ( B) at its end. The From name's space is an ASCII space "
                       "between two JIS runs inside one word.",
        "encoders": "iso2022_jp codec, 7bit, Header iso-2022-jp B words",
        "envelope": {"from": "ichiro.suzuki@example.co.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("ichiro.suzuki@example.co.jp", name), [addr("support@example.com")],
                              text_expect(text), ms),
    }


@fixture
def shift_jis():
    date, ms = when(2024, 3, 14, 3, 0, 12)
    rcv, _ = when(2024, 3, 13, 18, 0, 14, offset_hours=0)
    mid = "20240314030012.4F2A81C0.ORDER@example.co.jp"
    subject = "【受注通知】ご注文を承りました（受注番号：Ｓ２４０３１４００１２）"
    name = "受注管理システム"
    text = (
        "サポート窓口　御中\n"
        "\n"
        "下記のご注文を受け付けました。\n"
        "\n"
        "受注番号　　：Ｓ２４０３１４００１２\n"
        "受注日時　　：２０２４年３月１４日　３時００分\n"
        "お客様名　　：山田商事株式会社　様\n"
        "振込名義　　：ﾔﾏﾀﾞｼｮｳｼﾞ(ｶ\n"
        "商品　　　　：コピー用紙Ａ４（５００枚×１０冊）\n"
        "数量　　　　：２０箱\n"
        "\n"
        "本メールはシステムより自動送信されています。\n"
    )
    portable_jis(subject, name, text.replace("ﾔﾏﾀﾞｼｮｳｼﾞ(ｶ", ""))
    assert "ﾔﾏﾀﾞｼｮｳｼﾞ(ｶ".encode("shift_jis") == "ﾔﾏﾀﾞｼｮｳｼﾞ(ｶ".encode("cp932")
    from_value = "%s <order-system@example.co.jp>" % sjis_words(name)
    msg = part([
        ("Received", received("notify.example.co.jp", "192.0.2.58", "route1.mx.cloudflare.net", "4TwQ2m0Fv3z3P",
                              rcv, "support@example.com", with_="ESMTP")),
        ("Date", date),
        ("From", from_value),
        ("To", "support@example.com"),
        ("Subject", sjis_words(subject)),
        ("Message-ID", "<%s>" % mid),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=Shift_JIS"),
        ("Content-Transfer-Encoding", "base64"),
        ("X-Mailer", "OrderMaster Notifier 3.2"),
    ], body(text, "shift_jis", "base64", crlf=True))
    return {
        "description": "A Japanese business system's notification: text/plain; charset=Shift_JIS, base64 (CRLF line "
                       "breaks inside the base64, as canonical text should be), half-width katakana in the body; "
                       "Subject (several words) and From name as =?Shift_JIS?B?...?= words.",
        "encoders": "shift_jis codec, base64mime.body_encode, base64mime.header_encode Shift_JIS B words",
        "envelope": {"from": "bounce-order@example.co.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("order-system@example.co.jp", name), [addr("support@example.com")],
                              text_expect(text), ms),
    }


@fixture
def attachments():
    date, ms = when(2024, 3, 13, 16, 42, 7)
    rcv, _ = when(2024, 3, 13, 7, 42, 9, offset_hours=0)
    mid = "a9e3c1d7-2f4b-4c6d-8e0f-1a2b3c4d5e6f@example.co.jp"
    subject = "Re: お見積書送付のお願い（業務用プリンター）"
    name = "鈴木 一郎"
    pdf_name = "見積書.pdf"
    text = (
        "サポートご担当者様\n"
        "\n"
        "お世話になっております。鈴木製作所の鈴木です。\n"
        "\n"
        "社内稟議用に、先日いただいた見積書に押印したものと、\n"
        "設置場所の見取り図（ロゴ画像）を添付いたします。\n"
        "ご確認のほど、よろしくお願いいたします。\n"
        "\n"
        "-- \n"
        "鈴木 一郎\n"
    )
    boundary = "------------0aB1cD2eF3gH4iJ5kL6mN7oP"
    pdf_ct_name = str(words(pdf_name, "utf-8", label="UTF-8").encode())
    msg = part([
        ("Received", received("smtp.example.co.jp", "192.0.2.17", "route3.mx.cloudflare.net", "4TwG4p6Rb1z2D",
                              rcv, "support@example.com")),
        ("Message-ID", "<%s>" % mid),
        ("Date", date),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("Subject", words(subject, "utf-8", label="UTF-8")),
        ("Content-Language", "ja"),
        ("To", "support@example.com"),
        ("From", mailbox(name, "ichiro.suzuki@example.co.jp", "utf-8", label="UTF-8")),
        ("Content-Type", 'multipart/mixed; boundary="%s"' % boundary),
    ], parts=[
        part([("Content-Type", "text/plain; charset=UTF-8; format=flowed"), ("Content-Transfer-Encoding", "8bit")],
             body(text, "utf-8", "8bit")),
        part([
            ("Content-Type", ("application/pdf", {"name": pdf_ct_name})),
            ("Content-Disposition", ("attachment", {"filename": ("UTF-8", "", pdf_name)})),
            ("Content-Transfer-Encoding", "base64"),
        ], binary(PDF_QUOTE)),
        part([
            ("Content-Type", 'image/png; name="layout.png"'),
            ("Content-Disposition", 'attachment; filename="layout.png"'),
            ("Content-Transfer-Encoding", "base64"),
        ], binary(PNG_2X2)),
    ], preamble="This is a multi-part message in MIME format.", epilogue="")
    return {
        "description": "Thunderbird: multipart/mixed with a UTF-8 8bit text/plain (format=flowed, with a '-- ' "
                       "signature separator), a PDF whose Japanese filename is RFC 2231 "
                       "(filename*=UTF-8''%E8%A6%8B...) in Content-Disposition and an RFC 2047 word in the "
                       "Content-Type name parameter, and a 2x2 PNG.",
        "encoders": "utf-8 8bit, base64mime.body_encode, RFC 2231 via add_header, Header utf-8 B words",
        "envelope": {"from": "ichiro.suzuki@example.co.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("ichiro.suzuki@example.co.jp", name), [addr("support@example.com")],
                              text_expect(text), ms, attachments=[
                                  {"name": pdf_name, "content_type": "application/pdf", "size": len(PDF_QUOTE),
                                   "content_id": None},
                                  {"name": "layout.png", "content_type": "image/png", "size": len(PNG_2X2),
                                   "content_id": None},
                              ]),
    }


@fixture
def inline_image_related():
    date, ms = when(2024, 3, 15, 1, 30, 0, offset_hours=0)
    mid = "TYCPR01MB11234567D8E9F0A1B2C3D4E5F6A7B8C9@TYCPR01MB11234.jpnprd01.prod.outlook.com"
    subject = "新商品カタログのご案内（春季限定モデル）"
    name = "田中 健二"
    cid = "image001.png@01DA7681.2B3C4D50"
    text = (
        "サポートご担当者様\n"
        "\n"
        "いつもお世話になっております。株式会社田中物産の田中です。\n"
        "\n"
        "春季限定モデルの新商品カタログ画像をお送りします。\n"
        "\n"
        "[cid:%s]\n"
        "\n"
        "店頭掲示用の販促物が必要でしたらお知らせください。\n"
        "\n"
        "田中 健二\n" % cid
    )
    html = (
        "<html><head>\n"
        '<meta http-equiv="Content-Type" content="text/html; charset=iso-2022-jp">\n'
        "</head>\n"
        '<body lang="JA" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n'
        '<div class="WordSection1">\n'
        '<p class="MsoNormal">サポートご担当者様<o:p></o:p></p>\n'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
        '<p class="MsoNormal">いつもお世話になっております。株式会社田中物産の田中です。<o:p></o:p></p>\n'
        '<p class="MsoNormal">春季限定モデルの新商品カタログ画像をお送りします。<o:p></o:p></p>\n'
        '<p class="MsoNormal"><img width="2" height="2" style="width:.0208in;height:.0208in" '
        'id="Picture_x0020_1" src="cid:%s"><o:p></o:p></p>\n'
        '<p class="MsoNormal">店頭掲示用の販促物が必要でしたらお知らせください。<o:p></o:p></p>\n'
        '<p class="MsoNormal">田中 健二<o:p></o:p></p>\n'
        "</div>\n"
        "</body>\n"
        "</html>\n" % cid
    )
    portable_jis(subject, name, text, html)
    outer = "_004_TYCPR01MB11234567D8E9F0A1B2C3D4E5F6A7B8C9TYCPR01MB11234_"
    inner = "_000_TYCPR01MB11234567D8E9F0A1B2C3D4E5F6A7B8C9TYCPR01MB11234_"
    msg = part([
        ("Received", received("TYCPR01MB11234.jpnprd01.prod.outlook.com", "203.0.113.120",
                              "route2.mx.cloudflare.net", "4TwZ9k3Cs6z5M", date, "support@example.com")),
        ("From", mailbox(name, "kenji.tanaka@example.co.jp", "iso-2022-jp", label="iso-2022-jp")),
        ("To", '"support@example.com" <support@example.com>'),
        ("Subject", words(subject, "iso-2022-jp", label="iso-2022-jp")),
        ("Thread-Topic", words(subject, "iso-2022-jp", label="iso-2022-jp", name="Thread-Topic")),
        ("Thread-Index", "AdpzK0Xq1mB2c3d4e5f6g7h8i9j0kA=="),
        ("Date", date),
        ("Message-ID", "<%s>" % mid),
        ("Accept-Language", "ja-JP, en-US"),
        ("Content-Language", "ja-JP"),
        ("X-MS-Has-Attach", "yes"),
        ("Content-Type", 'multipart/related; boundary="%s"; type="multipart/alternative"' % outer),
        ("MIME-Version", "1.0"),
    ], parts=[
        part([("Content-Type", 'multipart/alternative; boundary="%s"' % inner)], parts=[
            part([("Content-Type", 'text/plain; charset="iso-2022-jp"'),
                  ("Content-Transfer-Encoding", "quoted-printable")], body(text, "iso2022_jp", "quoted-printable")),
            part([("Content-Type", 'text/html; charset="iso-2022-jp"'),
                  ("Content-Transfer-Encoding", "quoted-printable")], body(html, "iso2022_jp", "quoted-printable")),
        ], epilogue=""),
        part([
            ("Content-Type", 'image/png; name="image001.png"'),
            ("Content-Description", "image001.png"),
            ("Content-Disposition", 'inline; filename="image001.png"; size=%d; '
                                    'creation-date="Fri, 15 Mar 2024 01:29:58 GMT"; '
                                    'modification-date="Fri, 15 Mar 2024 01:30:00 GMT"' % len(PNG_2X2)),
            ("Content-ID", "<%s>" % cid),
            ("Content-Transfer-Encoding", "base64"),
        ], binary(PNG_2X2)),
    ], epilogue="")
    return {
        "description": "Outlook (Exchange Online, Japanese): multipart/related (type=multipart/alternative) holding "
                       "a multipart/alternative of ISO-2022-JP text/plain and text/html, both quoted-printable (the "
                       "ESC bytes become =1B), plus an inline PNG with Content-ID <image001.png@...> referenced by "
                       "cid: from the HTML. Encoded words spelled =?iso-2022-jp?B?...?=; the To display name is "
                       "the quoted address itself.",
        "encoders": "iso2022_jp codec, quoprimime.body_encode, base64mime.body_encode, Header iso-2022-jp B words",
        "envelope": {"from": "kenji.tanaka@example.co.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("kenji.tanaka@example.co.jp", name),
                              [addr("support@example.com", "support@example.com")], text_expect(text), ms,
                              html_contains="新商品カタログ画像をお送りします", attachments=[
                                  {"name": "image001.png", "content_type": "image/png", "size": len(PNG_2X2),
                                   "content_id": cid},
                              ]),
    }


THREAD_ROOT = "3f9a1c2e-5b6d-4e7f-8a9b-0c1d2e3f4a5b@example.jp"
THREAD_SECOND = "0106018e3a1b2c3d-4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8-000000@ap-northeast-1.amazonses.com"


@fixture
def thread_reply():
    date, ms = when(2024, 3, 13, 19, 48, 20)
    rcv, _ = when(2024, 3, 13, 10, 48, 22, offset_hours=0)
    mid = "b7e4d2a1-6c8f-4a3b-9d0e-2f1a3b4c5d6e@example.jp"
    subject = "Re: 配送日の変更について"
    name = "高橋 美咲"
    text = (
        "サポート窓口 ご担当者様\n"
        "\n"
        "ご回答ありがとうございます。\n"
        "それでは3月16日(土)の午前中でお願いいたします。\n"
        "CCの山田は当日受け取りを担当する者です。\n"
        "\n"
        "高橋\n"
        "\n"
        "On 2024/03/13 11:02, Example サポート窓口 wrote:\n"
        "> 高橋様\n"
        ">\n"
        "> お問い合わせありがとうございます。\n"
        "> 配送日は3月15日(金)以降でご指定いただけます。\n"
        "> ご希望の日付と時間帯をお知らせください。\n"
        ">\n"
        ">> 注文番号 100-2291 の配送日を変更したいのですが、可能でしょうか。\n"
    )
    msg = part([
        ("Received", received("mail.example.jp", "198.51.100.77", "route1.mx.cloudflare.net", "4TwV1d5Lm7z4Q",
                              rcv, "support@example.com")),
        ("Message-ID", "<%s>" % mid),
        ("Date", date),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("Subject", words(subject, "utf-8", label="UTF-8")),
        ("Content-Language", "ja"),
        ("To", mailbox("Example サポート窓口", "support@example.com", "utf-8", label="UTF-8", name="To")),
        ("Cc", mailboxes([("山田 花子", "hanako.yamada@example.co.jp", "utf-8"),
                          ("Jiro Kato", "jiro.kato@example.net", None)], label="UTF-8")),
        ("References", "<%s> <%s>" % (THREAD_ROOT, THREAD_SECOND)),
        ("From", mailbox(name, "misaki.takahashi@example.jp", "utf-8", label="UTF-8")),
        ("In-Reply-To", "<%s>" % THREAD_SECOND),
        ("Content-Type", "text/plain; charset=UTF-8; format=flowed"),
        ("Content-Transfer-Encoding", "8bit"),
    ], body(text, "utf-8", "8bit"))
    return {
        "description": "Thunderbird reply in a thread: 'Re:' subject (inside the UTF-8 word), In-Reply-To <second>, "
                       "References <root> <second> (folded onto two lines), '> ' and '>> ' quoted lines, To with a "
                       "mixed ASCII/Japanese name, Cc with a Japanese and an ASCII display name; UTF-8 8bit body.",
        "encoders": "utf-8 8bit, Header utf-8 B words",
        "envelope": {"from": "misaki.takahashi@example.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("misaki.takahashi@example.jp", name),
                              [addr("support@example.com", "Example サポート窓口")], text_expect(text), ms,
                              cc=[addr("hanako.yamada@example.co.jp", "山田 花子"),
                                  addr("jiro.kato@example.net", "Jiro Kato")],
                              in_reply_to=[THREAD_SECOND], references=[THREAD_ROOT, THREAD_SECOND]),
    }


@fixture
def in_reply_to_only():
    date, ms = when(2024, 3, 18, 9, 3, 55)
    rcv, _ = when(2024, 3, 18, 0, 3, 57, offset_hours=0)
    mid = "20240318090355.6D1E.A1B2C3D4@webmail.example.ac.jp"
    parent = "0106018e4c5d6e7f-8a9b0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d-000000@ap-northeast-1.amazonses.com"
    subject = "Re: お問い合わせの件（受付番号 58213）"
    text = (
        "ご返信ありがとうございます。\n"
        "教えていただいた手順で、パスワードの再設定ができました。\n"
        "助かりました。\n"
        "\n"
        "森 健太\n"
    )
    msg = part([
        ("Received", received("webmail.example.ac.jp", "192.0.2.201", "route2.mx.cloudflare.net",
                              "4TyC8r2Np0z6S", rcv, "support@example.com")),
        ("Date", date),
        ("From", "Kenta Mori <kenta.mori@example.ac.jp>"),
        ("To", "support@example.com"),
        ("Subject", words("お問い合わせの件（受付番号 58213）", "utf-8", prefix="Re:")),
        ("Message-Id", "<%s>" % mid),
        ("In-Reply-To", "<%s>" % parent),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "base64"),
        ("X-Mailer", "Active! mail"),
    ], body(text, "utf-8", "base64", crlf=True))
    return {
        "description": "A webmail reply with In-Reply-To but no References: conversation_id falls back to the "
                       "In-Reply-To id. Subject is plain 'Re: ' followed by a Python-spelled =?utf-8?b?...?= "
                       "word; UTF-8 base64 body.",
        "encoders": "utf-8, base64mime.body_encode, Header utf-8 b words",
        "envelope": {"from": "kenta.mori@example.ac.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("kenta.mori@example.ac.jp", "Kenta Mori"),
                              [addr("support@example.com")], text_expect(text), ms, in_reply_to=[parent]),
    }


@fixture
def forwarded_gmail():
    date, ms = when(2024, 3, 16, 22, 14, 9)
    mid = "01000e8f1a2b3c4d-5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9-000000@shop.example.net"
    subject = "【Example Shop】ご注文の発送が完了しました（注文番号 ES-778812）"
    html = (
        "<!DOCTYPE html>\n"
        '<html lang="ja"><head><meta charset="utf-8"><title>発送完了のお知らせ</title></head>\n'
        '<body style="margin:0;padding:0;font-family:sans-serif">\n'
        '<table width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">\n'
        '<table width="600" cellpadding="16"><tr><td>\n'
        "<h1 style=\"font-size:20px\">ご注文の商品を発送しました</h1>\n"
        "<p>山田 太郎 様</p>\n"
        "<p>Example Shop をご利用いただきありがとうございます。<br>\n"
        "ご注文（注文番号 ES-778812）の商品を本日発送いたしました。</p>\n"
        "<p>お問い合わせ伝票番号：<strong>4821-0093-1176</strong></p>\n"
        '<p><a href="https://shop.example.net/orders/ES-778812">注文履歴を見る</a></p>\n'
        "</td></tr></table>\n"
        "</td></tr></table>\n"
        "</body></html>\n"
    )
    fwd_for = "yamada.forwarder@gmail.com"
    r1, _ = when(2024, 3, 16, 13, 14, 12, offset_hours=0)
    r2, _ = when(2024, 3, 16, 6, 14, 11, offset_hours=-7)
    r3, _ = when(2024, 3, 16, 13, 14, 10, offset_hours=0)
    msg = part([
        ("Received", received("mail-sor-f69.google.com", "203.0.113.69", "route3.mx.cloudflare.net",
                              "4TxK6f8Wj2z8R", r1, "support@example.com")),
        ("X-Forwarded-Encrypted", "i=2; AJvYcCXexampleexampleexampleexample"),
        ("X-Forwarded-To", "support@example.com"),
        ("X-Forwarded-For", "%s support@example.com" % fwd_for),
        ("Delivered-To", fwd_for),
        ("Received", "by 2002:a05:7300:5c0b:b0:10a:1b2c:3d4e with SMTP id u11csp1234567dyf; " + r2),
        ("Received", received("a8-33.smtp-out.shop.example.net", "198.51.100.33", "mx.google.com",
                              "d9443c01a7336-1dd6a2f3b4csi1234567pla.123.2024.03.16.06.14.10", r3, fwd_for)),
        ("Date", date),
        ("From", "Example Shop <no-reply@shop.example.net>"),
        ("To", fwd_for),
        ("Message-ID", "<%s>" % mid),
        ("Subject", words(subject, "utf-8", label="UTF-8")),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/html; charset=UTF-8"),
        ("Content-Transfer-Encoding", "quoted-printable"),
        ("Feedback-ID", "1.ap-northeast-1.exampleFeedbackId=:AmazonSES"),
    ], body(html, "utf-8", "quoted-printable"))
    return {
        "description": "Delivered by Gmail auto-forwarding: Gmail's X-Forwarded-To/X-Forwarded-For/Delivered-To and "
                       "Received lines on top of the shop's untouched original headers. The envelope MAIL FROM is "
                       "Gmail's +caf_ address and the To header is the Gmail user, not the routed address (match "
                       "the account by envelope RCPT TO). The message is HTML only (text/html UTF-8 "
                       "quoted-printable, no text/plain), so text is derived from HTML.",
        "encoders": "utf-8, quoprimime.body_encode, Header utf-8 B words",
        "envelope": {"from": "yamada.forwarder+caf_=support=example.com@gmail.com", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("no-reply@shop.example.net", "Example Shop"), [addr(fwd_for)],
                              None, ms, html_contains="ご注文の商品を発送しました"),
    }


@fixture
def malformed():
    date, ms = when(2024, 3, 19, 8, 15, 0)
    mid = "broken.20240319081500.0042@legacy.example.net"
    subject = "Nightly export report"
    csv = "id,name,amount\n1,Taro,1000\n2,Jiro,2000\n".encode("ascii")
    lines = binary(csv).split("\n")[0]
    # Valid base64 of the CSV with characters that are not in the base64 alphabet pushed in.
    bad_b64 = lines[:12] + "*" + lines[12:24] + "!!" + lines[24:] + "\n%%%~~\n"
    boundary = "=_legacy_0042"
    raw = (
        b"Received: from legacy.example.net (legacy.example.net [192.0.2.44])\r\n"
        b"\tby route2.mx.cloudflare.net with SMTP id 4TyR3s9Ph1z0T; "
        + when(2024, 3, 18, 23, 15, 2, offset_hours=0)[0].encode() + b"\r\n"
        b"Message-ID: <" + mid.encode() + b">\r\n"
        b"Date: " + date.encode() + b"\r\n"
        b"From: \"Legacy Notifier\" <notifier@legacy.example.net>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        # Raw 8-bit bytes in a header: Latin-1 "o with circumflex" and Shift_JIS for a company name.
        b"Organization: Yamada Sh\xf4ji / " + "山田商事株式会社".encode("shift_jis") + b"\r\n"
        b"X-Mailer: LegacyMailer/0.9\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"" + boundary.encode() + b"\"\r\n"
        b"\r\n"
        b"This is a MIME message.\r\n"
        b"--" + boundary.encode() + b"\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"Export finished with 3 warnings, see warnings.txt.\r\n"
        b"Caf\xe9 / " + "日本".encode("shift_jis") + b" / " + "日本".encode("utf-8") + b"\r\n"
        b"\r\n"
        b"--" + boundary.encode() + b"\r\n"
        b"Content-Type: text/plain; charset=\"x-unknown-charset\"\r\n"
        b"Content-Disposition: attachment; filename=\"warnings.txt\"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"This part header line has no colon\r\n"
        b"\r\n"
        b"W001 \xe9\xe8\xea row 17\r\n"
        b"W002 \x82\xa0\x82\xa2 row 23\r\n"
        b"\r\n"
        b"--" + boundary.encode() + b"\r\n"
        b"Content-Type: application/octet-stream; name=\"export.csv\"\r\n"
        b"Content-Disposition: attachment; filename=\"export.csv\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        + bad_b64.replace("\n", "\r\n").encode("ascii")
        + b"--" + boundary.encode() + b"\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Truncated footer =ZZ and a dangling soft break=\r\n"
    )
    return {
        "description": "Broken but recoverable (a parser must not fail on it): (1) an 8-bit header "
                       "(Organization: Latin-1 0xF4 and raw Shift_JIS bytes, no encoded words); (2) a header line without a "
                       "colon at the end of the warnings.txt part's header block (Python ends that header block "
                       "there and the line becomes the part's first body line); (3) the body text/plain declares "
                       "charset=us-ascii but carries 8-bit bytes (Latin-1, Shift_JIS and UTF-8 mixed) with "
                       "Content-Transfer-Encoding 8bit; (4) a text/plain attachment warnings.txt with "
                       "charset=\"x-unknown-charset\" and 8-bit bytes; (5) a base64 attachment export.csv with '*', "
                       "'!', '%' and '~' outside the base64 alphabet; (6) a quoted-printable part with an invalid "
                       "escape '=ZZ' and a soft line break on the last line; (7) the closing boundary "
                       "--=_legacy_0042-- is missing. Message-ID, Date, From, To and the ASCII Subject are intact. "
                       "text and attachments are null = not asserted. Both the unknown charset and the colon-less "
                       "line sit in an attachment part, not in the inline body or the top-level header block, "
                       "because Miniflare's local email endpoint (postal-mime 2.4.3) answers 400 for an unknown "
                       "charset in an inline text part and 500 ('Invalid header name') for a colon-less top-level "
                       "header line.",
        "encoders": "assembled by hand from bytes; the CSV's base64 from base64mime.body_encode, then damaged",
        "envelope": {"from": "notifier@legacy.example.net", "to": "support@example.com"},
        "raw": raw,
        "email": {
            "message_id": mid,
            "subject": subject,
            "from": addr("notifier@legacy.example.net"),
            "to": [addr("support@example.com")],
            "conversation_id": mid,
            "text": None,
            "attachments": None,
            "date_ms": ms,
        },
    }


@fixture
def no_message_id():
    date, ms = when(2024, 3, 17, 21, 40, 18)
    rcv, _ = when(2024, 3, 17, 12, 40, 19, offset_hours=0)
    subject = "【お問い合わせフォーム】商品の在庫について"
    name = "Example お問い合わせフォーム"
    text = (
        "お問い合わせフォームから以下の内容が送信されました。\n"
        "\n"
        "お名前：伊藤 さくら\n"
        "メールアドレス：sakura.ito@example.jp\n"
        "お問い合わせ種別：商品について\n"
        "お問い合わせ内容：\n"
        "ステンレスボトル（500ml）の水色は再入荷の予定がありますか。\n"
        "入荷したら2本購入したいです。\n"
        "\n"
        "送信日時：2024-03-17 21:40:18\n"
        "送信元IP：192.0.2.150\n"
    )
    msg = part([
        ("Received", received("web01.example.org", "192.0.2.80", "route1.mx.cloudflare.net", "4Ty5Bq7Gk9z1V",
                              rcv, "support@example.com", with_="ESMTP")),
        ("To", "support@example.com"),
        ("Subject", words(subject, "utf-8", label="UTF-8")),
        ("From", mailbox(name, "noreply@example.org", "utf-8", label="UTF-8")),
        ("Reply-To", "sakura.ito@example.jp"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=UTF-8"),
        ("Content-Transfer-Encoding", "BASE64"),
        ("X-Mailer", "PHP/8.1.2"),
        ("Date", date),
    ], body(text, "utf-8", "base64"))
    return {
        "description": "A PHP contact form (mb_send_mail style) that talks SMTP directly and sends no Message-ID: "
                       "UTF-8 body in base64 with bare LF line breaks and the transfer encoding spelled 'BASE64'; "
                       "has Reply-To. The gateway must de-duplicate on a content hash. message_id null; "
                       "conversation_id null = not asserted.",
        "encoders": "utf-8, base64mime.body_encode (LF line breaks), Header utf-8 B words",
        "envelope": {"from": "www-data@web01.example.org", "to": "support@example.com"},
        "message": msg,
        "email": dict(email_expect(None, subject, addr("noreply@example.org", name), [addr("support@example.com")],
                                   text_expect(text), ms), conversation_id=None),
    }


@fixture
def unknown_recipient():
    date, ms = when(2024, 3, 18, 11, 0, 0, offset_hours=0)
    rcv, _ = when(2024, 3, 18, 11, 0, 2, offset_hours=0)
    mid = "20240318110000.1A2B3C.partners@example.org"
    text = (
        "Hi,\n"
        "\n"
        "We are expanding our reseller programme in Japan and would like to\n"
        "introduce our catalogue. Please let me know who is the right contact.\n"
        "\n"
        "Best regards,\n"
        "Emma Wilson\n"
        "Partnerships, Example Org\n"
    )
    msg = part([
        ("Received", received("mta.example.org", "198.51.100.140", "route3.mx.cloudflare.net", "4TyF0h4Dn3z2W",
                              rcv, "nobody@example.com")),
        ("Message-ID", "<%s>" % mid),
        ("Date", date),
        ("From", "Emma Wilson <emma.wilson@example.org>"),
        ("To", "nobody@example.com"),
        ("Subject", "Reseller programme in Japan"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="us-ascii"'),
        ("Content-Transfer-Encoding", "7bit"),
    ], body(text, "ascii", "7bit"))
    return {
        "description": "A valid message whose envelope RCPT TO (nobody@example.com) is not one of the account's "
                       "ADDRESS entries: rejected as unknown_recipient.",
        "encoders": "7bit us-ascii",
        "envelope": {"from": "emma.wilson@example.org", "to": "nobody@example.com"},
        "message": msg,
        "reason": "unknown_recipient",
        "email": None,
        "check": email_expect(mid, "Reseller programme in Japan", addr("emma.wilson@example.org", "Emma Wilson"),
                              [addr("nobody@example.com")], text_expect(text), ms),
    }


@fixture
def second_address():
    date, ms = when(2024, 3, 18, 12, 34, 56)
    rcv, _ = when(2024, 3, 18, 3, 34, 58, offset_hours=0)
    mid = "7A1B2C3D-4E5F-4061-8273-94A5B6C7D8E9@example.ne.jp"
    subject = "資料請求"
    name = "中村 翔太"
    text = (
        "はじめまして。中村と申します。\n"
        "法人向けプランの資料を送っていただけますか。\n"
        "社員数は30名ほどです。\n"
        "\n"
        "iPhoneから送信\n"
    )
    msg = part([
        ("Received", received("mail.example.ne.jp", "198.51.100.9", "route1.mx.cloudflare.net", "4TyJ5k1Tz8z4X",
                              rcv, "INFO@Example.CO.JP")),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "base64"),
        ("From", mailbox(name, "shota.nakamura@example.ne.jp", "utf-8", label="UTF-8")),
        ("Mime-Version", "1.0 (1.0)"),
        ("Date", date),
        ("Subject", words(subject, "utf-8", label="UTF-8")),
        ("Message-Id", "<%s>" % mid),
        ("To", "info@example.co.jp"),
        ("X-Mailer", "iPhone Mail (21D61)"),
    ], body(text, "utf-8", "base64", crlf=True))
    return {
        "description": "iPhone Mail to the account's second address; the envelope RCPT TO is spelled "
                       "INFO@Example.CO.JP and must match the configured info@example.co.jp case-insensitively. "
                       "UTF-8 base64 body with CRLF, short single-word subject.",
        "encoders": "utf-8, base64mime.body_encode, Header utf-8 B words",
        "envelope": {"from": "shota.nakamura@example.ne.jp", "to": "INFO@Example.CO.JP"},
        "message": msg,
        "email": email_expect(mid, subject, addr("shota.nakamura@example.ne.jp", name),
                              [addr("info@example.co.jp")], text_expect(text), ms),
    }


# ------------------------------------------------------------------------------------------------- checking


def one_line(text):
    """What a single-line field must become (docs/channels/email.md): every control character except TAB, and
    U+2028/U+2029, one space each; CRLF counts as one."""
    text = text.replace("\r\n", "\r")
    return "".join(" " if (unicodedata.category(c) == "Cc" and c != "\t") or c in "\u2028\u2029" else c
                   for c in text)


def body_lines(text):
    """What a body must become: CRLF and lone CR become LF; controls other than LF and TAB dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if unicodedata.category(c) != "Cc" or c in "\n\t")


@fixture
def header_injection():
    """Encoded words that decode to CR LF (and other controls), written with Python's own RFC 2047 encoders:
    `email.header.Header` would refuse them (it splits at line breaks), so the words come straight from
    `quoprimime.header_encode` / `base64mime.header_encode` over the UTF-8 bytes."""
    date, ms = when(2024, 3, 19, 10, 20, 30)
    rcv, _ = when(2024, 3, 19, 1, 20, 33, offset_hours=0)
    mid = "injection-20240319-0001@example.jp"
    subject = "Invoice 2024-03\r\nBcc: everyone@example.com"
    from_name = "山田 太郎\r\n[To:1] 承認済み"
    to_name = "Support\nDesk"
    cc_name = "Sato\u2028Hanako\x1b[31m"
    file_name = "invoice\r\nX-Approved: yes.pdf"
    text = "Please find the invoice attached.\r\nTotal: 12,000 JPY\rPaid\x00 \x1b[2Jin full\r\n"
    q = lambda t: email.quoprimime.header_encode(t.encode("utf-8"), charset="utf-8")
    b = lambda t: email.base64mime.header_encode(t.encode("utf-8"), charset="utf-8")
    boundary = "----=_Part_4711_1234567890.1710811230000"
    msg = part([
        ("Received", received("mail.example.jp", "192.0.2.44", "route2.mx.cloudflare.net", "4TzA1b2Cd3z4E",
                              rcv, "support@example.com")),
        ("From", "%s <taro.yamada@example.jp>" % b(from_name)),
        ("To", "%s <support@example.com>" % q(to_name)),
        ("Cc", "%s <hanako.sato@example.jp>" % b(cc_name)),
        ("Subject", q(subject)),
        ("Message-ID", "<%s>" % mid),
        ("Date", date),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed; boundary="%s"' % boundary),
    ], parts=[
        part([("Content-Type", "text/plain; charset=UTF-8"), ("Content-Transfer-Encoding", "base64")],
             binary(text.encode("utf-8"))),
        part([
            ("Content-Type", "application/pdf"),
            ("Content-Disposition", ("attachment", {"filename": ("UTF-8", "", file_name)})),
            ("Content-Transfer-Encoding", "base64"),
        ], binary(PDF_QUOTE)),
    ], preamble="", epilogue="")
    expect = email_expect(mid, one_line(subject), addr("taro.yamada@example.jp", one_line(from_name)),
                          [addr("support@example.com", one_line(to_name))], text_expect(body_lines(text)), ms,
                          cc=[addr("hanako.sato@example.jp", one_line(cc_name))], attachments=[
                              {"name": one_line(file_name), "content_type": "application/pdf",
                               "size": len(PDF_QUOTE), "content_id": None}])
    return {
        "description": "Encoded words whose decoded text holds CR LF, LF, U+2028 and ESC (Subject Q-encoded, From "
                       "and Cc names B-encoded, To name Q-encoded), an RFC 2231 filename with %0D%0A, and a "
                       "base64 UTF-8 body with CRLF, a lone CR, NUL and ESC: single-line fields get a space for each "
                       "control, the body keeps its lines as LF and drops the other controls.",
        "encoders": "quoprimime.header_encode / base64mime.header_encode over UTF-8, base64mime.body_encode, "
                    "RFC 2231 via add_header",
        "envelope": {"from": "taro.yamada@example.jp", "to": "support@example.com"},
        "message": msg,
        "email": expect,
        "decoded": {"subject": subject, "from": from_name, "to": to_name, "cc": cc_name, "file": file_name,
                    "text": text},
    }


def check_header_injection(raw, exp, decoded):
    """Python's modern parser refuses CR/LF in address parts (ValueError), so decode with compat32 and
    `email.header`, and check that the words really carry the controls and the JSON holds them neutralised."""
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    word = lambda v: str(email.header.make_header(email.header.decode_header(v)))
    assert word(m["subject"]) == decoded["subject"] and "\r\n" in decoded["subject"]
    for header, key in (("from", "from"), ("to", "to"), ("cc", "cc")):
        ((name, address),) = email.utils.getaddresses([m[header]])
        assert word(name) == decoded[key], (header, word(name))
    attachment = [p for p in m.walk() if p.get_content_type() == "application/pdf"][0]
    assert attachment.get_filename() == decoded["file"]
    plain = [p for p in m.walk() if p.get_content_type() == "text/plain"][0]
    assert plain.get_payload(decode=True).decode("utf-8") == decoded["text"]
    assert exp["subject"] == one_line(decoded["subject"]) and "\n" not in exp["subject"]
    assert exp["from"]["name"] == "山田 太郎 [To:1] 承認済み"
    assert exp["text"] == "Please find the invoice attached.\nTotal: 12,000 JPY\nPaid [2Jin full"
    assert ids(m["message-id"]) == [exp["message_id"]]
    assert int(email.utils.parsedate_to_datetime(m["date"]).timestamp()) * 1000 == exp["date_ms"]


def ids(value):
    return re.findall(r"<([^<>]+)>", str(value)) if value is not None else []


def check(name, raw, exp):
    """Parse the bytes back with Python's modern parser and compare with what the JSON says."""
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert raw.count(b"\n") == raw.count(b"\r\n"), name + ": bare LF"
    for p in m.walk():
        assert not p.defects, (name, p.defects)
    mid = ids(m["message-id"])
    assert (mid[0] if mid else None) == exp["message_id"], (name, mid)
    assert str(m["subject"]) == exp["subject"], (name, str(m["subject"]))

    def addrs(header):
        if m[header] is None:
            return []
        return [addr(a.addr_spec, a.display_name or None) for a in m[header].addresses]

    assert addrs("from") == [exp["from"]], (name, addrs("from"))
    assert addrs("to") == exp["to"], (name, addrs("to"))
    assert addrs("cc") == exp["cc"], (name, addrs("cc"))
    assert ids(m["in-reply-to"]) == exp["in_reply_to"], name
    assert ids(m["references"]) == exp["references"], name
    if exp["conversation_id"] is not None:
        assert exp["conversation_id"] == conversation(mid[0], ids(m["in-reply-to"]), ids(m["references"])), name
    plain = m.get_body(("plain",))
    if exp["text"] is None:
        assert plain is None, name
    else:
        assert text_expect(plain.get_content()) == exp["text"], (name, plain.get_content())
    html = m.get_body(("html",))
    if exp["html_contains"] is None:
        assert html is None, name
    else:
        assert exp["html_contains"] in html.get_content(), name
    got = []
    for a in m.iter_attachments():
        cid = ids(a["content-id"])
        got.append({"name": a.get_filename(), "content_type": a.get_content_type(), "size": len(a.get_content()),
                    "content_id": cid[0] if cid else None})
    assert got == exp["attachments"], (name, got)
    assert int(m["date"].datetime.timestamp()) * 1000 == exp["date_ms"], name


def check_malformed(raw, exp):
    m = email.message_from_bytes(raw, policy=email.policy.default)  # must not raise
    assert ids(m["message-id"]) == [exp["message_id"]]
    assert str(m["subject"]) == exp["subject"]
    assert m["from"].addresses[0].addr_spec == exp["from"]["address"]
    assert int(m["date"].datetime.timestamp()) * 1000 == exp["date_ms"]
    kinds = {type(d).__name__ for p in m.walk() for d in p.defects}
    assert "MissingHeaderBodySeparatorDefect" in kinds, kinds
    assert "CloseBoundaryNotFoundDefect" in kinds, kinds
    parts = list(m.walk())
    assert [p.get_content_type() for p in parts] == [
        "multipart/mixed", "text/plain", "text/plain", "application/octet-stream", "text/plain"], parts
    # Python recovers what it can: base64 decoding drops the foreign characters, QP keeps '=ZZ' as is, and the
    # unknown charset makes get_content() raise LookupError (a parser should fall back instead).
    assert parts[1].get_content().startswith("Export finished")  # us-ascii with 8-bit bytes: U+FFFD
    assert parts[2].get_filename() == "warnings.txt"
    assert parts[3].get_payload(decode=True).startswith(b"id,name,amount\n1,Taro")
    assert parts[4].get_payload(decode=True) == b"Truncated footer =ZZ and a dangling soft break"
    try:
        parts[2].get_content()
        raise AssertionError("expected LookupError for x-unknown-charset")
    except LookupError:
        pass


# ------------------------------------------------ the other charsets the Worker decodes with TextDecoder
#
# Besides ISO-2022-JP and Shift_JIS above: EUC-JP, GB2312, Big5 and EUC-KR bodies and words, an RFC 2231
# ISO-2022-JP filename and an HTML-only Shift_JIS message. The Worker decodes these with the runtime's
# TextDecoder (natively: encoding_rs); the expectations come from Python's codecs.


def codec_words(text, codec, label, letter="B", limit=60):
    """RFC 2047 words for `text` in any codec, cut at character boundaries. Python's Header converts some CJK
    charsets to another one for output (EUC-JP and Shift_JIS to ISO-2022-JP), so each word is encoded with
    base64mime.header_encode / quoprimime.header_encode over the codec's bytes, as `sjis_words` does."""
    encode = email.base64mime.header_encode if letter == "B" else email.quoprimime.header_encode
    out, chunk = [], ""
    for ch in text:
        trial = chunk + ch
        if chunk and len(encode(trial.encode(codec), label)) > limit:
            out.append(chunk)
            chunk = ch
        else:
            chunk = trial
    out.append(chunk)
    words_ = [encode(c.encode(codec), label) for c in out]
    return " ".join(w.replace("?%s?" % letter.lower(), "?%s?" % letter, 1) for w in words_)


def round_trips(codec, *texts):
    for t in texts:
        assert t.encode(codec).decode(codec) == t, (codec, t)


@fixture
def euc_jp():
    date, ms = when(2024, 3, 21, 9, 15, 0)
    rcv, _ = when(2024, 3, 21, 0, 15, 2, offset_hours=0)
    mid = "20240321091500.A1B2C3@mail.example.ne.jp"
    subject = "【資料請求】製品カタログ送付のお願い"
    name = "山田 花子"
    text = (
        "ご担当者様\n"
        "\n"
        "製品カタログを一部、下記まで郵送いただけますでしょうか。\n"
        "\n"
        "〒５３００００１　大阪府大阪市北区梅田１丁目\n"
        "株式会社ヤマダ商会　総務課　山田花子\n"
        "\n"
        "以上、よろしくお願いいたします。\n"
    )
    portable_jis(subject, name, text)
    round_trips("euc_jp", subject, name, text)
    msg = part([
        ("Received", received("mail.example.ne.jp", "192.0.2.91", "route2.mx.cloudflare.net", "4TxA1b2Cd3z4E",
                              rcv, "support@example.com", with_="ESMTP")),
        ("Message-ID", "<%s>" % mid),
        ("Date", date),
        ("From", "%s <hanako.yamada@example.ne.jp>" % codec_words(name, "euc_jp", "EUC-JP", letter="Q")),
        ("To", "support@example.com"),
        ("Subject", codec_words(subject, "euc_jp", "EUC-JP")),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=EUC-JP"),
        ("Content-Transfer-Encoding", "quoted-printable"),
        ("X-Mailer", "Mew version 6.8 on Emacs 29.1"),
    ], body(text, "euc_jp", "quoted-printable"))
    return {
        "description": "A Unix mailer in EUC-JP: text/plain; charset=EUC-JP, quoted-printable; Subject as "
                       "=?EUC-JP?B?...?= words, the From name as =?EUC-JP?Q?...?= words.",
        "encoders": "euc_jp codec, quoprimime.body_encode, base64mime/quoprimime.header_encode EUC-JP words",
        "envelope": {"from": "hanako.yamada@example.ne.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("hanako.yamada@example.ne.jp", name), [addr("support@example.com")],
                              text_expect(text), ms),
    }


@fixture
def gb2312_alternative():
    date, ms = when(2024, 3, 22, 10, 30, 0, offset_hours=8)
    rcv, _ = when(2024, 3, 22, 2, 30, 3, offset_hours=0)
    mid = "gb2312-20240322-103000@example.cn"
    subject = "询价：工业打印机三台"
    name = "张伟"
    text = "您好，\n\n我们想询问贵公司工业打印机的价格，共三台。\n请尽快回复，谢谢！\n\n张伟\n上海示例贸易有限公司\n"
    html = "<html><body><p>您好，</p><p>我们想询问贵公司<b>工业打印机</b>的价格，共三台。</p></body></html>"
    round_trips("gb2312", subject, name, text, html)
    boundary = "----=_NextPart_000_0012_01DA7B2C.3D4E5F60"
    msg = part([
        ("Received", received("smtp.example.cn", "198.51.100.88", "route1.mx.cloudflare.net", "4TxC5d6Ef7z8G",
                              rcv, "support@example.com")),
        ("From", "%s <zhang.wei@example.cn>" % codec_words(name, "gb2312", "gb2312")),
        ("To", "support@example.com"),
        ("Subject", codec_words(subject, "gb2312", "gb2312")),
        ("Date", date),
        ("Message-ID", "<%s>" % mid),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/alternative; boundary="%s"' % boundary),
        ("X-Mailer", "Foxmail 7.2.25.228[cn]"),
    ], parts=[
        part([("Content-Type", 'text/plain; charset="gb2312"'), ("Content-Transfer-Encoding", "base64")],
             body(text, "gb2312", "base64", crlf=True)),
        part([("Content-Type", 'text/html; charset="gb2312"'), ("Content-Transfer-Encoding", "base64")],
             body(html, "gb2312", "base64", crlf=True)),
    ], preamble="This is a multi-part message in MIME format.", epilogue="")
    return {
        "description": "Foxmail (simplified Chinese): multipart/alternative, text/plain and text/html both "
                       "charset=gb2312 in base64; Subject and From name as =?gb2312?B?...?= words (mail-parser reads "
                       "the gb2312 label as gb18030, as browsers do).",
        "encoders": "gb2312 codec, base64mime.body_encode, base64mime.header_encode gb2312 words",
        "envelope": {"from": "zhang.wei@example.cn", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("zhang.wei@example.cn", name), [addr("support@example.com")],
                              text_expect(text), ms, html_contains="<b>工业打印机</b>"),
    }


@fixture
def big5_attachment():
    date, ms = when(2024, 3, 25, 15, 45, 10, offset_hours=8)
    rcv, _ = when(2024, 3, 25, 7, 45, 12, offset_hours=0)
    mid = "big5-20240325-154510@example.com.tw"
    subject = "報價單：商用印表機"
    name = "陳大文"
    pdf_name = "報價單.pdf"
    text = "您好：\n\n附件為本公司報價單，敬請查收。\n\n陳大文 敬上\n"
    round_trips("big5", subject, name, pdf_name, text)
    boundary = "----=_NextPart_000_0034_01DA7E9A.BC1D2E30"
    pdf_word = codec_words(pdf_name, "big5", "big5")
    msg = part([
        ("Received", received("mail.example.com.tw", "203.0.113.42", "route3.mx.cloudflare.net", "4TxE9f0Gh1z2J",
                              rcv, "support@example.com")),
        ("From", "%s <david.chen@example.com.tw>" % codec_words(name, "big5", "big5")),
        ("To", "support@example.com"),
        ("Subject", codec_words(subject, "big5", "big5")),
        ("Date", date),
        ("Message-ID", "<%s>" % mid),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed; boundary="%s"' % boundary),
        ("X-Mailer", "Microsoft Outlook 16.0"),
    ], parts=[
        part([("Content-Type", 'text/plain; charset="big5"'), ("Content-Transfer-Encoding", "8bit")],
             body(text, "big5", "8bit", crlf=True)),
        part([
            ("Content-Type", 'application/pdf; name="%s"' % pdf_word),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Disposition", 'attachment; filename="%s"' % pdf_word),
        ], binary(PDF_QUOTE)),
    ], preamble="This is a multi-part message in MIME format.", epilogue="")
    return {
        "description": "Outlook (traditional Chinese): multipart/mixed, text/plain; charset=big5 in 8bit, and a "
                       "PDF whose name and filename parameters are =?big5?B?...?= words in quotes; Subject and From "
                       "name as =?big5?B?...?= words.",
        "encoders": "big5 codec, 8bit, base64mime.header_encode big5 words",
        "envelope": {"from": "david.chen@example.com.tw", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("david.chen@example.com.tw", name), [addr("support@example.com")],
                              text_expect(text), ms, attachments=[
                                  {"name": pdf_name, "content_type": "application/pdf", "size": len(PDF_QUOTE),
                                   "content_id": None},
                              ]),
    }


@fixture
def euc_kr():
    date, ms = when(2024, 3, 26, 11, 0, 0)
    rcv, _ = when(2024, 3, 26, 2, 0, 2, offset_hours=0)
    mid = "euckr-20240326-110000@example.co.kr"
    subject = "견적 요청: 업무용 프린터 3대"
    name = "김철수"
    text = "안녕하세요.\n\n업무용 프린터 3대의 견적을 요청드립니다.\n빠른 회신 부탁드립니다.\n\n김철수 드림\n"
    round_trips("euc_kr", subject, name, text)
    msg = part([
        ("Received", received("smtp.example.co.kr", "198.51.100.120", "route2.mx.cloudflare.net", "4TxG3h4Jk5z6L",
                              rcv, "support@example.com")),
        ("From", "%s <cs.kim@example.co.kr>" % codec_words(name, "euc_kr", "ks_c_5601-1987")),
        ("To", "support@example.com"),
        ("Subject", codec_words(subject, "euc_kr", "ks_c_5601-1987")),
        ("Date", date),
        ("Message-ID", "<%s>" % mid),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="ks_c_5601-1987"'),
        ("Content-Transfer-Encoding", "base64"),
    ], body(text, "euc_kr", "base64", crlf=True))
    return {
        "description": "Outlook (Korean): text/plain; charset=ks_c_5601-1987 (Outlook's label for EUC-KR/UHC) in "
                       "base64; Subject and From name as =?ks_c_5601-1987?B?...?= words.",
        "encoders": "euc_kr codec, base64mime.body_encode, base64mime.header_encode ks_c_5601-1987 words",
        "envelope": {"from": "cs.kim@example.co.kr", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("cs.kim@example.co.kr", name), [addr("support@example.com")],
                              text_expect(text), ms),
    }


@fixture
def iso2022jp_rfc2231():
    date, ms = when(2024, 3, 27, 13, 20, 45)
    rcv, _ = when(2024, 3, 27, 4, 20, 47, offset_hours=0)
    mid = "rfc2231-20240327-132045@example.co.jp"
    subject = "発注書を送付します"
    name = "佐藤 次郎"
    pdf_name = "発注書.pdf"
    text = "お世話になっております。\n発注書を添付いたします。\nご確認ください。\n\n佐藤\n"
    portable_jis(subject, name, pdf_name, text)
    boundary = "------------9zY8xW7vU6tS5rQ4pO3nM2lK"
    msg = part([
        ("Received", received("smtp.example.co.jp", "192.0.2.33", "route1.mx.cloudflare.net", "4TxJ7k8Lm9z0N",
                              rcv, "support@example.com")),
        ("Message-ID", "<%s>" % mid),
        ("Date", date),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("To", "support@example.com"),
        ("From", mailbox(name, "jiro.sato@example.co.jp", "iso-2022-jp", label="ISO-2022-JP")),
        ("Subject", words(subject, "iso-2022-jp", label="ISO-2022-JP")),
        ("Content-Type", 'multipart/mixed; boundary="%s"' % boundary),
    ], parts=[
        part([("Content-Type", "text/plain; charset=ISO-2022-JP"), ("Content-Transfer-Encoding", "7bit")],
             body(text, "iso2022_jp", "7bit")),
        part([
            ("Content-Type", "application/pdf"),
            ("Content-Disposition", ("attachment", {"filename": ("ISO-2022-JP", "ja", pdf_name)})),
            ("Content-Transfer-Encoding", "base64"),
        ], binary(PDF_QUOTE)),
    ], preamble="This is a multi-part message in MIME format.", epilogue="")
    return {
        "description": "Thunderbird with RFC 2231 parameters in the message's charset: a PDF whose Content-Disposition "
                       "filename is filename*=ISO-2022-JP'ja'%1B%24B... (one segment); ISO-2022-JP text and words.",
        "encoders": "iso2022_jp codec, 7bit, RFC 2231 via add_header, Header iso-2022-jp B words",
        "envelope": {"from": "jiro.sato@example.co.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("jiro.sato@example.co.jp", name), [addr("support@example.com")],
                              text_expect(text), ms, attachments=[
                                  {"name": pdf_name, "content_type": "application/pdf", "size": len(PDF_QUOTE),
                                   "content_id": None},
                              ]),
    }


@fixture
def shift_jis_html_only():
    date, ms = when(2024, 3, 28, 8, 0, 0)
    rcv, _ = when(2024, 3, 27, 23, 0, 3, offset_hours=0)
    mid = "html-sjis-20240328-080000@mail.example.jp"
    subject = "【お問い合わせ】配送状況について"
    name = "お問い合わせフォーム"
    html = ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\"></head>"
            "<body><p>お名前：<b>高橋 三郎</b></p><p>お問い合わせ内容：注文した商品がまだ届きません。</p>"
            "</body></html>")
    portable_jis(subject, name, html)
    msg = part([
        ("Received", received("form.example.jp", "192.0.2.140", "route3.mx.cloudflare.net", "4TxL1m2Np3z4Q",
                              rcv, "support@example.com", with_="ESMTP")),
        ("Date", date),
        ("From", "%s <form@mail.example.jp>" % codec_words(name, "shift_jis", "Shift_JIS")),
        ("To", "support@example.com"),
        ("Subject", codec_words(subject, "shift_jis", "Shift_JIS", letter="Q")),
        ("Message-ID", "<%s>" % mid),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/html; charset=Shift_JIS"),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ], body(html, "shift_jis", "quoted-printable"))
    return {
        "description": "A web form's notification, HTML only: text/html; charset=Shift_JIS, quoted-printable (the "
                       "text is derived from the HTML); Subject as =?Shift_JIS?Q?...?= words, the From name as B words.",
        "encoders": "shift_jis codec, quoprimime.body_encode, quoprimime/base64mime.header_encode Shift_JIS words",
        "envelope": {"from": "form@mail.example.jp", "to": "support@example.com"},
        "message": msg,
        "email": email_expect(mid, subject, addr("form@mail.example.jp", name), [addr("support@example.com")],
                              None, ms, html_contains="<b>高橋 三郎</b>"),
    }


# ------------------------------------------------------------------------------ de-duplication pairs (dedupe/)
#
# Not fixtures of their own (the end-to-end run expects one event per fixture): pairs of raw messages under
# fixtures/email/dedupe/, each with the message it is compared with and whether both must get the same event id.
# tests/email.rs reads dedupe/cases.json.

DEDUPE = os.path.join(OUT, "dedupe")


def trace_headers(rcv_date, queue_id, t, from_host, ip, mail_from):
    """What Cloudflare Email Routing prepends on one delivery attempt: its ARC set and SPF result, with values
    (timestamps, ids, signatures) that differ from attempt to attempt. The signatures are not real."""
    seal = email.base64mime.body_encode(("seal %s %d" % (queue_id, t)).encode() * 4).replace("\n", "")
    bh = email.base64mime.body_encode(("bh %s" % queue_id).encode()).replace("\n", "")
    spf = ("pass (mx.cloudflare.net: domain of %s designates %s as permitted sender) receiver=mx.cloudflare.net; "
           "client-ip=%s; envelope-from=\"%s\"; helo=%s;" % (mail_from, ip, ip, mail_from, from_host))
    m = Message()
    m["ARC-Seal"] = "i=1; a=rsa-sha256; s=2024; d=cloudflare-email.net; cv=none; b=" + seal
    m["ARC-Message-Signature"] = ("i=1; a=rsa-sha256; c=relaxed/relaxed; d=cloudflare-email.net; "
                                  "h=From:To:Subject:Date:Message-Id; s=2024; t=%d; bh=%s; b=%s" % (t, bh, seal))
    m["ARC-Authentication-Results"] = ("i=1; mx.cloudflare.net; dkim=none; dmarc=none; spf=pass "
                                       "smtp.mailfrom=" + mail_from)
    m["Received-SPF"] = spf
    m["Received"] = received(from_host, ip, "route1.mx.cloudflare.net", queue_id, rcv_date,
                             "support@example.com")
    head = serialise(m)
    assert head.endswith(b"\r\n\r\n")
    return head[:-2]  # the header block only, without the blank line that ends it


def without_received(msg):
    del msg["Received"]
    return msg


def dedupe_pairs():
    """(file name, raw bytes, compared with, same event?, why)."""
    pairs = []
    # 1. plain_ascii again, as the sending server's SMTP retry arrives through Email Routing four minutes later:
    #    a different Received line and ARC set in front of byte-identical author headers and body.
    original = plain_ascii()
    rcv, _ = when(2024, 3, 11, 9, 16, 7, offset_hours=0)
    retry = trace_headers(rcv, "4TtZ2p0Rm6z1D", 1710148567, "mail.example.net", "198.51.100.25",
                          "john.smith@example.net") + serialise(without_received(original["message"]))
    pairs.append(("plain_ascii_smtp_retry.eml", retry, "plain_ascii.eml", True,
                  "SMTP retry of plain_ascii: new Received, ARC-*, Received-SPF; same author headers and body"))
    # 2. no_message_id retried the same way: without a Message-ID the content digest alone must still match.
    original = no_message_id()
    rcv, _ = when(2024, 3, 17, 12, 45, 31, offset_hours=0)
    retry = trace_headers(rcv, "4Ty5Fz2Hn3z8W", 1710679531, "web01.example.org", "192.0.2.80",
                          "www-data@web01.example.org") + serialise(without_received(original["message"]))
    pairs.append(("no_message_id_smtp_retry.eml", retry, "no_message_id.eml", True,
                  "SMTP retry of no_message_id (no Message-ID): new trace headers only"))
    # 3. Someone else's message that reuses plain_ascii's Message-ID, sent to suppress the real one.
    date, _ = when(2024, 3, 11, 9, 5, 0, offset_hours=0)
    rcv, _ = when(2024, 3, 11, 9, 5, 2, offset_hours=0)
    forged = part([
        ("Received", received("mx.attacker.example", "203.0.113.9", "route1.mx.cloudflare.net", "4TtY0a1Bc2z3D",
                              rcv, "support@example.com")),
        ("From", "Mallory <mallory@attacker.example>"),
        ("Subject", "hello"),
        ("Message-Id", "<6F1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D@example.net>"),
        ("Date", date),
        ("To", "support@example.com"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=us-ascii"),
        ("Content-Transfer-Encoding", "7bit"),
    ], body("Just saying hello.\n", "ascii", "7bit"))
    pairs.append(("plain_ascii_message_id_reused.eml", serialise(forged), "plain_ascii.eml", False,
                  "another sender's message with plain_ascii's Message-ID, delivered before it"))
    # 4. plain_ascii's author headers copied exactly, another body: still another message.
    copied = plain_ascii()["message"]
    copied.set_payload(body("Please cancel order #10423.\n", "ascii", "7bit"))
    pairs.append(("plain_ascii_other_body.eml", serialise(copied), "plain_ascii.eml", False,
                  "plain_ascii's headers (Message-ID, From, Date, Subject) with a different body"))
    return pairs


def write_dedupe_pairs():
    os.makedirs(DEDUPE, exist_ok=True)
    cases = []
    for name, raw, compared_with, same, why in dedupe_pairs():
        with open(os.path.join(DEDUPE, name), "wb") as fp:
            fp.write(raw)
        with open(os.path.join(OUT, compared_with), "rb") as fp:
            other = fp.read()
        # Independent check with Python's parser: the pair shares its Message-ID (or both have none), and the
        # retries differ from the original only in front of the first author header.
        a = email.message_from_bytes(raw, policy=email.policy.default)
        b = email.message_from_bytes(other, policy=email.policy.default)
        assert ids(a["message-id"]) == ids(b["message-id"]), name
        assert raw.count(b"\n") == raw.count(b"\r\n"), name + ": bare LF"
        if same:
            assert raw != other and raw.endswith(other.split(b"\r\n", 3)[3]), name
            assert a.get_body(("plain",)).get_content() == b.get_body(("plain",)).get_content(), name
        else:
            assert a.get_body(("plain",)).get_content() != b.get_body(("plain",)).get_content(), name
        cases.append({"eml": "dedupe/" + name, "compared_with": compared_with, "same_event": same,
                      "description": why})
        print("ok dedupe/%-21s %5d bytes" % (name, len(raw)))
    with open(os.path.join(DEDUPE, "cases.json"), "w", encoding="utf-8", newline="\n") as fp:
        json.dump({
            "description": "Pairs of raw messages and whether the gateway must give both the same event id "
                           "(an SMTP retry) or not (another message). Written by scripts/gen_email_fixtures.py.",
            "account": ACCOUNT, "config": CONFIG,
            "envelope": {"from": "john.smith@example.net", "to": "support@example.com"},
            "cases": cases,
        }, fp, ensure_ascii=False, indent=2)
        fp.write("\n")


# ----------------------------------------------------------------------------------------------------- main


def main():
    os.makedirs(OUT, exist_ok=True)
    written = []
    for fn in FIXTURES:
        name = fn.__name__
        f = fn()
        raw = f["raw"] if "raw" in f else serialise(f["message"])
        doc = {
            "description": f["description"],
            "source": "derived: built by scripts/gen_email_fixtures.py with Python's email package (%s)"
                      % f["encoders"],
            "account": ACCOUNT,
            "config": CONFIG,
            "envelope": f["envelope"],
            "eml": name + ".eml",
            "expect": {"reason": f.get("reason"), "email": f["email"]},
        }
        with open(os.path.join(OUT, name + ".eml"), "wb") as fp:
            fp.write(raw)
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8", newline="\n") as fp:
            json.dump(doc, fp, ensure_ascii=False, indent=2)
            fp.write("\n")
        written.append((name, raw, f))

    # Cross-check: read the files back from disk and parse them with email.policy.default.
    for name, _, f in written:
        with open(os.path.join(OUT, name + ".eml"), "rb") as fp:
            raw = fp.read()
        with open(os.path.join(OUT, name + ".json"), encoding="utf-8") as fp:
            exp = json.load(fp)["expect"]["email"]
        if name == "malformed":
            check_malformed(raw, exp)
        elif name == "header_injection":
            check_header_injection(raw, exp, f["decoded"])
        else:
            check(name, raw, exp if exp is not None else f["check"])
        print("ok %-28s %5d bytes" % (name, len(raw)))
    write_dedupe_pairs()


if __name__ == "__main__":
    main()
