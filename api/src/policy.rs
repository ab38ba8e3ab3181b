//! Authorization: what each role may do, in one place (ADR 0014).
//!
//! Every route is classified by [`permission`] (method and route template →
//! [`Permission`]); [`authorize`] runs before the request body is read, so a
//! forbidden caller gets 403 before any validation and nothing is appended.
//! What a permission means per role is [`allows`]. Ownership (a driver sees only
//! its own sessions, intents and wallet) is the second half, checked by the
//! handlers with [`Caller::owner`](crate::auth::Caller::owner) because it needs
//! the resource.

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    auth::{Caller, Role},
    config::Config,
    error::ApiError,
    state::AppState,
};

/// What an operation needs. The README's "Roles" table lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// No credentials: health, metrics, and the payment gateway's webhook
    /// (which checks its own credentials).
    Public,
    /// Reads of the company's operations data: admin, operator, viewer.
    Read,
    /// Station, terminal and connector status (what a charging app shows):
    /// admin, operator, viewer, driver.
    ReadStations,
    /// Charge sessions: admin, operator, viewer, service; a driver its own.
    ReadCharges,
    /// Payment intents and wallets: admin, operator, viewer; a driver its own.
    ReadPayments,
    /// `POST /charge/start`: admin, operator; a driver only when the server
    /// trusts client tariffs (`CHARGELEDGER_TRUST_CLIENT_TARIFF`).
    StartCharge,
    /// `POST /v1/adhoc-charges/start`: admin, operator, service; a driver only
    /// when the server trusts client tariffs.
    StartAdhoc,
    /// `POST /charge/stop`: admin, operator; a driver its own sessions.
    StopCharge,
    /// Creating and authorizing payment intents, wallet top-ups: admin,
    /// operator; a driver for itself (never VIP).
    Pay,
    /// Ad-hoc progress and completion: admin, operator, service.
    ReportAdhoc,
    /// Everything else that writes (capture, void, refund, terminal and charger
    /// commands, webhooks, infrastructure): admin, operator.
    Operate,
}

/// The permission of a route (method and route template as registered in
/// [`crate::app::router`]). A route that is not listed needs [`Permission::Operate`]:
/// new routes fail closed, and the role-matrix test makes them be classified.
pub fn permission(method: &Method, route: &str) -> Permission {
    use Permission::*;
    let get = *method == Method::GET || *method == Method::HEAD;
    match route {
        "/health"
        | "/health/live"
        | "/health/ready"
        | "/health/detailed"
        | "/metrics"
        | "/openapi.json"
        | "/docs"
        | "/docs/swagger-ui-bundle.js"
        | "/docs/swagger-ui.css"
        | "/docs/init.js"
        | "/v1/gateways/pagarme/webhooks" => Public,
        "/v1/terminals"
        | "/v1/terminals/{id}"
        | "/v1/terminals/{id}/connectors"
        | "/v1/charging-infrastructure/connectors"
        | "/v1/charging-infrastructure/connectors/summary"
            if get =>
        {
            ReadStations
        }
        "/v1/charge-sessions/{id}" | "/v1/adhoc-charges" | "/v1/adhoc-charges/{id}" if get => ReadCharges,
        "/v1/payment-intents" | "/v1/payment-intents/{id}" | "/v1/wallets/{customer_id}" if get => ReadPayments,
        _ if get => Read,
        "/charge/start" => StartCharge,
        "/v1/adhoc-charges/start" => StartAdhoc,
        "/charge/stop" => StopCharge,
        "/v1/payment-intents" | "/v1/payment-intents/{id}/authorize" | "/v1/wallets/{customer_id}/top-ups" => Pay,
        "/v1/adhoc-charges/{id}/progress" | "/v1/adhoc-charges/{id}/complete" => ReportAdhoc,
        _ => Operate,
    }
}

/// Whether `role` may do what `permission` guards (ownership aside).
pub fn allows(role: Role, permission: Permission, config: &Config) -> bool {
    use Permission::*;
    use Role::*;
    match (role, permission) {
        (_, Public) | (Admin | Operator, _) => true,
        (Viewer, Read | ReadStations | ReadCharges | ReadPayments) => true,
        (Driver, ReadStations | ReadCharges | ReadPayments | StopCharge | Pay) => true,
        (Driver, StartCharge | StartAdhoc) => config.trust_client_tariff,
        (Service, ReadCharges | StartAdhoc | ReportAdhoc) => true,
        _ => false,
    }
}

impl Caller {
    /// Refuses (403) a caller whose role does not have `permission`.
    pub fn require(&self, permission: Permission, config: &Config) -> Result<(), ApiError> {
        if allows(self.role, permission, config) {
            return Ok(());
        }
        Err(ApiError::Forbidden(match (self.role, permission) {
            (Role::Driver, Permission::StartCharge | Permission::StartAdhoc) => {
                "a driver cannot set the tariff of a session: start it through an operator or a service \
                 integration (CHARGELEDGER_TRUST_CLIENT_TARIFF is off)"
                    .into()
            }
            (role, _) => format!("role {} may not do this", role.as_str()),
        }))
    }
}

/// Route middleware: authenticates the caller of every non-public route and
/// checks its role against the route's permission before the handler (and
/// its body extraction) runs. The caller is handed to the handler.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let Some(route) = route else { return next.run(request).await };
    let needed = permission(request.method(), &route);
    if needed == Permission::Public {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    if let Err(error) = caller.require(needed, &state.config) {
        return error.into_response();
    }
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_routes_need_an_operator() {
        assert_eq!(permission(&Method::POST, "/v1/something-new"), Permission::Operate);
        assert_eq!(permission(&Method::GET, "/v1/something-new"), Permission::Read);
    }
}
