//! OCPP-J framing: `[2, id, action, payload]`, `[3, id, payload]`,
//! `[4, id, code, description, details]`, and the error codes with each
//! version's own spelling.

use domain::terminal::OcppVersion;
use serde_json::{json, Value};

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
        /// Action.
        action: String,
        /// Payload.
        payload: Value,
    },
    /// A response.
    CallResult {
        /// Message id of the request.
        id: String,
        /// Payload.
        payload: Value,
    },
    /// An error response.
    CallError {
        /// Message id of the request.
        id: String,
        /// Error code.
        code: String,
        /// Description.
        description: String,
        /// Details.
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
    /// Why.
    pub description: String,
}

fn fail(code: ErrorCode, description: impl Into<String>) -> FrameError {
    FrameError { id: None, type_id: None, action: None, code, description: description.into() }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Frame, FrameError> {
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
    match type_id {
        2 => {
            let action = items
                .get(2)
                .and_then(Value::as_str)
                .ok_or_else(|| err(ErrorCode::ProtocolError, "a CALL needs an Action"))?;
            if items.len() != 4 {
                let mut e = err(ErrorCode::ProtocolError, "a CALL has exactly 4 elements");
                e.action = Some(action.to_owned());
                return Err(e);
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
}
