#!/usr/bin/env python3
"""Japanese e-mail as real mailers send it, beyond the well-labelled fixtures of gen_email_fixtures.py: ISO-2022-JP,
Shift_JIS and EUC-JP in parts with no charset (or `us-ascii`), the charset labels seen in the wild, the NEC and
NEC-selected IBM extensions (①, ㈱, 髙, 﨑), RFC 2047 words split inside a character, RFC 2231 continuations
split inside a character, and WAVE DASH / FULLWIDTH TILDE.

The bytes come from Python's own codecs (`iso2022_jp`, `cp932`, `euc_jp`, `utf-8`) and MIME helpers; ISO-2022-JP
with the NEC/IBM extensions (Microsoft's CP50220, which Outlook sends) is cp932 turned into JIS X 0208 row/cell
codes with the standard Shift_JIS -> JIS arithmetic. Each expectation is the text typed, with one documented
substitution: JIS X 0208 0x2141 (`〜` on every Japanese keyboard, sent as the same bytes by macOS and Windows
mailers in a legacy charset) reads as U+FF5E FULLWIDTH TILDE under the WHATWG Encoding Standard, as browsers and
webmail show it.

Run: python3 scripts/gen_email_ja_fixtures.py (deterministic; writes fixtures/email/ja_*.eml and .json).
"""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_email_fixtures as g  # noqa: E402

OUT = g.OUT
WAVE_DASH, FULLWIDTH_TILDE = "\u301c", "\uff5e"


def whatwg_jis(text):
    """What a WHATWG decoder gives for `text` sent in a JIS X 0208 based charset: 0x2141 is U+FF5E."""
    return text.replace(WAVE_DASH, FULLWIDTH_TILDE)


def cp50220(text):
    """ISO-2022-JP as Microsoft's CP50220 writes it: cp932 double bytes as JIS X 0208 codes after ESC $ B, which
    puts NEC row 13 and the NEC-selected IBM extensions (rows 89-92) inside ISO-2022-JP."""
    out, jis = bytearray(), False
    for ch in text:
        b = ch.encode("cp932")
        if len(b) == 1:
            assert b[0] < 0x80, ch
            if jis:
                out += b"\x1b(B"
                jis = False
            out += b
            continue
        b1, b2 = b
        j1 = ((b1 - (0x70 if b1 < 0xA0 else 0xB0)) << 1) - (1 if b2 < 0x9F else 0)
        j2 = b2 - (0x1F if b2 < 0x7F else (0x20 if b2 < 0x9F else 0x7E))
        assert 0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E, ch
        # The way back, through the cp932 decoder, must give the character again.
        s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
        s2 = j2 + (0x1F if j1 % 2 and j2 <= 0x5F else 0x20 if j1 % 2 else 0x7E)
        assert bytes([s1, s2]).decode("cp932") == ch.replace(WAVE_DASH, FULLWIDTH_TILDE), ch
        if not jis:
            out += b"\x1b$B"
            jis = True
        out += bytes([j1, j2])
    if jis:
        out += b"\x1b(B"
    return bytes(out)


def jis_lines(text, encode):
    """A body in an ISO-2022-JP flavour, each line returning to ASCII before its CRLF (RFC 1468)."""
    return b"\r\n".join(encode(line) for line in text.split("\n"))


def split_words(data, label, every):
    """RFC 2047 B words of `every` bytes each, cut wherever that falls, even inside a character."""
    chunks = [data[i:i + every] for i in range(0, len(data), every)]
    return "\r\n ".join("=?%s?B?%s?=" % (label, base64.b64encode(c).decode("ascii")) for c in chunks)


def word(data, label):
    return "=?%s?B?%s?=" % (label, base64.b64encode(data).decode("ascii"))


def message(headers, body):
    """A raw message: header lines (already encoded), a blank line, the body bytes."""
    head = b"".join(("%s: %s\r\n" % (k, v)).encode("ascii") for k, v in headers)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return head + b"\r\n" + body


FIXTURES = []


def fixture(fn):
    FIXTURES.append(fn)
    return fn


def base_headers(n, date, subject_header, from_header):
    return [
        ("Received", g.received("mail.example.jp", "192.0.2.%d" % (100 + n), "route1.mx.cloudflare.net",
                                "4Tja%04d" % n, date, "support@example.com")),
        ("Message-ID", "<ja-%02d.20240401@mail.example.jp>" % n),
        ("Date", date),
        ("From", from_header),
        ("To", "support@example.com"),
        ("Subject", subject_header),
    ]


TEXT = (
    "お世話になっております。\n"
    "先日の注文の件で、納期を教えてください。\n"
    "よろしくお願いいたします。"
)
EXTENDED = "①②③ ㈱鈴木製作所 髙橋 﨑山 №１ ～"  # NEC row 13, NEC-selected IBM, FULLWIDTH TILDE (Windows IME)


def expect(n, subject, from_, text, date_ms, attachments=()):
    return g.email_expect("ja-%02d.20240401@mail.example.jp" % n, subject, from_, [g.addr("support@example.com")],
                          text, date_ms, attachments=attachments)


@fixture
def ja_iso2022jp_no_charset():
    n, (date, ms) = 1, g.when(2024, 4, 1, 10, 0, 0)
    subject, name = "納期のご確認", "山本 一郎"
    g.portable_jis(subject, name, TEXT)
    raw = message(base_headers(n, date, word(subject.encode("iso2022_jp"), "ISO-2022-JP"),
                               "%s <ichiro@example.jp>" % word(name.encode("iso2022_jp"), "ISO-2022-JP"))
                  + [("MIME-Version", "1.0"), ("Content-Type", "text/plain; format=flowed"),
                     ("Content-Transfer-Encoding", "7bit"), ("X-Mailer", "Becky! ver. 2.75")],
                  jis_lines(TEXT, lambda line: line.encode("iso2022_jp")))
    return {
        "description": "ISO-2022-JP body in a text/plain part with no charset parameter (older mailers, some "
                       "gateways): detected by its JIS X 0208 escape sequences.",
        "encoders": "iso2022_jp codec, base64 words",
        "envelope": {"from": "ichiro@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": expect(n, subject, g.addr("ichiro@example.jp", name), TEXT, ms),
    }


@fixture
def ja_iso2022jp_raw_subject():
    n, (date, ms) = 5, g.when(2024, 4, 1, 10, 20, 0)
    subject = "Re: 【至急】納期のご確認について、再度のお願い"
    g.portable_jis(subject, TEXT)
    jis = subject.encode("iso2022_jp").decode("ascii")
    assert jis.startswith("Re: \x1b$B")
    folded = "Re:\r\n " + jis[4:]  # folded before the JIS run, as mailers fold: unfolding gives `Re: ` back
    raw = message(base_headers(n, date, folded, "legacy@example.jp")
                  + [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=iso-2022-jp"),
                     ("Content-Transfer-Encoding", "7bit")],
                  jis_lines(TEXT, lambda line: line.encode("iso2022_jp")))
    return {
        "description": "An old mailer's Subject in raw ISO-2022-JP, without RFC 2047 words, folded before the JIS run.",
        "encoders": "iso2022_jp codec",
        "envelope": {"from": "legacy@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": expect(n, subject, g.addr("legacy@example.jp"), TEXT, ms),
    }


@fixture
def ja_iso2022jp_us_ascii():
    n, (date, ms) = 2, g.when(2024, 4, 1, 10, 5, 0)
    subject, name = "見積書送付 ㈱髙橋工業", "髙橋 﨑子"
    text = TEXT + "\n" + EXTENDED
    raw = message(base_headers(n, date, word(cp50220(subject), "iso-2022-jp"),
                               "%s <sakiko@example.jp>" % word(cp50220(name), "iso-2022-jp"))
                  + [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=us-ascii"),
                     ("Content-Transfer-Encoding", "7bit"), ("X-Mailer", "Microsoft Outlook 16.0")],
                  jis_lines(text, cp50220))
    return {
        "description": "ISO-2022-JP (CP50220, with NEC row 13 and NEC-selected IBM extensions) in a part labelled "
                       "us-ascii; the subject and From name carry the extensions in ISO-2022-JP words too.",
        "encoders": "cp932 codec turned into JIS X 0208 codes (CP50220), base64 words",
        "envelope": {"from": "sakiko@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": expect(n, subject, g.addr("sakiko@example.jp", name), text, ms),
    }


@fixture
def ja_shift_jis_no_charset():
    n, (date, ms) = 3, g.when(2024, 4, 1, 10, 10, 0)
    subject = "Order inquiry"
    text = TEXT + "\n" + EXTENDED + "\nﾊﾝｶｸ ｶﾀｶﾅ"
    raw = message(base_headers(n, date, subject, "orders@example.jp")
                  + [("Content-Transfer-Encoding", "8bit")],
                  text.replace("\n", "\r\n").encode("cp932"))
    return {
        "description": "A web form mailer without any MIME headers: 8-bit Shift_JIS (cp932, with NEC/IBM "
                       "extensions, FULLWIDTH TILDE and half-width katakana) and no charset anywhere.",
        "encoders": "cp932 codec",
        "envelope": {"from": "orders@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": expect(n, subject, g.addr("orders@example.jp"), text, ms),
    }


@fixture
def ja_euc_jp_no_charset():
    n, (date, ms) = 4, g.when(2024, 4, 1, 10, 15, 0)
    subject = "Re: delivery date"
    text = TEXT + "\n〒105-0011 東京都港区芝公園４丁目"
    raw = message(base_headers(n, date, subject, "unix@example.jp")
                  + [("MIME-Version", "1.0"), ("Content-Type", "text/plain"),
                     ("Content-Transfer-Encoding", "8bit")],
                  whatwg_ready_euc(text))
    return {
        "description": "A Unix mailer's 8-bit EUC-JP in a text/plain part with no charset parameter.",
        "encoders": "euc_jp codec",
        "envelope": {"from": "unix@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": expect(n, subject, g.addr("unix@example.jp"), text, ms),
    }


def whatwg_ready_euc(text):
    """EUC-JP bytes for text whose characters map the same in Python's euc_jp and in WHATWG (no ～/－)."""
    data = text.replace("\n", "\r\n").encode("euc_jp")
    assert data.decode("euc_jp") == text.replace("\n", "\r\n")
    return data


LABELS = [
    # (fixture suffix, label, body encoder, what the label's mailers are)
    ("x_sjis", "x-sjis", "cp932", "old Macintosh and Java mailers"),
    ("shift_hyphen_jis", "Shift-JIS", "cp932", "web form mailers"),
    ("cp932", "cp932", "cp932", "PHP mb_send_mail with the cp932 internal encoding"),
    ("windows_31j", "Windows-31J", "cp932", "Java (JavaMail MS932)"),
    ("iso_2022_jp_ms", "ISO-2022-JP-MS", "cp50220", "PHP mb_send_mail with ISO-2022-JP-MS"),
    ("x_euc_jp", "x-euc-jp", "euc_jp", "old Unix mailers"),
]


def make_label_fixture(n, suffix, label, codec, who):
    def build():
        date, ms = g.when(2024, 4, 2, 9, n, 0)
        extended = codec != "euc_jp"
        subject = "お問い合わせ" + (" ①㈱" if extended else "")
        name = "髙橋 﨑" if extended else "山田 花子"
        text = TEXT + ("\n" + EXTENDED if extended else "")
        if codec == "cp50220":
            encode, body = cp50220, jis_lines(text, cp50220)
        elif codec == "cp932":
            encode, body = (lambda t: t.encode("cp932")), text.replace("\n", "\r\n").encode("cp932")
        else:
            encode, body = (lambda t: t.encode("euc_jp")), whatwg_ready_euc(text)
        raw = message(base_headers(n, date, word(encode(subject), label),
                                   "%s <label-%s@example.jp>" % (word(encode(name), label), suffix))
                      + [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=%s" % label),
                         ("Content-Transfer-Encoding", "7bit" if codec == "cp50220" else "8bit")],
                      body)
        return {
            "description": "The charset label %s (%s) on the body and in the subject's and From name's encoded "
                           "words." % (label, who),
            "encoders": "%s codec, base64 words" % ("cp932 -> JIS (CP50220)" if codec == "cp50220" else codec),
            "envelope": {"from": "label-%s@example.jp" % suffix, "to": "support@example.com"},
            "raw": raw,
            "email": expect(n, subject, g.addr("label-%s@example.jp" % suffix, name), text, ms),
        }
    build.__name__ = "ja_label_" + suffix
    return build


for i, spec in enumerate(LABELS):
    fixture(make_label_fixture(10 + i, *spec))


@fixture
def ja_split_words():
    n, (date, ms) = 20, g.when(2024, 4, 3, 11, 0, 0)
    subject = "【重要】ご注文内容の確認と発送予定日のお知らせ"
    from_name, to_name = "株式会社サンプル商事 営業部", "サポート窓口"
    body_text = "添付の見積書をご確認ください。"
    pdf = g.minimal_pdf(b"Estimate E-2024-0403")
    filename = "御見積書_2024年4月.pdf"
    quoted = "".join("%%%02X" % b for b in filename.encode("utf-8"))
    cut = 3 * (len("御".encode("utf-8")) + 2)  # inside 見 (after two of its three bytes): RFC 2231 joins the bytes
    assert filename.encode("utf-8")[: cut // 3].decode("utf-8", "replace").endswith("\ufffd")
    headers = [
        ("Received", g.received("mail.example.jp", "192.0.2.120", "route1.mx.cloudflare.net", "4Tja0020", date,
                                "support@example.com")),
        ("Message-ID", "<ja-%02d.20240401@mail.example.jp>" % n),
        ("Date", date),
        ("From", "%s <sales@example.jp>" % split_words(from_name.encode("cp932"), "Shift_JIS", 7)),
        ("To", "%s <support@example.com>" % split_words(cp50220(to_name), "ISO-2022-JP", 8)),
        ("Subject", split_words(subject.encode("utf-8"), "UTF-8", 16)),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed; boundary="ja-split-20"'),
    ]
    body = (
        b"--ja-split-20\r\n"
        b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(body_text.encode("utf-8")).replace(b"\n", b"\r\n")
        + b"--ja-split-20\r\n"
        b"Content-Type: application/pdf\r\n"
        + ("Content-Disposition: attachment;\r\n filename*0*=UTF-8''%s;\r\n filename*1*=%s\r\n"
           % (quoted[:cut], quoted[cut:])).encode("ascii")
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(pdf).replace(b"\n", b"\r\n")
        + b"--ja-split-20--\r\n"
    )
    for every, data in [(16, subject.encode("utf-8")), (7, from_name.encode("cp932"))]:
        assert any(data[i:i + every][-1:] and data[i:i + every].decode(
            "utf-8" if every == 16 else "cp932", "replace").endswith("\ufffd") for i in range(0, len(data), every))
    raw = message(headers, body)
    to = [g.addr("support@example.com", to_name)]
    return {
        "description": "RFC 2047 words cut inside a character (UTF-8 subject every 16 bytes, Shift_JIS From name "
                       "every 7 bytes, ISO-2022-JP To name inside a JIS pair), and an RFC 2231 filename whose two "
                       "UTF-8 continuations split a character.",
        "encoders": "utf-8/cp932 codecs, cp932 -> JIS (CP50220), base64 words cut by byte count",
        "envelope": {"from": "sales@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": g.email_expect("ja-%02d.20240401@mail.example.jp" % n, subject, g.addr("sales@example.jp", from_name),
                                to, body_text, ms,
                                attachments=[{"name": filename, "content_type": "application/pdf",
                                              "size": len(pdf), "content_id": None}]),
        "pdf": pdf,
    }


@fixture
def ja_wave_dash_utf8():
    n, (date, ms) = 30, g.when(2024, 4, 4, 12, 0, 0)
    subject = "営業時間 9:00" + WAVE_DASH + "18:00"
    text = ("macOS: 10:00" + WAVE_DASH + "12:00 (WAVE DASH)\n"
            "Windows: 13:00" + FULLWIDTH_TILDE + "15:00 (FULLWIDTH TILDE)")
    raw = message(base_headers(n, date, word(subject.encode("utf-8"), "UTF-8"), "mac@example.jp")
                  + [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=UTF-8"),
                     ("Content-Transfer-Encoding", "8bit")],
                  text.replace("\n", "\r\n").encode("utf-8"))
    return {
        "description": "UTF-8 keeps each sender's code point: U+301C WAVE DASH as macOS types it, U+FF5E FULLWIDTH "
                       "TILDE as the Windows IME types it. Nothing is normalised.",
        "encoders": "utf-8 codec",
        "envelope": {"from": "mac@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": expect(n, subject, g.addr("mac@example.jp"), text, ms),
    }


@fixture
def ja_wave_dash_iso2022jp():
    n, (date, ms) = 31, g.when(2024, 4, 4, 12, 5, 0)
    subject = "営業時間 9:00" + WAVE_DASH + "18:00"
    text = "受付 10:00" + WAVE_DASH + "12:00"
    raw = message(base_headers(n, date, word(subject.encode("iso2022_jp"), "ISO-2022-JP"), "mac2@example.jp")
                  + [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=ISO-2022-JP"),
                     ("Content-Transfer-Encoding", "7bit"), ("X-Mailer", "Apple Mail (2.3774)")],
                  jis_lines(text, lambda line: line.encode("iso2022_jp")))
    assert b"\x1b$B!A\x1b(B" in raw
    return {
        "description": "macOS Mail's 〜 (U+301C) sent in ISO-2022-JP is JIS X 0208 0x2141, the same bytes Windows "
                       "sends for its ～: it arrives as U+FF5E FULLWIDTH TILDE (the WHATWG mapping).",
        "encoders": "iso2022_jp codec, base64 words",
        "envelope": {"from": "mac2@example.jp", "to": "support@example.com"},
        "raw": raw,
        "email": expect(n, whatwg_jis(subject), g.addr("mac2@example.jp"), whatwg_jis(text), ms),
    }


def write_attachment_files():
    """The original bytes of `attachments.eml`'s two parts (a real one-page PDF and a real 2x2 PNG, built and
    checked by gen_email_fixtures.py), which the attachment links must answer exactly."""
    folder = os.path.join(OUT, "attachments")
    os.makedirs(folder, exist_ok=True)
    for name, data in [("quote.pdf", g.PDF_QUOTE), ("layout.png", g.PNG_2X2)]:
        with open(os.path.join(folder, name), "wb") as fp:
            fp.write(data)
    with open(os.path.join(OUT, "attachments.eml"), "rb") as fp:
        raw = fp.read()
    assert base64.encodebytes(g.PDF_QUOTE).replace(b"\n", b"\r\n")[:60] in raw
    assert base64.encodebytes(g.PNG_2X2).replace(b"\n", b"\r\n")[:60] in raw


def main():
    write_attachment_files()
    for fn in FIXTURES:
        name = fn.__name__
        f = fn()
        doc = {
            "description": f["description"],
            "source": "derived: built by scripts/gen_email_ja_fixtures.py with Python's codecs (%s)" % f["encoders"],
            "account": g.ACCOUNT,
            "config": g.CONFIG,
            "envelope": f["envelope"],
            "eml": name + ".eml",
            "expect": {"reason": None, "email": f["email"]},
        }
        assert f["raw"].count(b"\n") == f["raw"].count(b"\r\n"), name
        with open(os.path.join(OUT, name + ".eml"), "wb") as fp:
            fp.write(f["raw"])
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8", newline="\n") as fp:
            json.dump(doc, fp, ensure_ascii=False, indent=2)
            fp.write("\n")
        print("ok %-28s %5d bytes" % (name, len(f["raw"])))


if __name__ == "__main__":
    main()
