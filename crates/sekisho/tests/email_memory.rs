//! Peak memory of e-mail intake on hostile shapes ("bombs"), measured natively with a counting global
//! allocator: its own test binary, so that no other test's allocations are counted. Every message is within
//! `EMAIL_MAX_BYTES`; from its bytes to its accepted (or refused) answer, intake must stay under
//! [`BUDGET_BYTES`]. The allocator refuses anything past [`CEILING_BYTES`] (the process aborts) so that a
//! regression fails the run instead of exhausting the machine.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sekisho::mail::charset::EncodingRs;
use sekisho::mail::{self as email, Bucket, InboundEmail};

/// What intake may hold at its peak for one message of up to `EMAIL_MAX_BYTES` (the isolate has 128 MB).
const BUDGET_BYTES: usize = 64 * 1024 * 1024;
const CEILING_BYTES: usize = 512 * 1024 * 1024;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        if now > CEILING_BYTES {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old {
            let now = CURRENT.fetch_add(new_size - old, Ordering::SeqCst) + (new_size - old);
            if now > CEILING_BYTES {
                CURRENT.fetch_sub(new_size - old, Ordering::SeqCst);
                return std::ptr::null_mut();
            }
            PEAK.fetch_max(now, Ordering::SeqCst);
        } else {
            CURRENT.fetch_sub(old - new_size, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time: the counters are global.
static SERIAL: Mutex<()> = Mutex::new(());

const MAX_BYTES: usize = email::DEFAULT_MAX_BYTES as usize;

fn bindings() -> HashMap<String, String> {
    [
        ("EMAIL_SUPPORT_ADDRESS", "support@example.com"),
        ("BACKEND_URL", "https://backend.example/events"),
        (
            "BACKEND_SIGNING_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        (
            "ATTACHMENT_URL_SECRET",
            "attachment-url-secret-0123456789abcdef",
        ),
        ("ATTACHMENT_URL_BASE", "https://gw.example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

struct Measured {
    peak_bytes: usize,
    outcome: Result<(), String>,
}

/// Intake of `raw` as the Worker runs it (bucket bound, links configured): the peak above what was allocated
/// before (the raw bytes themselves are the caller's), and whether the message was accepted.
fn measure(raw: &[u8]) -> Measured {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let bindings = bindings();
    let inbound = InboundEmail {
        envelope_from: "sender@example.jp",
        envelope_to: "support@example.com",
        raw,
    };
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let outcome = email::admit(inbound.envelope_to, raw.len() as u64, &bindings)
        .map_err(|rejection| rejection.reason().to_owned())
        .and_then(|account| {
            email::accept(
                &inbound,
                &account,
                &bindings,
                1_780_000_000_000,
                &EncodingRs,
                Bucket::Present,
            )
            .map(drop)
            .map_err(|refusal| refusal.rejection.reason().to_owned())
        });
    let peak_bytes = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    Measured {
        peak_bytes,
        outcome,
    }
}

const HEAD: &str = "From: a@example.jp\r\nTo: support@example.com\r\nMessage-ID: <bomb@example.jp>\r\nSubject: bomb\r\n";

/// Repeats `unit(i)` after `head` until it is empty or the message would pass the size limit less `tail`,
/// then appends `tail`.
fn fill(head: &str, unit: impl Fn(usize) -> String, tail: &str) -> Vec<u8> {
    let mut raw = head.as_bytes().to_vec();
    let room = MAX_BYTES - tail.len();
    for i in 0.. {
        let unit = unit(i);
        if unit.is_empty() || raw.len() + unit.len() > room {
            break;
        }
        raw.extend_from_slice(unit.as_bytes());
    }
    raw.extend_from_slice(tail.as_bytes());
    raw
}

fn report(shape: &str, measured: &Measured) {
    eprintln!(
        "email_memory: {shape}: peak {:.1} MB, {:?}",
        measured.peak_bytes as f64 / 1e6,
        measured.outcome
    );
}

fn assert_bounded(shape: &str, raw: &[u8]) -> Measured {
    assert!(raw.len() <= MAX_BYTES, "{shape} is within EMAIL_MAX_BYTES");
    let measured = measure(raw);
    report(shape, &measured);
    assert!(
        measured.peak_bytes < BUDGET_BYTES,
        "{shape}: peak {} B over the {} B budget",
        measured.peak_bytes,
        BUDGET_BYTES
    );
    measured
}

#[test]
fn many_headers_are_refused_within_the_budget() {
    let raw = fill(HEAD, |i| format!("X-H{i}: v\r\n"), "\r\nbody\r\n");
    let measured = assert_bounded("many headers", &raw);
    assert_eq!(measured.outcome, Err("too_many_headers".to_owned()));
}

#[test]
fn one_huge_header_line_is_refused_within_the_budget() {
    let raw = fill(
        "From: a@example.jp\r\nMessage-ID: <bomb@example.jp>\r\nTo: ",
        |i| format!("u{i}@example.jp, "),
        "\r\n\r\nbody\r\n",
    );
    let measured = assert_bounded("one huge header line", &raw);
    assert_eq!(measured.outcome, Err("headers_too_large".to_owned()));
}

#[test]
fn many_tiny_parts_are_refused_within_the_budget() {
    let head =
        format!("{HEAD}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    let raw = fill(&head, |_| "--b\r\n\r\nx\r\n".to_owned(), "--b--\r\n");
    let measured = assert_bounded("many tiny parts", &raw);
    assert_eq!(measured.outcome, Err("too_many_parts".to_owned()));
}

#[test]
fn many_tiny_attachments_are_refused_within_the_budget() {
    let head =
        format!("{HEAD}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    let raw = fill(
        &head,
        |i| {
            format!("--b\r\nContent-Type: application/octet-stream; name=\"{i}.bin\"\r\nContent-Disposition: attachment\r\n\r\nx\r\n")
        },
        "--b--\r\n",
    );
    let measured = assert_bounded("many tiny attachments", &raw);
    assert_eq!(measured.outcome, Err("too_many_headers".to_owned()));
}

#[test]
fn deep_multipart_nesting_is_refused_within_the_budget() {
    let raw = fill(
        HEAD,
        |_| "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n".to_owned(),
        "\r\nend\r\n",
    );
    let measured = assert_bounded("deep multipart nesting", &raw);
    assert_eq!(measured.outcome, Err("too_many_parts".to_owned()));
}

#[test]
fn deep_message_nesting_is_refused_within_the_budget() {
    let raw = fill(
        HEAD,
        |_| "Content-Type: message/rfc822\r\n\r\n".to_owned(),
        "\r\nend\r\n",
    );
    let measured = assert_bounded("deep message/rfc822 nesting", &raw);
    assert_eq!(measured.outcome, Err("too_many_nested_messages".to_owned()));
}

/// An ordinary large message — text and one attachment filling `EMAIL_MAX_BYTES` — is accepted within the
/// same budget.
#[test]
fn a_large_ordinary_message_is_accepted_within_the_budget() {
    use base64::Engine as _;
    let content = vec![0x5au8; MAX_BYTES / 2];
    let encoded = base64::engine::general_purpose::STANDARD.encode(&content);
    let mut body = String::new();
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(line).unwrap());
        body.push_str("\r\n");
    }
    let raw = format!(
        "{HEAD}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}--b--\r\n"
    );
    let measured = assert_bounded("large ordinary message", raw.as_bytes());
    assert_eq!(measured.outcome, Ok(()));
}

/// The worst a message can be and still be parsed: just under every structural limit at once, the rest of
/// `EMAIL_MAX_BYTES` in parts (each an attachment of one header field), a few attached messages.
#[test]
fn a_message_just_under_every_limit_stays_within_the_budget() {
    let mut head = String::from(HEAD);
    // Headers: as many fields as the limit leaves for the parts' own, as large as the byte limit allows.
    let parts = email::MAX_PARTS - 2 * email::MAX_NESTED_MESSAGES - 2;
    let top_fields = email::MAX_HEADER_FIELDS - parts - 2 * email::MAX_NESTED_MESSAGES - 10;
    let field_bytes =
        (email::MAX_HEADER_BYTES - 64 * parts - 64 * email::MAX_NESTED_MESSAGES) / top_fields;
    for i in 0..top_fields {
        let name = format!("X-F{i}: ");
        head.push_str(&name);
        head.push_str(&"v".repeat(field_bytes.saturating_sub(name.len() + 2)));
        head.push_str("\r\n");
    }
    head.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    for _ in 0..email::MAX_NESTED_MESSAGES - 1 {
        head.push_str(
            "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: fwd\r\n\r\nforwarded\r\n",
        );
    }
    let body_room = MAX_BYTES.saturating_sub(head.len() + 16);
    let per_part = body_room / parts;
    let chunk = "QUJD".repeat(19) + "\r\n";
    let raw = fill(
        &head,
        |i| {
            if i >= parts {
                return String::new();
            }
            let prefix =
                format!("--b\r\nContent-Type: application/octet-stream; name=\"{i}\"\r\n\r\n");
            let lines = per_part.saturating_sub(prefix.len()) / chunk.len();
            prefix + &chunk.repeat(lines)
        },
        "--b--\r\n",
    );
    let measured = assert_bounded("just under every limit", &raw);
    assert_ne!(
        measured.outcome.as_ref().err().map(String::as_str),
        Some("too_many_headers")
    );
    assert_ne!(
        measured.outcome.as_ref().err().map(String::as_str),
        Some("too_many_parts")
    );
    assert_ne!(
        measured.outcome.as_ref().err().map(String::as_str),
        Some("headers_too_large")
    );
}

/// Nesting as deep as the limits allow — multiparts within multiparts to just under `MAX_PARTS`, attached
/// messages to `MAX_NESTED_MESSAGES` — is parsed without exhausting the stack or the budget.
#[test]
fn nesting_just_under_the_limits_is_parsed_within_the_budget() {
    let mut raw = String::from(HEAD);
    for _ in 0..email::MAX_NESTED_MESSAGES {
        raw.push_str("Content-Type: message/rfc822\r\n\r\nSubject: fwd\r\n");
    }
    for _ in 0..email::MAX_PARTS - email::MAX_NESTED_MESSAGES - 2 {
        raw.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n");
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
    let measured = assert_bounded("nesting just under the limits", raw.as_bytes());
    assert!(
        !matches!(
            measured.outcome.as_ref().map_err(String::as_str),
            Err("too_many_parts" | "too_many_nested_messages" | "too_many_headers")
        ),
        "{:?}",
        measured.outcome
    );
}
