//! Given / when / then tests of webhook verification and parsing, with key pairs
//! made for these tests only (`../fixtures`).
#![allow(clippy::unwrap_used)]

use axum::http::{HeaderMap, HeaderValue};
use base64::{engine::general_purpose, Engine};
use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

const TRUSTED_PRIVATE: &str = include_str!("../fixtures/webhook-trusted-private.pem");
const TRUSTED_PUBLIC: &str = include_str!("../fixtures/webhook-trusted-public.pem");
const OTHER_PRIVATE: &str = include_str!("../fixtures/webhook-other-private.pem");
const OTHER_PUBLIC: &str = include_str!("../fixtures/webhook-other-public.pem");

const BODY: &[u8] = br#"{"id":"hook_1","type":"charge.paid","data":{"id":"ch_1","status":"paid"}}"#;

/// The header value Pagar.me sends: standard base64 of the RS256 signature.
fn sign(private_pem: &str, body: &[u8]) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let url_safe = jsonwebtoken::crypto::sign(body, &key, Algorithm::RS256).unwrap();
    general_purpose::STANDARD.encode(general_purpose::URL_SAFE_NO_PAD.decode(url_safe).unwrap())
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[test]
fn nothing_configured_refuses_every_webhook() {
    // Given a verifier with neither credentials nor keys,
    let verifier = WebhookVerifier::new(None, None);
    // when a webhook arrives, even a signed one with credentials, then it is refused.
    let h = headers(&[
        ("authorization", &basic("pagarme", "s3cret")),
        ("x-webhook-asymmetric-signature", &sign(TRUSTED_PRIVATE, BODY)),
    ]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::NotConfigured)));
}

#[test]
fn basic_auth_accepts_the_configured_credentials_only() {
    // Given Basic credentials configured,
    let verifier = WebhookVerifier::new(Some(("pagarme", "s3cret")), None);
    // when they are sent, then the webhook is accepted, whatever the body.
    let h = headers(&[("authorization", &basic("pagarme", "s3cret"))]);
    assert!(verifier.verify(&h, BODY).is_ok());
    assert!(verifier.verify(&h, b"anything").is_ok());
    // When they are wrong, partial, of another scheme or missing, then it is refused.
    for given in
        [basic("pagarme", "wrong"), basic("other", "s3cret"), basic("pagarme", "s3cre"), "Bearer s3cret".into()]
    {
        let h = headers(&[("authorization", &given)]);
        assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::BasicMismatch)), "{given}");
    }
    assert!(matches!(verifier.verify(&HeaderMap::new(), BODY), Err(WebhookError::BasicMismatch)));
}

#[test]
fn a_signature_by_a_configured_key_over_the_exact_body_is_accepted() {
    // Given the trusted public key configured,
    let verifier = WebhookVerifier::new(None, Some(TRUSTED_PUBLIC));
    // when the body is signed with its private key (standard base64), then it is accepted;
    let signature = sign(TRUSTED_PRIVATE, BODY);
    assert!(verifier.verify(&headers(&[("x-webhook-asymmetric-signature", &signature)]), BODY).is_ok());
    // and so is the same signature URL-safe, or with a `sha256=` prefix and spaces.
    let url_safe = general_purpose::URL_SAFE_NO_PAD.encode(general_purpose::STANDARD.decode(&signature).unwrap());
    for given in [url_safe, format!(" sha256={signature} ")] {
        assert!(verifier.verify(&headers(&[("x-webhook-asymmetric-signature", &given)]), BODY).is_ok(), "{given}");
    }
}

#[test]
fn a_signature_of_another_body_or_by_another_key_is_refused() {
    let verifier = WebhookVerifier::new(None, Some(TRUSTED_PUBLIC));
    // Given a signature of a different body, when it comes with this body, then it is refused.
    let h = headers(&[("x-webhook-asymmetric-signature", &sign(TRUSTED_PRIVATE, b"a different body"))]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::SignatureMismatch)));
    // Given a signature by a key that is not configured, then it is refused.
    let h = headers(&[("x-webhook-asymmetric-signature", &sign(OTHER_PRIVATE, BODY))]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::SignatureMismatch)));
}

#[test]
fn a_missing_or_undecodable_signature_is_refused() {
    let verifier = WebhookVerifier::new(None, Some(TRUSTED_PUBLIC));
    // Given no signature header, then the webhook is refused as unsigned.
    assert!(matches!(verifier.verify(&HeaderMap::new(), BODY), Err(WebhookError::SignatureMissing)));
    // Given a signature that is not base64, then it is refused as undecodable.
    let h = headers(&[("x-webhook-asymmetric-signature", "not-base64!")]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::SignatureEncoding)));
    // Given base64 that is no signature at all, then no key verifies it.
    let h = headers(&[("x-webhook-asymmetric-signature", "AAAA")]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::SignatureMismatch)));
}

#[test]
fn during_a_key_rotation_either_key_verifies_and_unreadable_blocks_are_skipped() {
    // Given two public keys and a broken block in one PEM,
    let pem = format!("-----BEGIN PUBLIC KEY-----\nbroken\n-----END PUBLIC KEY-----\n{OTHER_PUBLIC}{TRUSTED_PUBLIC}");
    let verifier = WebhookVerifier::new(None, Some(&pem));
    // when the body is signed by either key, then it is accepted.
    for private in [TRUSTED_PRIVATE, OTHER_PRIVATE] {
        assert!(verifier.verify(&headers(&[("x-webhook-asymmetric-signature", &sign(private, BODY))]), BODY).is_ok());
    }
    // Given a PEM with no usable key, then every signature fails.
    let verifier = WebhookVerifier::new(None, Some("not a key"));
    let h = headers(&[("x-webhook-asymmetric-signature", &sign(TRUSTED_PRIVATE, BODY))]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::SignatureMismatch)));
}

#[test]
fn with_both_configured_both_must_pass() {
    let verifier = WebhookVerifier::new(Some(("pagarme", "s3cret")), Some(TRUSTED_PUBLIC));
    let (good_basic, good_signature) = (basic("pagarme", "s3cret"), sign(TRUSTED_PRIVATE, BODY));
    // Given right credentials and a right signature, then the webhook is accepted.
    let h = headers(&[("authorization", &good_basic), ("x-webhook-asymmetric-signature", &good_signature)]);
    assert!(verifier.verify(&h, BODY).is_ok());
    // Given only one of them right, then it is refused.
    let h = headers(&[("x-webhook-asymmetric-signature", &good_signature)]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::BasicMismatch)));
    let h = headers(&[("authorization", &good_basic)]);
    assert!(matches!(verifier.verify(&h, BODY), Err(WebhookError::SignatureMissing)));
    // And the debug form never shows the credentials.
    assert!(!format!("{verifier:?}").contains(&good_basic[6..]));
}

#[test]
fn verification_failures_are_unauthenticated_and_body_failures_are_not() {
    for e in [
        WebhookError::NotConfigured,
        WebhookError::BasicMismatch,
        WebhookError::SignatureMissing,
        WebhookError::SignatureEncoding,
        WebhookError::SignatureMismatch,
    ] {
        assert!(e.is_unauthenticated(), "{e}");
    }
    assert!(!WebhookError::MissingId.is_unauthenticated());
    assert!(!parse(b"{").unwrap_err().is_unauthenticated());
}

#[test]
fn a_charge_webhook_names_its_charge_and_keeps_a_redacted_body() {
    // Given a charge.paid hook carrying card data,
    let body = json!({"id": "hook_1", "type": "charge.paid",
        "data": {"id": "ch_1", "last_transaction": {"card": {"last_four_digits": "1111", "brand": "Visa", "holder_name": "A"}}}});
    // when it is parsed,
    let parsed = parse(body.to_string().as_bytes()).unwrap();
    // then it names the hook, its type and the charge, and the card keeps only brand and last digits.
    assert_eq!((parsed.hook_id.as_str(), parsed.event_type.as_str()), ("hook_1", "charge.paid"));
    assert_eq!(parsed.charge_id.as_deref(), Some("ch_1"));
    assert_eq!(parsed.body["data"]["last_transaction"]["card"], json!({"last_four_digits": "1111", "brand": "Visa"}));
    // And the domain's record carries the same, at the given time.
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
    let received = parsed.clone().into_received(at);
    assert_eq!(
        (received.hook_id, received.charge_id, received.body, received.at),
        ("hook_1".into(), parsed.charge_id, parsed.body, at)
    );
}

#[test]
fn an_order_webhook_names_its_first_charge() {
    // Given an order.paid hook, when it is parsed, then the charge is the order's first.
    let body = json!({"id": "hook_2", "type": "order.paid", "data": {"id": "or_1", "charges": [{"id": "ch_9"}, {"id": "ch_10"}]}});
    let parsed = parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.charge_id.as_deref(), Some("ch_9"));
    // Given an order without charges, then it names none.
    let body = json!({"id": "hook_3", "type": "order.created", "data": {"id": "or_1"}});
    assert_eq!(parse(body.to_string().as_bytes()).unwrap().charge_id, None);
}

#[test]
fn the_event_name_may_come_as_event_and_may_be_missing() {
    // Given an older hook naming its event `event`, then that is its type.
    let parsed = parse(br#"{"id":"hook_4","event":"charge.refunded","data":{"id":"ch_2"}}"#).unwrap();
    assert_eq!((parsed.event_type.as_str(), parsed.charge_id.as_deref()), ("charge.refunded", Some("ch_2")));
    // Given a hook with no event name and no data, then its type is empty and it names no charge.
    let parsed = parse(br#"{"id":"hook_5"}"#).unwrap();
    assert_eq!((parsed.event_type.as_str(), parsed.charge_id), ("", None));
}

#[test]
fn malformed_bodies_are_refused() {
    // Given bodies that are not JSON, then they are refused as such.
    for body in [&b""[..], b"{", b"not json", b"\xff\xfe"] {
        assert!(matches!(parse(body), Err(WebhookError::InvalidJson(_))), "{body:?}");
    }
    assert!(parse(b"{").unwrap_err().to_string().starts_with("body is not valid JSON: "));
    // Given JSON without a string id (or not an object at all), then it is refused for that.
    for body in [&br#"{"type":"charge.paid"}"#[..], br#"{"id":7}"#, b"[]", br#""hook_1""#, b"null"] {
        assert!(matches!(parse(body), Err(WebhookError::MissingId)), "{body:?}");
    }
    assert_eq!(WebhookError::MissingId.to_string(), "a webhook has an id");
}
