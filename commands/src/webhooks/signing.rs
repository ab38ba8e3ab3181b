//! Standard Webhooks signing: `whsec_` secrets, `v1,` HMAC-SHA256 signatures
//! and the headers of one attempt. Pure: no IO, no clock (the timestamp is
//! an argument).

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

/// First 8 hex digits of the secret's SHA-256: names a secret in events and
/// views without revealing it.
pub fn fingerprint(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..4])
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, or `None` for a
/// malformed secret.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The headers of one attempt: `webhook-id` (the same on every attempt),
/// `webhook-timestamp` (this attempt, Unix seconds) and `webhook-signature`
/// (one signature per live secret, current first, space-separated; a
/// malformed secret signs nothing).
pub fn headers(secrets: &[String], message_id: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let signatures: Vec<String> = secrets.iter().filter_map(|s| sign(s, message_id, timestamp, body)).collect();
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("user-agent".to_owned(), "chargeledger-webhooks/1".to_owned()),
        ("webhook-id".to_owned(), message_id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), signatures.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MESSAGE: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference library's tests.
        let signature = sign(SECRET, MESSAGE, 1_649_367_553, BODY);
        assert_eq!(signature.as_deref(), Some("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="));
        assert!(sign("not-a-secret", "m", 1, b"x").is_none());
        let secret = new_secret();
        assert!(secret.starts_with("whsec_") && STANDARD.decode(&secret[6..]).map(|k| k.len()) == Ok(32));
        assert_eq!(fingerprint(&secret).len(), 8);
    }

    #[test]
    fn given_two_live_secrets_when_signing_then_both_sign_current_first() {
        let other = new_secret();
        let secrets = [SECRET.to_owned(), other.clone(), "not-a-secret".to_owned()];
        let headers = headers(&secrets, MESSAGE, 1_649_367_553, BODY);
        assert_eq!(header(&headers, "webhook-id"), Some(MESSAGE));
        assert_eq!(header(&headers, "webhook-timestamp"), Some("1649367553"));
        let expected = format!(
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw= {}",
            sign(&other, MESSAGE, 1_649_367_553, BODY).unwrap_or_default()
        );
        assert_eq!(header(&headers, "webhook-signature"), Some(expected.as_str()));
    }
}
