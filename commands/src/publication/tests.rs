use serde_json::{json, Value};

use super::*;

fn redactor() -> Redactor {
    Redactor::new(b"0123456789abcdef0123456789abcdef")
}

fn text(v: &Value) -> String {
    v.to_string()
}

#[test]
fn session_start_hides_cpf_and_email_and_pseudonymizes_the_tag() {
    let r = redactor();
    let p = json!({"sessionId": "s", "email": "driver@company.com", "cpf": "529.982.247-25", "idTag": "CL00000001",
                   "tariff": {"pricePerKwh": "1.5"}});
    let out = r.publish("charge_session.started", &p);
    assert_eq!((out["email"].clone(), out["cpf"].clone()), (Value::Null, Value::Null));
    assert_eq!(out["idTag"], r.pseudonym("CL00000001"));
    assert_eq!(out["tariff"], p["tariff"]);
    assert!(out["idTag"].as_str().unwrap().starts_with("tag_") && out["idTag"].as_str().unwrap().len() == 20);
    // The same tag in a charger event gets the same pseudonym; another key, another one.
    let started = r.publish("charger.transaction_started", &json!({"idTag": "CL00000001"}));
    assert_eq!(started["idTag"], out["idTag"]);
    assert_ne!(Redactor::new(&[7u8; 32]).pseudonym("CL00000001"), r.pseudonym("CL00000001"));
    assert_ne!(r.pseudonym("CL00000002"), r.pseudonym("CL00000001"));
}

#[test]
fn unknown_event_types_are_scanned_by_key() {
    let r = redactor();
    let p = json!({"terminalId": "T", "passwordHash": "$argon2id$v=19$abc", "nested": [{"email": "a@b.io", "idTag": "TAG-777"}]});
    let out = r.publish("terminal.password_rotated", &p);
    assert_eq!(out["passwordHash"], Value::Null);
    assert_eq!(out["nested"][0]["email"], Value::Null);
    assert_eq!(out["nested"][0]["idTag"], r.pseudonym("TAG-777"));
    assert_eq!(out["terminalId"], "T");
    // The existing private field stays null.
    assert_eq!(r.publish("terminal.registered", &json!({"passwordHash": "$argon2id$x"}))["passwordHash"], Value::Null);
    // Events without personal data pass unchanged.
    let plain = json!({"energyWh": 10, "at": "2026-01-01T00:00:00Z", "messageId": "<a1b2@chargeledger.local>"});
    assert_eq!(r.publish("charge_session.charging_stopped", &plain), plain);
}

#[test]
fn ocpp_commands_and_answers_hide_configuration_secrets_and_tags() {
    let r = redactor();
    let change =
        json!({"action": "ChangeConfiguration", "payload": {"key": "AuthorizationKey", "value": "0011223344556677"}});
    let out = r.publish("ocpp_command.requested", &change);
    assert_eq!(out["payload"], json!({"key": "AuthorizationKey", "value": REDACTED}));
    let harmless = json!({"payload": {"key": "HeartbeatInterval", "value": "300"}});
    assert_eq!(r.publish("ocpp_command.requested", &harmless), harmless);
    let set = json!({"payload": {"setVariableData": [
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}, "attributeValue": "s3cr3t-pass-2"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeValue": "60"}]}});
    let out = r.publish("ocpp_command.requested", &set);
    assert_eq!(out["payload"]["setVariableData"][0]["attributeValue"], REDACTED);
    assert_eq!(out["payload"]["setVariableData"][1]["attributeValue"], "60");
    let start = json!({"payload": {"connectorId": 1, "idTag": "CL00000001"}});
    assert_eq!(r.publish("ocpp_command.requested", &start)["payload"]["idTag"], r.pseudonym("CL00000001"));
    let answer = json!({"response": {"configurationKey": [{"key": "AuthorizationKey", "readonly": false, "value": "0011223344556677"},
        {"key": "MeterValueSampleInterval", "readonly": false, "value": "60"}], "unknownKey": []}});
    let out = r.publish("ocpp_command.answered", &answer);
    assert_eq!(out["response"]["configurationKey"][0]["value"], REDACTED);
    assert_eq!(out["response"]["configurationKey"][1]["value"], "60");
    let report = json!({"reportData": [{"variable": {"name": "BasicAuthPassword"}, "variableAttribute": [{"value": "pw-1234567"}]}]});
    assert_eq!(r.ocpp_payload(&report)["reportData"][0]["variableAttribute"][0]["value"], REDACTED);
}

#[test]
fn raw_frames_are_parsed_redacted_and_reserialized() {
    let r = redactor();
    let frame = |raw: &str| {
        json!({"direction": "in", "action": "Authorize", "raw": raw,
        "rejection": {"code": "FormatViolation", "description": "\"CL00000001\" is too long"}})
    };
    let out = r.publish("ocpp.frame_received", &frame(r#"[2,"m1","Authorize",{"idTag":"CL00000001"}]"#));
    let raw = out["raw"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(raw).unwrap();
    assert_eq!(parsed, json!([2, "m1", "Authorize", {"idTag": r.pseudonym("CL00000001")}]));
    assert!(!text(&out).contains("CL00000001"), "{out}");
    // 2.0.1 id tokens, in and out.
    let tx = r#"[2,"m2","TransactionEvent",{"idToken":{"idToken":"04A1B2C3D4","type":"ISO14443"},"seqNo":0}]"#;
    let out = r.publish("ocpp.frame_received", &json!({"raw": tx}));
    assert!(!text(&out).contains("04A1B2C3D4") && text(&out).contains(&r.pseudonym("04A1B2C3D4")), "{out}");
    let sent = r#"[2,"m3","ChangeConfiguration",{"key":"AuthorizationKey","value":"0011223344556677"}]"#;
    let out = r.publish("ocpp.frame_sent", &json!({"raw": sent}));
    assert!(!text(&out).contains("0011223344556677"), "{out}");
    let result =
        r#"[3,"m4",{"configurationKey":[{"key":"AuthorizationKey","readonly":false,"value":"0011223344556677"}]}]"#;
    assert!(!text(&r.publish("ocpp.frame_received", &json!({"raw": result}))).contains("0011223344556677"));
    // Text that is not JSON is withheld.
    let out = r.publish("ocpp.frame_received", &json!({"raw": "[2,\"m5\",\"Authorize\",{\"idTag\":\"CL00000001\""}));
    assert_eq!(out["raw"], Value::Null);
}

#[test]
fn gateway_bodies_lose_the_payer() {
    let r = redactor();
    let request = json!({"customer": {"name": "driver@company.com", "email": "driver@company.com", "document": "[redacted]",
        "type": "individual", "code": "cust-1", "phones": {"mobile_phone": {"number": "999999999"}}},
        "payments": [{"credit_card": {"card_token": "[redacted]"}, "amount": 5000}]});
    let out = r.publish(
        "payment_intent.gateway_exchanged",
        &json!({"request": request, "response": {"id": "or_1",
        "customer": {"document": "52998224725"}, "notes": "12345678909"}}),
    );
    let t = text(&out);
    for needle in ["driver@company.com", "52998224725", "12345678909", "999999999"] {
        assert!(!t.contains(needle), "{needle} in {t}");
    }
    assert_eq!(out["request"]["customer"]["code"], "cust-1");
    assert_eq!(out["request"]["payments"][0]["amount"], 5000);
    let created = json!({"customer": {"customerId": "cust-1", "name": "Ana", "email": "a@b.io", "cpf": "52998224725"}});
    let out = r.publish("payment_intent.created", &created);
    assert_eq!(out["customer"], json!({"customerId": "cust-1", "name": null, "email": null, "cpf": null}));
}

#[test]
fn webhook_bodies_use_the_same_redaction() {
    let r = redactor();
    let at = chrono::Utc::now();
    let body =
        webhook_body(&r, "charge_session.started", Uuid::nil(), at, "charge_session-1", &json!({"cpf": "52998224725"}));
    assert_eq!(body["data"], json!({"cpf": null}));
    assert_eq!(
        (body["type"].as_str(), body["subject"].as_str()),
        (Some("charge_session.started"), Some("charge_session-1"))
    );
    assert!(format!("{r:?}").contains(".."), "the key is not shown");
    assert!(
        secret_looking("AuthorizationKey") && secret_looking("BasicAuthPassword") && secret_looking("MqttPassword")
    );
    assert!(!secret_looking("HeartbeatInterval") && !secret_looking("AuthorizeRemoteTxRequests"));
}

#[test]
fn addresses_and_cpfs_quoted_inside_free_text_are_hidden() {
    let r = redactor();
    let failed = json!({"reason": "550 5.1.1 <driver@company.com>: Recipient address rejected", "attempt": 1});
    let out = r.publish("charge_session.receipt_failed", &failed);
    let reason = out["reason"].as_str().unwrap();
    assert!(!reason.contains("driver@company.com"), "{reason}");
    assert!(reason.starts_with("550 5.1.1 <") && reason.ends_with(">: Recipient address rejected"), "{reason}");
    let described = json!({"description": "idTag of CPF 529.982.247-25 refused, write to ops@cpo.example."});
    let out = text(&r.publish("ocpp_command.failed", &described));
    assert!(!out.contains("529.982.247-25") && !out.contains("ops@cpo.example"), "{out}");
    // Text without personal data is left as it is (an invalid CPF is just digits).
    let plain = json!({"description": "timeout after 30 s (111.111.111-12)"});
    assert_eq!(r.publish("ocpp_command.failed", &plain), plain);
}
