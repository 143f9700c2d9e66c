//! RS256 JSON Web Tokens (RFC 7515/7519), as LINE WORKS' service-account grant asks for: header
//! `{"alg":"RS256","typ":"JWT"}`, the claims given, signed with RSASSA-PKCS1-v1_5 over SHA-256 by the account's
//! PEM private key. PKCS#1 v1.5 signatures are deterministic: no random source is needed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::Value;
use sha2::Sha256;

/// The private key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the private key is not an RSA key in PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)")]
pub struct InvalidPrivateKey;

/// The key as stored: the downloaded file's text. A value pasted into a one-line environment variable with
/// `\n` escapes instead of line breaks is read the same.
fn parse_key(pem: &str) -> Result<RsaPrivateKey, InvalidPrivateKey> {
    let unescaped;
    let pem = if pem.contains('\n') {
        pem.trim()
    } else {
        unescaped = pem.trim().replace("\\n", "\n");
        &unescaped
    };
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| InvalidPrivateKey)
}

/// `base64url(header).base64url(claims).base64url(signature)`.
pub fn sign_rs256(claims: &Value, private_key_pem: &str) -> Result<String, InvalidPrivateKey> {
    let key = parse_key(private_key_pem)?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature = SigningKey::<Sha256>::new(key)
        .try_sign(signing_input.as_bytes())
        .map_err(|_| InvalidPrivateKey)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use rsa::RsaPublicKey;
    use serde_json::json;

    use super::*;

    /// The committed test key (fixtures/lineworks/keys: a key of no LINE WORKS app).
    pub(crate) const TEST_PRIVATE_KEY: &str =
        include_str!("../../../../fixtures/lineworks/keys/test-private-key.pem");
    const TEST_PUBLIC_KEY: &str =
        include_str!("../../../../fixtures/lineworks/keys/test-public-key.pem");

    /// Checks `jwt`'s RS256 signature with the test public key and returns its header and claims.
    pub(crate) fn verified(jwt: &str) -> (Value, Value) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "{jwt}");
        let public = RsaPublicKey::from_public_key_pem(TEST_PUBLIC_KEY).unwrap();
        let signature =
            Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
        VerifyingKey::<Sha256>::new(public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies with the public key");
        let decode =
            |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        (decode(parts[0]), decode(parts[1]))
    }

    #[test]
    fn a_jwt_is_signed_with_the_private_key_and_verifies_with_the_public_key() {
        let claims = json!({"iss":"client","sub":"bot.serviceaccount@example","iat":1,"exp":3601});
        let jwt = sign_rs256(&claims, TEST_PRIVATE_KEY).unwrap();
        let (header, read) = verified(&jwt);
        assert_eq!(header, json!({"alg":"RS256","typ":"JWT"}));
        assert_eq!(read, claims);
        // Deterministic (PKCS#1 v1.5): the same claims, the same token.
        assert_eq!(sign_rs256(&claims, TEST_PRIVATE_KEY).unwrap(), jwt);
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let jwt = sign_rs256(&json!({"sub":"a"}), TEST_PRIVATE_KEY).unwrap();
        let forged = jwt.replacen(
            jwt.split('.').nth(1).unwrap(),
            &URL_SAFE_NO_PAD.encode(r#"{"sub":"b"}"#),
            1,
        );
        let result = std::panic::catch_unwind(|| verified(&forged));
        assert!(result.is_err());
    }

    #[test]
    fn escaped_line_breaks_are_read_and_broken_keys_refused() {
        let one_line = TEST_PRIVATE_KEY.trim().replace('\n', "\\n");
        let claims = json!({"sub":"a"});
        assert_eq!(
            sign_rs256(&claims, &one_line).unwrap(),
            sign_rs256(&claims, TEST_PRIVATE_KEY).unwrap()
        );
        assert_eq!(
            sign_rs256(
                &claims,
                "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
            ),
            Err(InvalidPrivateKey)
        );
        assert_eq!(sign_rs256(&claims, ""), Err(InvalidPrivateKey));
    }
}
