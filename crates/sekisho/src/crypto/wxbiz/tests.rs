use super::*;
use proptest::prelude::*;

const OA_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const OA_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
const OA_PLAINTEXT: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";
const WECOM_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const WECOM_CORP: &str = "wx5823bf96d3bd56c7";
const WECOM_ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
const WECOM_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
const WECOM_PLAINTEXT: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";
const WECHATPY_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const WECHATPY_ECHOSTR: &str =
    "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";

fn key(text: &str) -> AesKey {
    AesKey::from_encoding_aes_key(text).unwrap()
}

#[test]
fn official_keys_are_non_canonical_base64_and_still_decode() {
    // A strict decoder refuses the official sample key: that is why the lenient engine exists.
    assert!(STANDARD.decode(format!("{OA_KEY}=")).is_err());
    for text in [OA_KEY, WECOM_KEY, WECHATPY_KEY] {
        assert!(AesKey::from_encoding_aes_key(text).is_ok(), "{text}");
    }
}

#[test]
fn malformed_keys_are_refused() {
    assert_eq!(
        AesKey::from_encoding_aes_key(&OA_KEY[..42]),
        Err(AesKeyError::Length)
    );
    assert_eq!(
        AesKey::from_encoding_aes_key(&format!("{OA_KEY}A")),
        Err(AesKeyError::Length)
    );
    assert_eq!(
        AesKey::from_encoding_aes_key(&format!("{}!", &OA_KEY[..42])),
        Err(AesKeyError::NotBase64)
    );
    assert_eq!(AesKey::from_encoding_aes_key(""), Err(AesKeyError::Length));
}

/// wechat_oa.json `wechat-oa-plain-get-signature` (wechatpy tests/test_utils.py).
#[test]
fn vector_oa_plain_signature() {
    assert_eq!(
        signature_hex(&["test", "1410685589", "test"]),
        "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    );
    assert_eq!(
        matching_token(
            &["test"],
            &["1410685589", "test"],
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        ),
        Some(0)
    );
    assert_eq!(
        matching_token(
            &["test"],
            &["1410685589", "test"],
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe"
        ),
        None
    );
}

/// wechat_oa.json `wechat-oa-official-python-sample-decrypt` (Tencent's Sample.py).
#[test]
fn vector_oa_official_sample_decrypt() {
    assert_eq!(
        signature_hex(&["spamtest", "1409735669", "1320562132", OA_ENCRYPT]),
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    );
    assert_eq!(
        signature_hex(&["spamtest", "1409735669", "1320562132"]),
        "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
    );
    let decrypted = decrypt(&key(OA_KEY), OA_ENCRYPT, "wx2c2769f8efd9abc2").unwrap();
    assert_eq!(&decrypted.random, b"89465c840c5f116f");
    assert_eq!(decrypted.message.len(), 280);
    assert_eq!(decrypted.pad, 2);
    assert_eq!(decrypted.message, OA_PLAINTEXT);
    assert_eq!(
        decrypt(&key(OA_KEY), OA_ENCRYPT, "wx0000000000000000"),
        Err(DecryptError::ReceiveIdMismatch)
    );
}

/// wechat_oa.json `wechat-oa-official-java-aes-encrypt-1` (Tencent's WXBizMsgCryptTest.java).
#[test]
fn vector_oa_java_deterministic_encrypt() {
    let encrypted = encrypt(
        &key(OA_KEY),
        b"aaaabbbbccccdddd",
        "我是中文abcd123".as_bytes(),
        "wxb11529c136998cb6",
    )
    .unwrap();
    assert_eq!(
        encrypted,
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
    );
    assert_eq!(
        signature_hex(&["pamtest", "1409304348", "xxxxxx", &encrypted]),
        "82c962d39941aa48552f90ef55aa323dc620cc10"
    );
    let decrypted = decrypt(&key(OA_KEY), &encrypted, "wxb11529c136998cb6").unwrap();
    assert_eq!(decrypted.message, "我是中文abcd123");
    assert_eq!(&decrypted.random, b"aaaabbbbccccdddd");
}

/// wecom.json `wecom-official-verifyurl` (sbzhu/weworkapi_php callback/Sample.php).
#[test]
fn vector_wecom_verify_url() {
    assert_eq!(
        signature_hex(&["QDG6eK", "1409659589", "263014780", WECOM_ECHOSTR]),
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    );
    let decrypted = decrypt(&key(WECOM_KEY), WECOM_ECHOSTR, WECOM_CORP).unwrap();
    assert_eq!(decrypted.message, "1616140317555161061");
    assert_eq!(&decrypted.random, b"c41b64491c2468d0");
    assert_eq!(decrypted.pad, 7);
}

/// wecom.json `wecom-official-decryptmsg`: pad value 30, which a 16-byte PKCS#7 unpadder rejects.
#[test]
fn vector_wecom_decrypt_message_with_pad_30() {
    assert_eq!(
        signature_hex(&["QDG6eK", "1409659813", "1372623149", WECOM_ENCRYPT]),
        "477715d11cdb4164915debcba66cb864d751f3e6"
    );
    let decrypted = decrypt(&key(WECOM_KEY), WECOM_ENCRYPT, WECOM_CORP).unwrap();
    assert_eq!(decrypted.message, WECOM_PLAINTEXT);
    assert_eq!(&decrypted.random, b"0960688932c47ef1");
    assert_eq!(decrypted.pad, 30);
    // Re-encrypting with the same random reproduces the official ciphertext byte for byte.
    assert_eq!(
        encrypt(
            &key(WECOM_KEY),
            b"0960688932c47ef1",
            WECOM_PLAINTEXT.as_bytes(),
            WECOM_CORP
        )
        .unwrap(),
        WECOM_ENCRYPT
    );
}

/// wecom.json `wechatpy-work-check-signature` (wechatpy tests/test_crypto.py), with its negative nonce.
#[test]
fn vector_wechatpy_work() {
    let parts = ["1411443780", "437374425", WECHATPY_ECHOSTR];
    assert_eq!(
        matching_token(
            &["123456"],
            &parts,
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
        ),
        Some(0)
    );
    let negative = ["1411443780", "437374424", WECHATPY_ECHOSTR];
    assert_eq!(
        matching_token(
            &["123456"],
            &negative,
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
        ),
        None
    );
    let decrypted = decrypt(&key(WECHATPY_KEY), WECHATPY_ECHOSTR, "wx49f0ab532d5d035a").unwrap();
    assert_eq!(decrypted.message, "5927782489442352469");
}

#[test]
fn rotated_tokens_and_keys_report_the_matching_index() {
    let sig = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96";
    let parts = ["1411443780", "437374425", WECHATPY_ECHOSTR];
    assert_eq!(
        matching_token(&["new-token", "123456"], &parts, sig),
        Some(1)
    );
    assert_eq!(
        matching_token(&["123456"], &parts, &sig.to_uppercase()),
        Some(0)
    );
    assert_eq!(matching_token(&["123456"], &parts, &sig[..38]), None);
    assert_eq!(matching_token(&["123456"], &parts, "not hex"), None);
    let keys = [key(OA_KEY), key(WECHATPY_KEY)];
    let (index, decrypted) = decrypt_any(&keys, WECHATPY_ECHOSTR, "wx49f0ab532d5d035a").unwrap();
    assert_eq!(
        (index, decrypted.message.as_str()),
        (1, "5927782489442352469")
    );
    // With only wrong keys, the error is the furthest stage any key reached.
    assert_eq!(
        decrypt_any(&keys, OA_ENCRYPT, "wx2c2769f8efd9abc2").map(|(i, _)| i),
        Ok(0)
    );
    assert_eq!(
        decrypt_any(&keys, OA_ENCRYPT, "other"),
        Err(DecryptError::ReceiveIdMismatch)
    );
    assert_eq!(
        decrypt_any(&[], OA_ENCRYPT, "other"),
        Err(DecryptError::BadPadding)
    );
}

fn cdata(xml: &str, element: &str) -> String {
    let open = format!("<{element}><![CDATA[");
    let start = xml.find(&open).unwrap() + open.len();
    xml[start..].split("]]>").next().unwrap().to_owned()
}

/// Walks every vector of tests/vectors/wechat_oa.json and wecom.json (copies of shared/vectors) and checks
/// every expectation it states, so a vector added to those files without coverage fails here.
#[test]
fn every_shared_vector_holds() {
    let files = [
        include_str!("../../../tests/vectors/wechat_oa.json"),
        include_str!("../../../tests/vectors/wecom.json"),
    ];
    let mut checked = 0;
    for file in files {
        let parsed: serde_json::Value = serde_json::from_str(file).unwrap();
        for v in parsed["vectors"].as_array().unwrap() {
            let s = |path: &[&str]| {
                path.iter()
                    .try_fold(v, |value, key| value.get(*key))
                    .and_then(|x| x.as_str())
            };
            let n = |path: &[&str]| {
                path.iter()
                    .try_fold(v, |value, key| value.get(*key))
                    .and_then(|x| x.as_u64())
            };
            let token = s(&["token"]).or(s(&["extra", "token"])).unwrap();
            let receive_id = s(&["appid"]).or(s(&["receiveid_corpid"])).unwrap_or("");
            let query = v.get("query_decoded").or(v.get("query"));
            let q = |key: &str| query.and_then(|q| q.get(key)).and_then(|x| x.as_str());
            let mut assertions = 0;
            if let Some(expected) = s(&["expected_signature"]) {
                let parts = [s(&["timestamp"]).unwrap(), s(&["nonce"]).unwrap()];
                assert_eq!(signature_hex(&[token, parts[0], parts[1]]), expected);
                assert_eq!(matching_token(&[token], &parts, expected), Some(0));
                let negative = s(&["negative", "signature"]).unwrap();
                assert_eq!(matching_token(&[token], &parts, negative), None);
                assertions += 1;
            }
            let ciphertext = s(&["body_xml"])
                .map(|xml| cdata(xml, "Encrypt"))
                .or(q("echostr").map(str::to_owned));
            if let (Some(ciphertext), Some(signature)) = (&ciphertext, q("msg_signature")) {
                let (timestamp, nonce) = (q("timestamp").unwrap(), q("nonce").unwrap());
                assert_eq!(
                    matching_token(&[token], &[timestamp, nonce, ciphertext], signature),
                    Some(0),
                    "{v}"
                );
                if let Some(plain) = s(&["query_plain_signature_derived"]) {
                    assert_eq!(signature_hex(&[token, timestamp, nonce]), plain);
                }
                if let Some(bad_nonce) = s(&["negative", "nonce"]) {
                    assert_eq!(
                        matching_token(&[token], &[timestamp, bad_nonce, ciphertext], signature),
                        None
                    );
                }
                let decrypted = decrypt(
                    &key(s(&["encoding_aes_key"]).unwrap()),
                    ciphertext,
                    receive_id,
                )
                .unwrap();
                let expected_message =
                    s(&["expected", "plaintext_xml"]).or(s(&["expected", "response_body"]));
                assert_eq!(Some(decrypted.message.as_str()), expected_message);
                assert_eq!(s(&["expected", "receiveid"]), Some(receive_id));
                if let Some(random) = s(&["expected", "random16_ascii"]) {
                    assert_eq!(&decrypted.random, random.as_bytes());
                }
                if let Some(pad) = n(&["expected", "pkcs7_pad_value"]) {
                    assert_eq!(u64::from(decrypted.pad), pad);
                }
                if let Some(len) = n(&["expected", "msg_len"]) {
                    assert_eq!(decrypted.message.len() as u64, len);
                }
                assertions += 1;
            }
            if let Some(expected) = s(&["expected_encrypt_b64"]) {
                let random: [u8; 16] = s(&["random16"]).unwrap().as_bytes().try_into().unwrap();
                let k = key(s(&["encoding_aes_key"]).unwrap());
                assert_eq!(
                    encrypt(
                        &k,
                        &random,
                        s(&["plaintext"]).unwrap().as_bytes(),
                        receive_id
                    )
                    .unwrap(),
                    expected
                );
                let e = |key: &str| s(&["extra", key]).unwrap();
                let signature = signature_hex(&[token, e("timestamp"), e("nonce"), expected]);
                assert_eq!(signature, e("derived_msg_signature_for_this_encrypt"));
                assertions += 1;
            }
            assert!(assertions > 0, "vector {} is not checked", v["id"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

/// Encrypts raw block-aligned bytes, to build plaintexts the real encoder never produces.
fn encrypt_raw(key: &AesKey, plain: &[u8]) -> String {
    let mut buffer = plain.to_vec();
    let length = buffer.len();
    let cipher = key
        .encryptor()
        .encrypt_padded_mut::<NoPadding>(&mut buffer, length)
        .unwrap();
    STANDARD.encode(cipher)
}

fn frame(msg: &[u8], receive_id: &[u8], declared_len: u32) -> Vec<u8> {
    let mut plain = b"0123456789abcdef".to_vec();
    plain.extend_from_slice(&declared_len.to_be_bytes());
    plain.extend_from_slice(msg);
    plain.extend_from_slice(receive_id);
    plain
}

fn padded(mut plain: Vec<u8>, pad: u8, count: usize) -> Vec<u8> {
    plain.extend(std::iter::repeat_n(pad, count));
    plain
}

#[test]
fn each_malformed_ciphertext_has_its_own_error() {
    let k = key(OA_KEY);
    assert_eq!(
        decrypt(&k, "not base64!", "id"),
        Err(DecryptError::CiphertextNotBase64)
    );
    assert_eq!(decrypt(&k, "", "id"), Err(DecryptError::CiphertextLength));
    assert_eq!(
        decrypt(&k, &STANDARD.encode([0u8; 20]), "id"),
        Err(DecryptError::CiphertextLength)
    );
    // 28 + 4 = 32 bytes with pad 0, pad 33 and pad 4 with one differing byte.
    let body = frame(b"hello", b"id1", 5);
    assert_eq!(body.len(), 28);
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &padded(body.clone(), 0, 4)), "id1"),
        Err(DecryptError::BadPadding)
    );
    let mut plain = padded(body.clone(), 4, 4);
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &plain), "id1")
            .unwrap()
            .message,
        "hello"
    );
    plain[28] = 3;
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &plain), "id1"),
        Err(DecryptError::BadPadding)
    );
    let mut pad_33 = body.clone();
    pad_33.resize(63, 0);
    pad_33.push(33);
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &pad_33), "id1"),
        Err(DecryptError::BadPadding)
    );
    // A 16-byte plaintext padded with 32: the pad is longer than the plaintext.
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &[32u8; 16]), "id1"),
        Err(DecryptError::BadPadding)
    );
    // A full 32-byte block of padding leaves nothing for the header.
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &[32u8; 32]), "id1"),
        Err(DecryptError::LengthOutOfRange)
    );
    // The length field points past the end.
    let long = padded(frame(b"hello", b"id1", 9), 4, 4);
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &long), "id1"),
        Err(DecryptError::LengthOutOfRange)
    );
    let huge = padded(frame(b"hello", b"id1", u32::MAX), 4, 4);
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &huge), "id1"),
        Err(DecryptError::LengthOutOfRange)
    );
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &padded(body.clone(), 4, 4)), "id2"),
        Err(DecryptError::ReceiveIdMismatch)
    );
    let not_utf8 = padded(frame(b"hell\xff", b"id1", 5), 4, 4);
    assert_eq!(
        decrypt(&k, &encrypt_raw(&k, &not_utf8), "id1"),
        Err(DecryptError::NotUtf8)
    );
}

#[test]
fn pad_values_cover_1_to_32() {
    let k = key(WECOM_KEY);
    let mut seen = std::collections::BTreeSet::new();
    for len in 0..=100usize {
        let message = "x".repeat(len);
        let decrypted = decrypt(
            &k,
            &encrypt(&k, b"RANDOMRANDOMRAND", message.as_bytes(), "corp").unwrap(),
            "corp",
        )
        .unwrap();
        seen.insert(decrypted.pad);
    }
    assert_eq!(seen, (1..=32).collect());
}

#[test]
fn round_trip_for_lengths_0_to_100_and_multibyte_text() {
    let k = key(OA_KEY);
    let random = *b"0123456789abcdef";
    for len in 0..=100usize {
        for unit in ["a", "é", "中", "🦀"] {
            let message: String = unit.repeat(len);
            for receive_id in ["", "wx2c2769f8efd9abc2"] {
                let encrypted = encrypt(&k, &random, message.as_bytes(), receive_id).unwrap();
                let decrypted = decrypt(&k, &encrypted, receive_id).unwrap();
                assert_eq!(decrypted.message, message);
                assert_eq!(decrypted.random, random);
                assert_eq!(STANDARD.decode(&encrypted).unwrap().len() % PAD_BLOCK, 0);
            }
        }
    }
}

#[test]
fn passive_reply_decrypts_and_verifies() {
    let k = key(WECOM_KEY);
    let reply = PassiveReply {
        key: &k,
        token: "QDG6eK",
        receive_id: WECOM_CORP,
        timestamp: "1409659813",
        nonce: "1372623149",
        random: b"0960688932c47ef1",
    };
    let xml = reply.xml(WECOM_PLAINTEXT).unwrap();
    // Same random and plaintext as the official sample, so the ciphertext and signature are the sample's.
    assert_eq!(
            xml,
            format!(
                "<xml><Encrypt><![CDATA[{WECOM_ENCRYPT}]]></Encrypt><MsgSignature><![CDATA[477715d11cdb4164915debcba66cb864d751f3e6]]></MsgSignature><TimeStamp>1409659813</TimeStamp><Nonce><![CDATA[1372623149]]></Nonce></xml>"
            )
        );
    let json: serde_json::Value =
        serde_json::from_str(&reply.json("{\"msgtype\":\"text\"}").unwrap()).unwrap();
    let encrypted = json["encrypt"].as_str().unwrap();
    assert_eq!(
        decrypt(&k, encrypted, WECOM_CORP).unwrap().message,
        "{\"msgtype\":\"text\"}"
    );
    assert_eq!(
        json["msgsignature"].as_str().unwrap(),
        signature_hex(&["QDG6eK", "1409659813", "1372623149", encrypted])
    );
}

proptest! {
    #[test]
    fn decrypt_never_panics_on_any_string(text in ".*", receive_id in ".{0,20}") {
        let _ = decrypt(&key(OA_KEY), &text, &receive_id);
    }

    #[test]
    fn decrypt_never_panics_on_any_block_aligned_plaintext(
        blocks in proptest::collection::vec(any::<[u8; 16]>(), 0..8),
        receive_id in "[a-z0-9]{0,20}",
    ) {
        let k = key(WECOM_KEY);
        let plain: Vec<u8> = blocks.concat();
        let _ = decrypt(&k, &encrypt_raw(&k, &plain), &receive_id);
    }

    #[test]
    fn decrypt_inverts_encrypt(message in any::<String>(), random in any::<[u8; 16]>(), receive_id in "[ -~]{0,24}") {
        let k = key(WECHATPY_KEY);
        let decrypted = decrypt(&k, &encrypt(&k, &random, message.as_bytes(), &receive_id).unwrap(), &receive_id).unwrap();
        prop_assert_eq!(decrypted.message, message);
        prop_assert_eq!(decrypted.random, random);
    }

    #[test]
    fn decrypt_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decrypt(&key(OA_KEY), &STANDARD.encode(&bytes), "wx2c2769f8efd9abc2");
    }

    #[test]
    fn key_decoding_never_panics(text in ".{0,60}") {
        let _ = AesKey::from_encoding_aes_key(&text);
    }
}
