//! Payment gateways behind the [`commands::payments::port::PaymentGateway`] port:
//! Pagar.me V5 and the simulator (the default for demos).

pub mod pagarme;
pub mod simulator;

use serde_json::{Map, Value};

/// Keys whose values never reach the log: card data, wallet tokens, documents.
const SECRET_KEYS: &[&str] = &[
    "card_token",
    "card_id",
    "payload",
    "cvv",
    "number",
    "document",
    "holder_document",
    "token",
    "google_pay",
    "apple_pay",
];

/// A copy of `value` with card data, tokens and documents removed; a `card`
/// object keeps only its brand and last four digits.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let redacted = if SECRET_KEYS.contains(&k.as_str()) {
                    Value::String("[redacted]".into())
                } else if k == "card" && v.is_object() {
                    let keep: Map<String, Value> = v
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| matches!(k.as_str(), "last_four_digits" | "brand"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Value::Object(keep)
                } else {
                    redact(v)
                };
                out.insert(k.clone(), redacted);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn redaction_removes_card_data_and_documents() {
        let body = json!({"customer": {"document": "52998224725", "email": "a@b.c"}, "payments": [{"credit_card": {"card_token": "tok_1", "card": {"number": "4111", "last_four_digits": "1111", "brand": "Visa", "holder_name": "A"}}}]});
        let r = super::redact(&body);
        assert_eq!(r["customer"]["document"], "[redacted]");
        assert_eq!(r["payments"][0]["credit_card"]["card_token"], "[redacted]");
        assert_eq!(r["payments"][0]["credit_card"]["card"], json!({"last_four_digits": "1111", "brand": "Visa"}));
        assert!(!r.to_string().contains("4111\""));
    }
}
