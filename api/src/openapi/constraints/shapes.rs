//! String shapes of the request bodies: text, tokens, ids, e-mail, CPF,
//! webhook URLs, as JSON Schema keywords, and their words for field errors.

use serde_json::{json, Value};

/// Characters no text field may hold: C0 and C1 controls but tab and line feed.
const CONTROLS: &str = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f";
/// A character that is neither a control nor white space (Unicode White_Space,
/// what Rust's `str::trim` strips; spelled out because `\s` differs between
/// regex engines).
const VISIBLE: &str = r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// The shape of a terminal (charge point) id: `TerminalId::is_shaped`.
pub const TERMINAL_ID: &str = "^[A-Za-z0-9._:-]{1,48}$";

/// The words for a pattern of this file, for a field error (a person reads
/// "not blank, no control characters" better than the regular expression).
pub fn pattern_in_words(pattern: &str) -> Option<&'static str> {
    let text = format!("^[^{CONTROLS}]*{VISIBLE}[^{CONTROLS}]*$");
    let free = format!("^[^{CONTROLS}]*$");
    let email = email();
    let cpf = cpf();
    Some(match pattern {
        p if p == text => "must be text that is not blank and holds no control characters (tab and line feed aside)",
        p if p == free => "must hold no control characters (tab and line feed aside)",
        "^[!-~]+$" => "must be visible ASCII characters",
        "^[ -~]+$" | "^[ -~]{16,40}$" => "must be printable ASCII characters (16 to 40 for a password)",
        TERMINAL_ID => "must be 1 to 48 characters from A-Z, a-z, 0-9, '.', '_', '-', ':'",
        p if Some(p) == email["pattern"].as_str() => "must be an e-mail address (name@host.domain)",
        p if Some(p) == cpf["pattern"].as_str() => "must be a CPF: 11 digits, optionally as 000.000.000-00",
        p if p == webhook_url() => "must be an http:// or https:// URL with a host name or IPv4 address",
        _ => return None,
    })
}

/// `^…$` text of 1 to `max` characters, not blank, without control characters
/// but tab and line feed (`domain::terminal::decide::text_ok`).
pub(super) fn text(max: u64) -> Value {
    json!({
        "minLength": 1,
        "maxLength": max,
        "pattern": format!("^[^{CONTROLS}]*{VISIBLE}[^{CONTROLS}]*$"),
    })
}

/// Free text of at most `max` characters (may be empty), without control
/// characters but tab and line feed.
pub(super) fn free_text(max: u64) -> Value {
    json!({"maxLength": max, "pattern": format!("^[^{CONTROLS}]*$")})
}

/// A token or key of 1 to `max` visible ASCII characters.
pub(super) fn token(max: u64) -> Value {
    json!({"minLength": 1, "maxLength": max, "pattern": "^[!-~]+$"})
}

/// An e-mail address: a dot-atom local part (ASCII atext or any non-ASCII
/// letter), `@`, a dotted host name (letters, digits, `-`, `_`, non-ASCII
/// for internationalized domains); at most 254 characters. The pattern is the
/// whole rule (no `format`, whose implementations differ between validators).
pub(super) fn email() -> Value {
    // Non-ASCII but not white space (Unicode White_Space, as `char::is_whitespace`).
    const WIDE: &str =
        r"\u00a1-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e\u2060-\u2fff\u3001-\ud7ff\ue000-\uffff";
    let atom = format!(r"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~{WIDE}-]+");
    let label = format!(r"[A-Za-z0-9_{WIDE}]([A-Za-z0-9_{WIDE}-]*[A-Za-z0-9_{WIDE}])?");
    json!({
        "maxLength": 254,
        "pattern": format!(r"^{atom}(\.{atom})*@{label}(\.{label})+$"),
    })
}

/// A CPF: 11 digits, optionally punctuated `000.000.000-00`; the check
/// digits are verified by the server (422), which no schema can say.
pub(super) fn cpf() -> Value {
    json!({"pattern": r"^[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2}$", "format": "cpf"})
}

/// A webhook target: `http(s)://`, a host name (labels of letters, digits
/// and hyphens, the last one starting with a letter) or a dotted IPv4
/// address, an optional port, then any visible ASCII. No credentials, no
/// IPv6 literal. Whether the deployment lets it point at a private address or
/// that port is its target policy (`CHARGELEDGER_WEBHOOK_*`, 422).
pub(super) fn webhook_url() -> String {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let last = "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let port = "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    format!("^[Hh][Tt][Tt][Pp][Ss]?://(({label}\\.)*{last}|{octet}(\\.{octet}){{3}})(:{port})?([/?#][!-~]*)?$")
}
