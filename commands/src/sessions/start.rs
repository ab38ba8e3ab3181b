//! Starting a session: the payment is created and authorized first; once it
//! is, the charger is told to start (OCPP sessions).

use domain::{
    charger::requests::{self, ChargerRequest},
    payment::{Customer, IntentState, IntentStatus},
    session::{
        ChargeSession, Reason, RemoteStartSent, SessionCommand, SessionKind, SessionStarted, SessionState,
        SessionStatus,
    },
    terminal::OcppVersion,
    Aggregate,
};
use uuid::Uuid;

use super::{check::check_start, ChargerCall, Sessions, StartInput};
use crate::{
    payments::{Actor, AuthorizeInput, NewIntent},
    CommandError,
};

impl Sessions {
    /// Starts a session: the request and (OCPP sessions) the charger are
    /// checked ([`super::check`]), the payment is created and authorized; once
    /// it is, the charger is told to start (OCPP sessions).
    pub async fn start(
        &self,
        actor: &Actor,
        input: StartInput,
    ) -> Result<(Uuid, SessionState, IntentState), CommandError> {
        let checked = check_start(&*self.directory, actor.company, &input).await?;
        let session_id = Uuid::now_v7();
        let id_tag = format!("CL{}", &session_id.simple().to_string()[14..32]);
        let customer = Customer {
            customer_id: input.customer_id.clone(),
            name: None,
            email: Some(input.email.clone()),
            cpf: input.cpf.clone(),
        };
        let started = SessionStarted {
            session_id,
            company_id: actor.company.as_uuid(),
            kind: input.kind,
            station_id: input.station_id,
            charge_point_id: checked.charge_point_id.clone(),
            connector_id: input.connector_id,
            method: checked.method,
            preauth_amount: input.amount,
            email: input.email.clone(),
            cpf: input.cpf.clone(),
            tariff: checked.tariff.clone(),
            payment_intent_id: Uuid::nil(),
            id_tag,
            at: self.now(),
            customer_id: input.customer_id.clone(),
        };
        // Validate the session before any money moves.
        ChargeSession::decide(&SessionState::default(), SessionCommand::Start(started.clone()))?;
        let new = NewIntent {
            amount: input.amount,
            method: checked.method,
            customer,
            description: Some(format!(
                "charging at station {} ({} connector {})",
                input.station_id, checked.charge_point_id, input.connector_id
            )),
            top_up_wallet: None,
        };
        let (intent_id, _) = self.payments.create(actor, new).await?;
        let started = SessionStarted { payment_intent_id: intent_id, ..started };
        self.apply(actor, session_id, &[SessionCommand::Start(started)]).await?;
        let authorized = self
            .payments
            .authorize(
                actor,
                intent_id,
                AuthorizeInput { card_token: input.card_token, network_token: input.network_token },
            )
            .await;
        let intent = match authorized {
            Ok(intent) => intent,
            Err(CommandError::Domain(e)) => {
                // A refusal of the payment details: the session fails, nothing is sent to the charger.
                let failed = Reason { code: "payment_refused".into(), detail: e.to_string(), at: self.now() };
                self.apply(actor, session_id, &[SessionCommand::PaymentFailed(failed)]).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        let state = self.on_payment(actor, session_id, &intent, checked.protocol).await?;
        Ok((session_id, state, intent))
    }

    /// Moves a session on from its payment's state.
    pub async fn on_payment(
        &self,
        actor: &Actor,
        id: Uuid,
        intent: &IntentState,
        protocol: Option<OcppVersion>,
    ) -> Result<SessionState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        if state.status != SessionStatus::Preauthorizing {
            return Ok(state);
        }
        match intent.status() {
            IntentStatus::RequiresCapture => {
                let amount = intent.capturable.to_cents().unwrap_or_default();
                let state =
                    self.apply(actor, id, &[SessionCommand::PaymentAuthorized { amount, at: self.now() }]).await?;
                self.send_remote_start(actor, id, &state, protocol).await
            }
            IntentStatus::Failed | IntentStatus::Expired | IntentStatus::Canceled => {
                let failure = intent.failure.as_ref();
                let reason = Reason {
                    code: failure.map_or_else(|| intent.status().as_str().to_owned(), |f| f.code.clone()),
                    detail: failure
                        .map_or_else(|| format!("the payment is {}", intent.status().as_str()), |f| f.reason.clone()),
                    at: self.now(),
                };
                self.apply(actor, id, &[SessionCommand::PaymentFailed(reason)]).await
            }
            _ => Ok(state), // still processing (PIX waiting, or unknown): the manager moves it on later
        }
    }

    pub(super) async fn send_remote_start(
        &self,
        actor: &Actor,
        id: Uuid,
        state: &SessionState,
        protocol: Option<OcppVersion>,
    ) -> Result<SessionState, CommandError> {
        let Some(started) = state.started.clone() else { return Ok(state.clone()) };
        if started.kind == SessionKind::Adhoc
            || state.remote_start.is_some()
            || state.status != SessionStatus::Authorized
        {
            return Ok(state.clone());
        }
        let protocol = match protocol {
            Some(p) => p,
            None => self.protocol_of(&started.charge_point_id).await?,
        };
        let ChargerRequest { action, payload } = requests::remote_start(
            protocol,
            Some(started.connector_id),
            &started.id_tag,
            requests::remote_start_id(self.now()),
        );
        let call = ChargerCall { charge_point_id: started.charge_point_id.clone(), action, payload };
        let sent = |command_id| vec![SessionCommand::RemoteStartSent(RemoteStartSent { command_id, at: self.now() })];
        Ok(self.transition(actor, id, sent, |_| Some(call.clone())).await?.after)
    }
}
