//! Validation of payloads against the official OCA schemas, with the OCPP-J
//! error code that fits the first violation.

use std::{collections::HashMap, sync::OnceLock};

use domain::terminal::OcppVersion;
use jsonschema::{error::ValidationErrorKind, Validator};
use serde_json::Value;

use super::frame::ErrorCode;

include!(concat!(env!("OUT_DIR"), "/ocpp_schemas.rs"));

fn dir(version: OcppVersion) -> &'static str {
    match version {
        OcppVersion::V16 => "v16",
        OcppVersion::V201 => "v201",
    }
}

/// File stem of the schema of a request or response.
fn stem(version: OcppVersion, action: &str, response: bool) -> String {
    match (version, response) {
        (OcppVersion::V16, false) => action.to_owned(),
        (OcppVersion::V201, false) => format!("{action}Request"),
        (_, true) => format!("{action}Response"),
    }
}

fn validators() -> &'static HashMap<String, Validator> {
    static VALIDATORS: OnceLock<HashMap<String, Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        SCHEMAS
            .iter()
            .filter_map(|(dir, stem, text)| {
                let schema: Value = serde_json::from_str(text).ok()?;
                // The 1.6 schemas declare draft-04, 2.0.1 draft-06; both are honoured.
                let validator = jsonschema::options().should_validate_formats(true).build(&schema).ok()?;
                Some((format!("{dir}/{stem}"), validator))
            })
            .collect()
    })
}

/// Compiles every schema now rather than on the first message.
pub fn warm() -> usize {
    validators().len()
}

/// Whether the protocol defines this action in this direction at all.
pub fn knows(version: OcppVersion, action: &str) -> bool {
    validators().contains_key(&format!("{}/{}", dir(version), stem(version, action, false)))
}

/// Validates a request (`response == false`) or response payload.
pub fn validate(
    version: OcppVersion,
    action: &str,
    response: bool,
    payload: &Value,
) -> Result<(), (ErrorCode, String)> {
    let Some(validator) = validators().get(&format!("{}/{}", dir(version), stem(version, action, response))) else {
        return Err((ErrorCode::NotImplemented, format!("{action} is not an OCPP {} action", dir(version))));
    };
    match validator.iter_errors(payload).next() {
        None => Ok(()),
        Some(error) => {
            let code = match error.kind {
                ValidationErrorKind::Required { .. } => ErrorCode::OccurrenceConstraintViolation,
                ValidationErrorKind::Type { .. } => ErrorCode::TypeConstraintViolation,
                ValidationErrorKind::AdditionalProperties { .. } => ErrorCode::FormatViolation,
                _ => ErrorCode::PropertyConstraintViolation,
            };
            let at = error.instance_path.to_string();
            Err((code, if at.is_empty() { error.to_string() } else { format!("{at}: {error}") }))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_official_schemas_are_embedded_and_map_to_error_codes() {
        assert!(SCHEMAS.len() > 200);
        assert!(knows(OcppVersion::V16, "StartTransaction") && knows(OcppVersion::V201, "TransactionEvent"));
        assert!(!knows(OcppVersion::V16, "TransactionEvent"));
        let ok = json!({"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-11-21T10:00:00Z"});
        assert_eq!(validate(OcppVersion::V16, "StartTransaction", false, &ok), Ok(()));
        let missing = json!({"connectorId": 1, "idTag": "T", "timestamp": "2026-11-21T10:00:00Z"});
        assert_eq!(
            validate(OcppVersion::V16, "StartTransaction", false, &missing).map_err(|e| e.0),
            Err(ErrorCode::OccurrenceConstraintViolation)
        );
        let wrong_type =
            json!({"connectorId": "one", "idTag": "T", "meterStart": 0, "timestamp": "2026-11-21T10:00:00Z"});
        assert_eq!(
            validate(OcppVersion::V16, "StartTransaction", false, &wrong_type).map_err(|e| e.0),
            Err(ErrorCode::TypeConstraintViolation)
        );
        let too_long =
            json!({"connectorId": 1, "idTag": "T".repeat(21), "meterStart": 0, "timestamp": "2026-11-21T10:00:00Z"});
        assert_eq!(
            validate(OcppVersion::V16, "StartTransaction", false, &too_long).map_err(|e| e.0),
            Err(ErrorCode::PropertyConstraintViolation)
        );
        let extra =
            json!({"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-11-21T10:00:00Z", "x": 1});
        assert_eq!(
            validate(OcppVersion::V16, "StartTransaction", false, &extra).map_err(|e| e.0),
            Err(ErrorCode::FormatViolation)
        );
        assert_eq!(
            validate(OcppVersion::V16, "Nope", false, &json!({})).map_err(|e| e.0),
            Err(ErrorCode::NotImplemented)
        );
    }
}
