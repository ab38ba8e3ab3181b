//! The OpenAPI 3.1 document, generated from the handlers.

use utoipa::{
    openapi::{
        path::{Operation, ParameterIn},
        schema::{ObjectBuilder, Type},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
    Modify, OpenApi,
};

pub mod bodies;
pub(crate) mod constraints;
pub(crate) mod enums;
mod problems;

use self::problems::ProblemResponses;
pub use self::problems::PROBLEM_JSON;
use crate::routes::{charge, health, ocpp, payments, terminals};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme("apiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

/// Every operation of the document, mutably.
fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head]
            .into_iter()
            .filter_map(Option::as_mut)
    })
}

/// The `Idempotency-Key` header as the server checks it
/// (`extract::idempotency_key`): optional, but when sent 1 to 255 visible
/// ASCII characters (a string, never null).
struct IdempotencyKeys;

impl Modify for IdempotencyKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in operations(openapi) {
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.name == "Idempotency-Key" && parameter.parameter_in == ParameterIn::Header {
                    let schema = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some("^[!-~]+$"));
                    parameter.schema = Some(schema.into());
                    parameter.description = Some(
                        "Makes retries safe: while the key is retained, the same key and body replay \
                         the first answer; another body with the same key is 422, one still running is 409."
                            .into(),
                    );
                }
            }
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "chargeledger", description = "Event-sourced e-mobility platform: OCPP gateway, charge orchestration, payments. \
        Errors are RFC 9457 problem+json. Every mutable route accepts Idempotency-Key."),
    paths(
        terminals::register, terminals::list, terminals::get, terminals::report_health, terminals::update_status, terminals::stats,
        terminals::set_charger_password,
        ocpp::command, ocpp::get_command, ocpp::remote_start, ocpp::remote_stop, ocpp::charging_profile, ocpp::connectors, ocpp::transactions,
        payments::create, payments::get, payments::authorize, payments::capture, payments::void, payments::refund, payments::list,
        payments::events, payments::wallet, payments::top_up, payments::pagarme_webhook,
        charge::start, charge::stop, charge::get, charge::events, charge::refund,
        charge::adhoc_start, charge::adhoc_progress, charge::adhoc_complete, charge::adhoc_get, charge::adhoc_list,
        health::health, health::ready, health::live, health::detailed, health::metrics,
        crate::routes::webhooks::register, crate::routes::webhooks::list, crate::routes::webhooks::get,
        crate::routes::webhooks::update, crate::routes::webhooks::deactivate, crate::routes::webhooks::deliveries,
        crate::routes::webhooks::test, crate::routes::webhooks::rotate_secret,
    ),
    nest((path = "/v1/charging-infrastructure", api = crate::routes::infrastructure::InfrastructureApi)),
    modifiers(&Security, &IdempotencyKeys, &ProblemResponses),
    tags((name = "Terminals", description = "Terminal registration, health, and status"),
         (name = "Charger commands", description = "OCPP commands to chargers (remote start/stop, smart charging, …) and their live state"),
         (name = "Payments", description = "Payment intent lifecycle (create → authorize → capture/void), wallets, Pagar.me webhooks"),
         (name = "Charge orchestration", description = "Start and stop charging with pre-authorization and late capture (seed 001)"),
         (name = "Charges", description = "Ad-hoc EV charging sessions"),
         (name = "Webhooks", description = "Webhook subscription and delivery management (Standard Webhooks signatures)"),
         (name = "Health", description = "Health checks and readiness probes"))
)]
pub struct ApiDoc;

/// The document: what the handlers declare, with the body rules of
/// [`constraints`] written in.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    constraints::apply(&mut document);
    document
}

/// The document as pretty JSON (what `schemas/openapi.json` holds).
pub fn json() -> String {
    serde_json::to_string_pretty(&document()).unwrap_or_default() + "\n"
}
