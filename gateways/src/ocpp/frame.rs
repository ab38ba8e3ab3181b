//! OCPP-J framing: `[2, id, action, payload]`, `[3, id, payload]`,
//! `[4, id, code, description, details]`, and the error codes with each
//! version's own spelling.

use std::borrow::Cow;

use domain::terminal::OcppVersion;
use serde_json::{json, Value};

/// Why a frame holding a raw NUL (U+0000) is refused.
pub const RAW_NUL: &str = "frames may not contain NUL (U+0000) characters";

/// Appended to a refusal when the frame's `raw` had to be stored escaped (see
/// [`storable`]): the flag that tells a reader to decode it.
pub const ESCAPED_NOTE: &str = " (the log keeps this frame JSON-escaped)";

/// Text as the log can store it. Postgres `text` and `jsonb` refuse U+0000, so
/// a string holding one is stored as its JSON string literal (quoted, NUL as
/// `\u0000`; `serde_json::from_str` gives the original back); any other
/// string is stored unchanged. Every frame text and every charger-provided
/// string goes through this before it enters an event.
pub fn storable(text: &str) -> Cow<'_, str> {
    if needs_escaping(text) {
        Cow::Owned(Value::String(text.to_owned()).to_string())
    } else {
        Cow::Borrowed(text)
    }
}

/// Whether [`storable`] changes the text.
pub fn needs_escaping(text: &str) -> bool {
    text.contains('\0')
}

/// Whether any string (or key) inside a JSON value holds a NUL.
pub fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => needs_escaping(s),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| needs_escaping(k) || has_nul(v)),
        _ => false,
    }
}

/// OCPP-J RPC error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Unknown action.
    NotImplemented,
    /// Known action we do not take in this direction.
    NotSupported,
    /// We failed.
    InternalError,
    /// Incomplete payload or frame.
    ProtocolError,
    /// Not allowed.
    SecurityError,
    /// Not valid JSON / not the PDU structure (1.6 spells it FormationViolation).
    FormatViolation,
    /// A field's value is out of range.
    PropertyConstraintViolation,
    /// A required field is missing (1.6 spells it OccurenceConstraintViolation).
    OccurrenceConstraintViolation,
    /// A field has the wrong type.
    TypeConstraintViolation,
    /// Anything else.
    GenericError,
    /// 2.0.1: the frame is not a valid RPC at all.
    RpcFrameworkError,
    /// 2.0.1: unknown message type id.
    MessageTypeNotSupported,
}

impl ErrorCode {
    /// The code as each version spells it on the wire.
    pub fn as_str(&self, version: OcppVersion) -> &'static str {
        let v16 = version == OcppVersion::V16;
        match self {
            Self::NotImplemented => "NotImplemented",
            Self::NotSupported => "NotSupported",
            Self::InternalError => "InternalError",
            Self::ProtocolError => "ProtocolError",
            Self::SecurityError => "SecurityError",
            Self::FormatViolation if v16 => "FormationViolation",
            Self::FormatViolation => "FormatViolation",
            Self::PropertyConstraintViolation => "PropertyConstraintViolation",
            Self::OccurrenceConstraintViolation if v16 => "OccurenceConstraintViolation",
            Self::OccurrenceConstraintViolation => "OccurrenceConstraintViolation",
            Self::TypeConstraintViolation => "TypeConstraintViolation",
            Self::GenericError => "GenericError",
            Self::RpcFrameworkError if v16 => "ProtocolError",
            Self::RpcFrameworkError => "RpcFrameworkError",
            Self::MessageTypeNotSupported if v16 => "ProtocolError",
            Self::MessageTypeNotSupported => "MessageTypeNotSupported",
        }
    }
}

/// A parsed frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request.
    Call {
        /// Message id.
        id: String,
        /// OCPP action name (`BootNotification`, `MeterValues`, …), as the sender spelled it.
        action: String,
        /// The request's JSON payload (the frame's 4th element), as received.
        payload: Value,
    },
    /// A response.
    CallResult {
        /// Message id of the request.
        id: String,
        /// The answer's JSON payload (the frame's 3rd element), as received.
        payload: Value,
    },
    /// An error response.
    CallError {
        /// Message id of the request.
        id: String,
        /// Error code.
        code: String,
        /// Error description, the 4th element (empty when it is not a string).
        description: String,
        /// Error details, the 5th element: any JSON value, as received.
        details: Value,
    },
}

impl Frame {
    /// Message type id.
    pub fn type_id(&self) -> i64 {
        match self {
            Self::Call { .. } => 2,
            Self::CallResult { .. } => 3,
            Self::CallError { .. } => 4,
        }
    }

    /// Message id.
    pub fn id(&self) -> &str {
        match self {
            Self::Call { id, .. } | Self::CallResult { id, .. } | Self::CallError { id, .. } => id,
        }
    }

    /// Whether any string of the frame holds a NUL (an answer that does is
    /// refused as malformed, like a call).
    pub fn holds_nul(&self) -> bool {
        match self {
            Self::Call { id, action, payload } => needs_escaping(id) || needs_escaping(action) || has_nul(payload),
            Self::CallResult { id, payload } => needs_escaping(id) || has_nul(payload),
            Self::CallError { id, code, description, details } => {
                needs_escaping(id) || needs_escaping(code) || needs_escaping(description) || has_nul(details)
            }
        }
    }

    /// The frame as text.
    pub fn to_text(&self) -> String {
        match self {
            Self::Call { id, action, payload } => json!([2, id, action, payload]),
            Self::CallResult { id, payload } => json!([3, id, payload]),
            Self::CallError { id, code, description, details } => json!([4, id, code, description, details]),
        }
        .to_string()
    }
}

/// Why a frame could not be parsed, with what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// Message id, when it could be read (the CALLERROR uses "-1" otherwise).
    pub id: Option<String>,
    /// Message type id, when it could be read.
    pub type_id: Option<i64>,
    /// Action, when it could be read.
    pub action: Option<String>,
    /// Error code to answer with.
    pub code: ErrorCode,
    /// Why the frame was refused, in words; the CALLERROR's description carries it.
    pub description: String,
}

fn fail(code: ErrorCode, description: impl Into<String>) -> FrameError {
    FrameError { id: None, type_id: None, action: None, code, description: description.into() }
}

/// Parses one text frame. A CALL holding NUL anywhere is refused with what
/// is known of it; a CALLRESULT or CALLERROR holding NUL inside a string
/// parses (the connection refuses it as an answer, see [`Frame::holds_nul`]).
pub fn parse(text: &str) -> Result<Frame, FrameError> {
    if needs_escaping(text) {
        // Not JSON (a raw NUL is neither whitespace nor allowed in a string);
        // what the frame would be without it still names its id and type, so
        // the refusal can answer the id (or settle the command it answers).
        let (id, type_id, action) = match parse(&text.replace('\0', "")) {
            Ok(Frame::Call { id, action, .. }) => (Some(id), Some(2), Some(action)),
            Ok(frame) => (Some(frame.id().to_owned()), Some(frame.type_id()), None),
            Err(e) => (e.id, e.type_id, e.action),
        };
        return Err(FrameError { id, type_id, action, code: ErrorCode::FormatViolation, description: RAW_NUL.into() });
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| fail(ErrorCode::FormatViolation, format!("not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(fail(ErrorCode::FormatViolation, "a frame is a JSON array"));
    };
    let type_id = items
        .first()
        .and_then(Value::as_i64)
        .ok_or_else(|| fail(ErrorCode::RpcFrameworkError, "MessageTypeId must be an integer"))?;
    let id = items.get(1).and_then(Value::as_str).map(str::to_owned);
    let err = |code, description: &str| FrameError {
        id: id.clone(),
        type_id: Some(type_id),
        action: None,
        code,
        description: description.into(),
    };
    let Some(message_id) = id.clone() else {
        return Err(err(ErrorCode::RpcFrameworkError, "MessageId must be a string"));
    };
    if message_id.is_empty() || message_id.len() > 36 {
        return Err(err(ErrorCode::RpcFrameworkError, "MessageId must be 1 to 36 characters"));
    }
    if needs_escaping(&message_id) {
        return Err(err(ErrorCode::RpcFrameworkError, "MessageId may not contain NUL (U+0000)"));
    }
    match type_id {
        2 => {
            let action = items
                .get(2)
                .and_then(Value::as_str)
                .ok_or_else(|| err(ErrorCode::ProtocolError, "a CALL needs an Action"))?;
            let refuse = |code, description: &str| {
                let mut e = err(code, description);
                e.action = Some(action.to_owned());
                e
            };
            if items.len() != 4 {
                return Err(refuse(ErrorCode::ProtocolError, "a CALL has exactly 4 elements"));
            }
            if needs_escaping(action) {
                return Err(refuse(ErrorCode::ProtocolError, "Action may not contain NUL (U+0000)"));
            }
            if has_nul(&items[3]) {
                return Err(refuse(ErrorCode::PropertyConstraintViolation, "strings may not contain NUL (U+0000)"));
            }
            Ok(Frame::Call { id: message_id, action: action.to_owned(), payload: items[3].clone() })
        }
        3 if items.len() == 3 => Ok(Frame::CallResult { id: message_id, payload: items[2].clone() }),
        3 => Err(err(ErrorCode::ProtocolError, "a CALLRESULT has exactly 3 elements")),
        4 if items.len() == 5 => Ok(Frame::CallError {
            id: message_id,
            code: items[2].as_str().unwrap_or_default().to_owned(),
            description: items[3].as_str().unwrap_or_default().to_owned(),
            details: items[4].clone(),
        }),
        4 => Err(err(ErrorCode::ProtocolError, "a CALLERROR has exactly 5 elements")),
        _ => Err(err(ErrorCode::MessageTypeNotSupported, "MessageTypeId must be 2, 3 or 4")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_errors_carry_what_is_known() {
        assert_eq!(
            parse(r#"[2,"1","Heartbeat",{}]"#),
            Ok(Frame::Call { id: "1".into(), action: "Heartbeat".into(), payload: json!({}) })
        );
        assert_eq!(parse(r#"[3,"1",{"a":1}]"#).map(|f| f.type_id()), Ok(3));
        assert_eq!(parse("{").map_err(|e| e.code), Err(ErrorCode::FormatViolation));
        assert_eq!(parse(r#"{"a":1}"#).map_err(|e| e.code), Err(ErrorCode::FormatViolation));
        let e = parse(r#"[2,"7","Heartbeat"]"#).unwrap_err();
        assert_eq!(
            (e.code, e.id.as_deref(), e.action.as_deref()),
            (ErrorCode::ProtocolError, Some("7"), Some("Heartbeat"))
        );
        assert_eq!(parse(r#"[9,"7",{}]"#).map_err(|e| e.code), Err(ErrorCode::MessageTypeNotSupported));
        assert_eq!(ErrorCode::FormatViolation.as_str(OcppVersion::V16), "FormationViolation");
        assert_eq!(ErrorCode::OccurrenceConstraintViolation.as_str(OcppVersion::V201), "OccurrenceConstraintViolation");
    }

    #[test]
    fn nul_is_refused_in_calls_with_what_is_known_and_kept_in_answers() {
        let raw = parse("[2,\"n1\",\"Heart\0beat\",{}]").unwrap_err();
        assert_eq!(
            (raw.code, raw.id.as_deref(), raw.type_id, raw.action.as_deref(), raw.description.as_str()),
            (ErrorCode::FormatViolation, Some("n1"), Some(2), Some("Heartbeat"), RAW_NUL)
        );
        let id = parse(r#"[2,"n\u00002","Heartbeat",{}]"#).unwrap_err();
        assert_eq!((id.code, id.id.as_deref()), (ErrorCode::RpcFrameworkError, Some("n\u{0}2")));
        let action = parse(r#"[2,"n3","Heart\u0000beat",{}]"#).unwrap_err();
        assert_eq!((action.code, action.action.as_deref()), (ErrorCode::ProtocolError, Some("Heart\u{0}beat")));
        let payload = parse(r#"[2,"n4","Authorize",{"idTag":"a\u0000"}]"#).unwrap_err();
        assert_eq!(payload.code, ErrorCode::PropertyConstraintViolation);
        let answer = parse(r#"[4,"n5","GenericError","bad\u0000",{}]"#).unwrap();
        assert!(answer.holds_nul());
        assert!(!parse(r#"[3,"n6",{"status":"Accepted"}]"#).unwrap().holds_nul());
        let raw_answer = parse("[3,\"n7\",{\"status\":\"Acc\0\"}]").unwrap_err();
        assert_eq!((raw_answer.type_id, raw_answer.id.as_deref()), (Some(3), Some("n7")));
    }

    #[test]
    fn storable_text_has_no_nul_and_decodes_back() {
        assert!(matches!(storable("[2,\"1\",\"Heartbeat\",{}]"), Cow::Borrowed(_)));
        let original = "[2,\"1\\\"\0\",\"x\"]";
        let stored = storable(original);
        assert!(!stored.contains('\0'));
        assert_eq!(serde_json::from_str::<String>(&stored).unwrap(), original);
    }
}
