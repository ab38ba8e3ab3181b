//! The recursive scan behind [`super::Redactor::publish`]: one pass over a
//! payload, each field handled once, by the event type's policy when it names
//! the field's path, else by the field's key; free-form bodies (OCPP payloads
//! and frames, payment gateway bodies) get the stricter checks.

use serde_json::{Map, Value};

use super::{secret_looking, Redactor, Rule, REDACTED};

/// How strict the scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Our own typed events: the policy table, then known keys.
    Typed,
    /// An OCPP payload: known keys, secret-looking keys and configuration
    /// pairs, e-mail- and CPF-shaped strings.
    Ocpp,
    /// A payment gateway body: as OCPP, plus the payer's personal fields.
    Body,
}

/// Shortest hidden value searched for elsewhere in the event (shorter ones
/// would match unrelated text).
const MIN_REPLACED: usize = 6;

/// One event's redaction: the policy of its type and what was hidden so far.
pub(super) struct Scan<'a> {
    redactor: &'a Redactor,
    policy: Vec<(&'static str, Rule)>,
    hidden: Vec<(String, String)>,
}

impl<'a> Scan<'a> {
    pub(super) fn new(redactor: &'a Redactor, policy: Vec<(&'static str, Rule)>) -> Self {
        Self { redactor, policy, hidden: Vec::new() }
    }

    /// Redacts `value` (at `path` within the event).
    pub(super) fn walk(&mut self, value: &mut Value, mode: Mode, path: &str) {
        match value {
            Value::Object(map) => {
                if mode != Mode::Typed {
                    self.configuration(map);
                }
                for (key, child) in map.iter_mut() {
                    let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    let by_policy = match mode {
                        Mode::Typed => self.policy.iter().find(|(p, _)| *p == child_path).map(|(_, r)| *r),
                        _ => None,
                    };
                    match by_policy.or_else(|| key_rule(key, mode)) {
                        Some(rule) => self.apply(rule, child, mode),
                        None => self.walk(child, mode, &child_path),
                    }
                }
            }
            Value::Array(items) => {
                let item_path = format!("{path}[]");
                for item in items {
                    self.walk(item, mode, &item_path);
                }
            }
            Value::String(s) if looks_personal(s) => {
                let original = std::mem::replace(s, REDACTED.to_owned());
                self.remember(&original, REDACTED);
            }
            // Free text (an SMTP reply, a charger's error description) may quote
            // an address or a CPF inside it. Identifiers (a receipt's
            // `<id@host>` Message-ID) have no white space and stay as they are.
            Value::String(s) if s.contains(char::is_whitespace) => {
                if let Some(scrubbed) = scrub_embedded(s) {
                    *s = scrubbed;
                }
            }
            _ => {}
        }
    }

    /// Applies `rule` to a field found in `mode`.
    pub(super) fn apply(&mut self, rule: Rule, slot: &mut Value, mode: Mode) {
        match rule {
            Rule::Drop => {
                self.remember_all(slot, REDACTED);
                // Typed fields become null; inside a foreign body the type stays a string.
                *slot =
                    if mode == Mode::Typed || slot.is_null() { Value::Null } else { Value::String(REDACTED.into()) };
            }
            Rule::Pseudonym => match slot {
                Value::String(s) if !s.is_empty() => {
                    let pseudonym = self.redactor.pseudonym(s);
                    let original = std::mem::replace(s, pseudonym.clone());
                    self.remember(&original, &pseudonym);
                }
                Value::Object(_) | Value::Array(_) => self.walk(slot, mode, ""),
                _ => {}
            },
            Rule::OcppPayload => self.walk(slot, Mode::Ocpp, ""),
            Rule::GatewayBody => self.walk(slot, Mode::Body, ""),
            Rule::OcppFrame => {
                let frame = slot.as_str().and_then(|raw| serde_json::from_str::<Value>(raw).ok());
                *slot = match frame {
                    Some(mut frame) => {
                        // [2, id, action, payload] / [3, id, payload] / [4, id, code, text, details]
                        self.walk(&mut frame, Mode::Ocpp, "");
                        serde_json::to_string(&frame).map(Value::String).unwrap_or(Value::Null)
                    }
                    // Text that is not JSON cannot be checked: it is withheld.
                    None => {
                        self.remember_all(slot, REDACTED);
                        Value::Null
                    }
                };
            }
        }
    }

    /// OCPP configuration: 1.6 `{key, value}` (ChangeConfiguration,
    /// GetConfiguration's `configurationKey[]`), 2.0.1 `{variable: {name},
    /// attributeValue}` (SetVariables, GetVariables) and `variableAttribute[].value`
    /// (NotifyReport): the value of a secret-looking name is `[redacted]`.
    fn configuration(&mut self, map: &mut Map<String, Value>) {
        let secret_key = map.get("key").and_then(Value::as_str).is_some_and(secret_looking);
        let secret_variable =
            map.get("variable").and_then(|v| v.get("name")).and_then(Value::as_str).is_some_and(secret_looking);
        if secret_key {
            if let Some(v) = map.get_mut("value") {
                self.hide(v);
            }
        }
        if secret_variable {
            if let Some(v) = map.get_mut("attributeValue") {
                self.hide(v);
            }
            if let Some(Value::Array(attributes)) = map.get_mut("variableAttribute") {
                for attribute in attributes {
                    if let Some(v) = attribute.get_mut("value") {
                        self.hide(v);
                    }
                }
            }
        }
    }

    fn hide(&mut self, v: &mut Value) {
        if !v.is_null() {
            self.remember_all(v, REDACTED);
            *v = Value::String(REDACTED.into());
        }
    }

    fn remember(&mut self, original: &str, replacement: &str) {
        if original.chars().count() >= MIN_REPLACED
            && original != REDACTED
            && !self.hidden.iter().any(|(o, _)| o == original)
        {
            self.hidden.push((original.to_owned(), replacement.to_owned()));
        }
    }

    fn remember_all(&mut self, value: &Value, replacement: &str) {
        match value {
            Value::String(s) => self.remember(s, replacement),
            Value::Array(items) => items.iter().for_each(|v| self.remember_all(v, replacement)),
            Value::Object(map) => map.values().for_each(|v| self.remember_all(v, replacement)),
            _ => {}
        }
    }

    /// Replaces every hidden value where it reappears inside other strings of
    /// `value` (longest first, so a value containing another goes whole).
    pub(super) fn finish(mut self, value: &mut Value) {
        if self.hidden.is_empty() {
            return;
        }
        self.hidden.sort_by_key(|(o, _)| std::cmp::Reverse(o.len()));
        replace_in(value, &self.hidden);
    }
}

fn replace_in(value: &mut Value, hidden: &[(String, String)]) {
    match value {
        Value::String(s) => {
            for (original, replacement) in hidden {
                if s.contains(original.as_str()) {
                    *s = s.replace(original.as_str(), replacement);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_in(v, hidden)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_in(v, hidden)),
        _ => {}
    }
}

/// The rule of a key wherever it appears (`None`: look inside).
fn key_rule(key: &str, mode: Mode) -> Option<Rule> {
    let k: String = key.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    match k.as_str() {
        "idtag" | "parentidtag" | "idtoken" | "additionalidtoken" | "groupidtoken" => return Some(Rule::Pseudonym),
        "cpf" | "email" | "document" | "holderdocument" | "password" | "passwordhash" | "chargerpassword"
        | "cardtoken" | "networktoken" | "cardnumber" | "cvv" | "secret" | "authorizationkey" | "basicauthpassword" => {
            return Some(Rule::Drop)
        }
        _ => {}
    }
    match mode {
        Mode::Typed => None,
        Mode::Ocpp => secret_looking(key).then_some(Rule::Drop),
        Mode::Body => (secret_looking(key)
            || matches!(
                k.as_str(),
                "name"
                    | "holdername"
                    | "phone"
                    | "phones"
                    | "mobilephone"
                    | "homephone"
                    | "address"
                    | "billingaddress"
                    | "birthdate"
            ))
        .then_some(Rule::Drop),
    }
}

/// `s` with every word that is an e-mail address or a valid CPF replaced by
/// the redaction marker; `None` when there is none. Words are split at
/// white space and the punctuation text puts around addresses (`<>`, quotes,
/// brackets, commas, semicolons, colons); a sentence's final dot is trimmed.
fn scrub_embedded(s: &str) -> Option<String> {
    let separator = |c: char| c.is_whitespace() || "<>\"'()[]{},;:".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut word = String::new();
    let mut flush = |word: &mut String, out: &mut String| {
        let core = word.trim_end_matches('.');
        if !core.is_empty() && looks_personal(core) {
            out.push_str(REDACTED);
            out.push_str(&word[core.len()..]);
            changed = true;
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    changed.then_some(out)
}

/// A string that is, as a whole, an e-mail address or a valid CPF.
pub(super) fn looks_personal(s: &str) -> bool {
    email_shaped(s) || cpf_shaped(s)
}

fn email_shaped(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    s.len() <= 254
        && !local.is_empty()
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c))
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn cpf_shaped(s: &str) -> bool {
    s.len() <= 14
        && s.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && s.chars().filter(char::is_ascii_digit).count() == 11
        && domain::payment::cpf_valid(s)
}
