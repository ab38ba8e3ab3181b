//! From version-neutral intentions ("start charging on connector 1 for this
//! tag", "stop transaction 42") to the OCPP request of the charger's protocol:
//! 1.6 `RemoteStartTransaction` / `RemoteStopTransaction`, 2.0.1
//! `RequestStartTransaction` / `RequestStopTransaction`, `SetChargingProfile`.
//!
//! The one place this translation lives: the HTTP routes and the session
//! service both call these pure functions, so a charger receives the same
//! payload whichever of them asked. Payloads still go through the official
//! schema check where they are sent.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::terminal::OcppVersion;

/// Actions the CSMS may send to an OCPP 1.6 charger through the API.
pub const CSMS_ACTIONS_16: &[&str] = &[
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "Reset",
    "ChangeAvailability",
    "UnlockConnector",
    "TriggerMessage",
    "GetConfiguration",
    "ChangeConfiguration",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "ClearCache",
    "DataTransfer",
];

/// Actions the CSMS may send to an OCPP 2.0.1 charging station through the API.
pub const CSMS_ACTIONS_201: &[&str] = &[
    "RequestStartTransaction",
    "RequestStopTransaction",
    "Reset",
    "ChangeAvailability",
    "UnlockConnector",
    "TriggerMessage",
    "GetVariables",
    "SetVariables",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "ClearCache",
    "DataTransfer",
];

/// The actions a charger speaking `version` accepts from the CSMS.
pub fn csms_actions(version: OcppVersion) -> &'static [&'static str] {
    match version {
        OcppVersion::V16 => CSMS_ACTIONS_16,
        OcppVersion::V201 => CSMS_ACTIONS_201,
    }
}

/// One OCPP request to send to a charger: its action and its payload, in the
/// charger's own protocol version.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargerRequest {
    /// The OCPP action (`RemoteStartTransaction`, `RequestStopTransaction`, …).
    pub action: &'static str,
    /// The request payload, shaped for that action and version.
    pub payload: Value,
}

/// A remote-start id for 2.0.1 `RequestStartTransaction`, derived from `at`:
/// positive, rising by one every 100 ms, and within an int32 as the schema
/// requires (it wraps after about 6.8 years).
pub fn remote_start_id(at: DateTime<Utc>) -> i64 {
    (at.timestamp_millis() / 100) % i64::from(i32::MAX)
}

/// Start charging for `id_tag`. `connector_id` is the 1.6 connector or the
/// 2.0.1 EVSE; without it the charger picks. `remote_start_id` (see
/// [`remote_start_id`]) links the 2.0.1 transaction that follows to this
/// request; 1.6 has no such field and ignores it.
pub fn remote_start(
    version: OcppVersion,
    connector_id: Option<i64>,
    id_tag: &str,
    remote_start_id: i64,
) -> ChargerRequest {
    let mut payload = serde_json::Map::new();
    match version {
        OcppVersion::V16 => {
            if let Some(connector) = connector_id {
                payload.insert("connectorId".into(), json!(connector));
            }
            payload.insert("idTag".into(), json!(id_tag));
            ChargerRequest { action: "RemoteStartTransaction", payload: Value::Object(payload) }
        }
        OcppVersion::V201 => {
            if let Some(evse) = connector_id {
                payload.insert("evseId".into(), json!(evse));
            }
            // A token we hand out ourselves, not one read from a card.
            payload.insert("idToken".into(), json!({"idToken": id_tag, "type": "Central"}));
            payload.insert("remoteStartId".into(), json!(remote_start_id));
            ChargerRequest { action: "RequestStartTransaction", payload: Value::Object(payload) }
        }
    }
}

/// A 1.6 transaction id that is not an integer: 1.6 chargers only know the
/// integer ids the CSMS assigned, so such an id cannot be stopped remotely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an OCPP 1.6 transaction id is an integer")]
pub struct NotAnOcpp16TransactionId;

/// Stop `transaction_id` (the text the transactions read model shows: 1.6
/// integers in decimal, 2.0.1 strings as sent), refusing a 1.6 id that is not
/// an integer. For callers that can tell the requester so.
pub fn try_remote_stop(version: OcppVersion, transaction_id: &str) -> Result<ChargerRequest, NotAnOcpp16TransactionId> {
    Ok(match version {
        OcppVersion::V16 => {
            let tx: i64 = transaction_id.parse().map_err(|_| NotAnOcpp16TransactionId)?;
            ChargerRequest { action: "RemoteStopTransaction", payload: json!({"transactionId": tx}) }
        }
        OcppVersion::V201 => {
            ChargerRequest { action: "RequestStopTransaction", payload: json!({"transactionId": transaction_id}) }
        }
    })
}

/// Stop `transaction_id`, as [`try_remote_stop`], but a 1.6 id that is not an
/// integer becomes `-1`: a stop decided elsewhere must still be sent, and the
/// charger answers `Rejected` for a transaction it does not have.
pub fn remote_stop(version: OcppVersion, transaction_id: &str) -> ChargerRequest {
    try_remote_stop(version, transaction_id).unwrap_or_else(|NotAnOcpp16TransactionId| ChargerRequest {
        action: "RemoteStopTransaction",
        payload: json!({"transactionId": -1}),
    })
}

/// Install `profile` (already in the charger's protocol: 1.6
/// `csChargingProfiles`, 2.0.1 `chargingProfile`) on `connector_id` (1.6
/// connector or 2.0.1 EVSE; 0, the default, is the whole charger).
pub fn set_charging_profile(version: OcppVersion, connector_id: Option<i64>, profile: Value) -> ChargerRequest {
    let connector = connector_id.unwrap_or(0);
    let payload = match version {
        OcppVersion::V16 => json!({"connectorId": connector, "csChargingProfiles": profile}),
        OcppVersion::V201 => json!({"evseId": connector, "chargingProfile": profile}),
    };
    ChargerRequest { action: "SetChargingProfile", payload }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
    }

    #[test]
    fn protocol_strings_name_versions_and_anything_unknown_is_1_6() {
        // Given the protocol strings the log and read models record,
        // when they are read back, then they name their version.
        assert_eq!(OcppVersion::from_protocol("2.0.1"), OcppVersion::V201);
        assert_eq!(OcppVersion::from_protocol("1.6"), OcppVersion::V16);
        // Given a protocol nobody recorded, then the charger is treated as 1.6.
        for unknown in ["", "2.0", "ocpp2.0.1", "2.0.1 "] {
            assert_eq!(OcppVersion::from_protocol(unknown), OcppVersion::V16, "{unknown:?}");
        }
        // And the string of a version reads back as that version, matching its serde form.
        for version in [OcppVersion::V16, OcppVersion::V201] {
            assert_eq!(OcppVersion::from_protocol(version.as_protocol()), version);
            assert_eq!(serde_json::to_value(version).ok(), Some(json!(version.as_protocol())));
        }
    }

    #[test]
    fn remote_start_ids_rise_every_100_ms_and_fit_an_int32() {
        // Given two instants 100 ms apart, when ids are derived, then they differ by one.
        let t = 1_790_000_000_000;
        assert_eq!(remote_start_id(at(t + 100)) - remote_start_id(at(t)), 1);
        // And within the same 100 ms they are equal.
        assert_eq!(remote_start_id(at(t + 99)), remote_start_id(at(t)));
        // Given the far future, then the id still fits in an int32.
        let far = at(i64::from(i32::MAX) * 100 * 3 + 1234);
        assert!((0..i64::from(i32::MAX)).contains(&remote_start_id(far)));
        assert_eq!(remote_start_id(at(1_234_567)), 12_345);
    }

    #[test]
    fn a_1_6_remote_start_names_the_connector_and_the_tag() {
        // Given a 1.6 charger, when a start is requested on connector 2,
        let request = remote_start(OcppVersion::V16, Some(2), "TAG-1", 77);
        // then it is RemoteStartTransaction with connectorId and idTag, and no remoteStartId.
        assert_eq!(request.action, "RemoteStartTransaction");
        assert_eq!(request.payload, json!({"connectorId": 2, "idTag": "TAG-1"}));
        // And without a connector the charger picks one.
        assert_eq!(remote_start(OcppVersion::V16, None, "TAG-1", 77).payload, json!({"idTag": "TAG-1"}));
    }

    #[test]
    fn a_2_0_1_remote_start_names_the_evse_a_central_token_and_the_remote_start_id() {
        // Given a 2.0.1 station, when a start is requested on EVSE 1,
        let request = remote_start(OcppVersion::V201, Some(1), "TAG-2", 12_345);
        // then it is RequestStartTransaction with evseId, a Central idToken and the remoteStartId.
        assert_eq!(request.action, "RequestStartTransaction");
        assert_eq!(
            request.payload,
            json!({"evseId": 1, "idToken": {"idToken": "TAG-2", "type": "Central"}, "remoteStartId": 12_345})
        );
        // And without an EVSE the station picks one.
        assert_eq!(
            remote_start(OcppVersion::V201, None, "TAG-2", 9).payload,
            json!({"idToken": {"idToken": "TAG-2", "type": "Central"}, "remoteStartId": 9})
        );
    }

    #[test]
    fn a_1_6_remote_stop_sends_the_integer_transaction_id() {
        // Given a 1.6 transaction id in decimal, when a stop is requested,
        let request = remote_stop(OcppVersion::V16, "42");
        // then it is RemoteStopTransaction with the id as an integer.
        assert_eq!(request.action, "RemoteStopTransaction");
        assert_eq!(request.payload, json!({"transactionId": 42}));
        assert_eq!(try_remote_stop(OcppVersion::V16, "42"), Ok(request));
    }

    #[test]
    fn a_non_integer_1_6_transaction_id_is_refused_or_sent_as_minus_one() {
        // Given a 1.6 transaction id that is not an integer,
        for id in ["abc", "", "4.2", "99999999999999999999"] {
            // when a checked stop is requested, then it is refused,
            assert_eq!(try_remote_stop(OcppVersion::V16, id), Err(NotAnOcpp16TransactionId), "{id:?}");
            // and an unchecked one is still sent, for a transaction the charger cannot have.
            let request = remote_stop(OcppVersion::V16, id);
            assert_eq!(request.action, "RemoteStopTransaction");
            assert_eq!(request.payload, json!({"transactionId": -1}), "{id:?}");
        }
        assert_eq!(NotAnOcpp16TransactionId.to_string(), "an OCPP 1.6 transaction id is an integer");
    }

    #[test]
    fn a_2_0_1_remote_stop_sends_the_transaction_id_as_text() {
        // Given 2.0.1 transaction ids (the station's own strings, numeric or not),
        for id in ["tx-9f2", "42"] {
            // when a stop is requested, then it is RequestStopTransaction with the id unchanged.
            let request = remote_stop(OcppVersion::V201, id);
            assert_eq!(request.action, "RequestStopTransaction");
            assert_eq!(request.payload, json!({"transactionId": id}));
            assert_eq!(try_remote_stop(OcppVersion::V201, id), Ok(request));
        }
    }

    #[test]
    fn a_charging_profile_goes_to_the_connector_or_the_whole_charger() {
        let profile = json!({"id": 3, "stackLevel": 0});
        // Given a 1.6 charger and connector 1, then the profile is csChargingProfiles.
        let request = set_charging_profile(OcppVersion::V16, Some(1), profile.clone());
        assert_eq!(request.action, "SetChargingProfile");
        assert_eq!(request.payload, json!({"connectorId": 1, "csChargingProfiles": profile}));
        // Given a 2.0.1 station and no EVSE, then it is chargingProfile on EVSE 0.
        let request = set_charging_profile(OcppVersion::V201, None, profile.clone());
        assert_eq!(request.payload, json!({"evseId": 0, "chargingProfile": profile}));
    }

    #[test]
    fn each_version_accepts_its_own_start_and_stop_actions() {
        // Given either version, then its start and stop actions are allowed and the other's are not.
        for (version, other) in [(OcppVersion::V16, OcppVersion::V201), (OcppVersion::V201, OcppVersion::V16)] {
            let start = remote_start(version, None, "T", 1).action;
            let stop = remote_stop(version, "1").action;
            assert!(csms_actions(version).contains(&start) && csms_actions(version).contains(&stop));
            assert!(!csms_actions(other).contains(&start) && !csms_actions(other).contains(&stop));
            assert!(csms_actions(version).contains(&set_charging_profile(version, None, json!({})).action));
        }
    }
}
