//! The rules of payment intents.

use rust_decimal::Decimal;

use super::PaymentError;
use super::{
    Authorized, Captured, Customer, Expired, IntentCommand, IntentCreated, IntentState, IntentStatus, Operation,
    OperationFailed, OperationRequested, OutcomeUnknown, PaymentIntentEvent as E, PaymentMethod, Refunded, Settlement,
    Voided,
};
use crate::{error::Validator, CompanyId, FieldError, Money};

/// Largest amount one intent may carry: R$ 100,000.00.
const MAX_CENTS: i64 = 10_000_000;

fn c(m: Money) -> i64 {
    m.to_cents().unwrap_or(i64::MAX)
}

fn sub(a: Money, b: Money) -> Money {
    Money::from_decimal(a.amount() - b.amount())
}

/// Brazilian CPF check digits.
pub fn cpf_valid(raw: &str) -> bool {
    let digits: Vec<u32> = raw.chars().filter_map(|ch| ch.to_digit(10)).collect();
    if digits.len() != 11
        || raw.chars().any(|ch| !ch.is_ascii_digit() && ch != '.' && ch != '-')
        || digits.iter().all(|d| *d == digits[0])
    {
        return false;
    }
    let check = |n: usize| {
        let sum: u32 = digits[..n].iter().enumerate().map(|(i, d)| d * (n as u32 + 1 - i as u32)).sum();
        let r = (sum * 10) % 11;
        if r == 10 {
            0
        } else {
            r
        }
    };
    check(9) == digits[9] && check(10) == digits[10]
}

/// An e-mail address as every aggregate accepts one (a payer's, a session's
/// receipt address): `user@domain.tld`, no whitespace, at most 254 characters.
pub fn email_valid(raw: &str) -> bool {
    let Some((user, domain)) = raw.split_once('@') else { return false };
    !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !raw.chars().any(char::is_whitespace)
        && raw.chars().count() <= 254
}

fn check_customer(v: &mut Validator, customer: &Customer, method: PaymentMethod) {
    if let Some(cpf) = &customer.cpf {
        v.check(cpf_valid(cpf), "cpf", "is not a valid CPF (check digits)");
    }
    if let Some(email) = &customer.email {
        v.check(email_valid(email), "email", "is not a valid e-mail address");
    }
    if method == PaymentMethod::Wallet {
        v.check(
            customer.customer_id.as_deref().is_some_and(|id| !id.trim().is_empty() && id.chars().count() <= 64),
            "customerId",
            "is required for WALLET (1 to 64 characters)",
        );
    }
}

fn owned(state: &IntentState, company: CompanyId) -> Result<&IntentCreated, PaymentError> {
    state.owned_by(company).ok_or(PaymentError::NotFound)
}

fn wrong_status(state: &IntentState, operation: Operation) -> PaymentError {
    PaymentError::WrongStatus { operation, status: state.status() }
}

pub(super) fn decide(state: &IntentState, command: IntentCommand) -> Result<Vec<E>, PaymentError> {
    match command {
        IntentCommand::Create { intent_id, company_id, amount, method, customer, description, top_up_wallet, now } => {
            if state.created.is_some() {
                return Err(PaymentError::AlreadyExists);
            }
            let mut v = Validator::default();
            let cents = amount.to_cents();
            v.check(
                amount.amount().scale() <= 2 && cents.is_some_and(|c| c > 0 && c <= MAX_CENTS),
                "amount",
                "must be 1 to 10000000 cents",
            );
            check_customer(&mut v, &customer, method);
            v.check(
                description.as_deref().is_none_or(|d| d.chars().count() <= 200),
                "description",
                "must be at most 200 characters",
            );
            v.check(
                top_up_wallet.is_none() || matches!(method, PaymentMethod::CreditCard | PaymentMethod::Pix),
                "method",
                "a wallet is topped up by CREDIT_CARD or PIX",
            );
            v.finish(PaymentError::Invalid)?;
            Ok(vec![E::Created(IntentCreated {
                intent_id,
                company_id: company_id.as_uuid(),
                amount: cents.unwrap_or_default(),
                currency: "BRL".into(),
                method,
                customer,
                description,
                top_up_wallet,
                created_at: now,
            })])
        }
        IntentCommand::Request { company_id, operation, amount, now } => {
            let created = owned(state, company_id)?;
            let key = |suffix: String| format!("{}:{suffix}", created.intent_id);
            let requested = |amount: Money, idempotency_key: String| {
                E::OperationRequested(OperationRequested { operation, amount: c(amount), idempotency_key, at: now })
            };
            let pix_waiting =
                state.pending.as_ref().is_some_and(|p| p.operation == Operation::Authorize) && state.pix.is_some();
            if let Some(pending) = state.pending.as_ref().filter(|_| !(operation == Operation::Void && pix_waiting)) {
                return Err(PaymentError::OperationInProgress { operation: pending.operation });
            }
            match operation {
                Operation::Authorize => {
                    if state.status() != IntentStatus::RequiresAuthorization {
                        return Err(wrong_status(state, Operation::Authorize));
                    }
                    let total = Money::from_cents(created.amount);
                    let mut events = vec![requested(total, key("authorize".into()))];
                    if created.method == PaymentMethod::Vip {
                        // Sponsored: held at once, no gateway.
                        events.push(E::Authorized(Authorized {
                            amount_capturable: created.amount,
                            order_id: None,
                            charge_id: None,
                            already_collected: false,
                            sponsored: true,
                            at: now,
                        }));
                    }
                    Ok(events)
                }
                Operation::Capture => {
                    if state.status() != IntentStatus::RequiresCapture {
                        return Err(wrong_status(state, Operation::Capture));
                    }
                    let amount = amount.unwrap_or(state.capturable);
                    if amount.amount() <= Decimal::ZERO || amount > state.capturable || amount.amount().scale() > 2 {
                        return Err(PaymentError::Invalid(FieldError::only(
                            "amount",
                            format!("must be 1 to {} cents (amount_capturable)", c(state.capturable)),
                        )));
                    }
                    Ok(vec![requested(amount, key("capture".into()))])
                }
                Operation::Void => match state.status() {
                    IntentStatus::RequiresAuthorization => Ok(vec![E::Voided(Voided { amount_released: 0, at: now })]),
                    IntentStatus::RequiresCapture | IntentStatus::Processing => {
                        Ok(vec![requested(state.capturable, key("void".into()))])
                    }
                    _ => Err(wrong_status(state, Operation::Void)),
                },
                Operation::Refund => {
                    if state.status() != IntentStatus::Succeeded {
                        return Err(wrong_status(state, Operation::Refund));
                    }
                    let left = sub(state.captured, sub(state.refunded, state.returned_at_capture));
                    let amount = amount.unwrap_or(left);
                    if amount.amount() <= Decimal::ZERO || amount > left || amount.amount().scale() > 2 {
                        return Err(PaymentError::Invalid(FieldError::only(
                            "amount",
                            format!("must be 1 to {} cents (captured and not refunded)", c(left)),
                        )));
                    }
                    Ok(vec![requested(amount, key(format!("refund:{}", state.refunds + 1)))])
                }
            }
        }
        IntentCommand::Settle { company_id, operation, outcome, now } => {
            owned(state, company_id)?;
            let Some(pending) = state.pending.as_ref().filter(|p| p.operation == operation) else {
                return Err(PaymentError::NoOperationInProgress);
            };
            let events = match outcome {
                Settlement::Unknown { reason } => {
                    vec![E::OutcomeUnknown(OutcomeUnknown { operation, reason, at: now })]
                }
                Settlement::Failed { code, reason, decline_code } => {
                    vec![E::OperationFailed(OperationFailed { operation, code, reason, decline_code, at: now })]
                }
                Settlement::PixIssued(pix) if operation == Operation::Authorize => vec![E::PixQrIssued(pix)],
                Settlement::Authorized { amount_capturable, order_id, charge_id, already_collected }
                    if operation == Operation::Authorize =>
                {
                    if amount_capturable.amount() <= Decimal::ZERO || amount_capturable > pending.amount {
                        return Err(PaymentError::AuthorizedAmountOutOfRange);
                    }
                    vec![E::Authorized(Authorized {
                        amount_capturable: c(amount_capturable),
                        order_id,
                        charge_id,
                        already_collected,
                        sponsored: false,
                        at: now,
                    })]
                }
                Settlement::Captured { amount, refunded } if operation == Operation::Capture => {
                    // A card hold releases what is not captured; collected money (PIX)
                    // is either kept or refunded, to the cent.
                    let kept_and_returned = Money::from_decimal(amount.amount() + refunded.amount());
                    let consistent = if state.already_collected {
                        kept_and_returned == state.capturable
                    } else {
                        refunded.amount() == Decimal::ZERO
                    };
                    if amount != pending.amount || !consistent {
                        return Err(PaymentError::CaptureMismatch);
                    }
                    // Card: the rest of the hold is released. PIX: the rest was
                    // collected already and goes back as a refund instead.
                    let released =
                        if state.already_collected { Money::default() } else { sub(state.capturable, amount) };
                    let mut events = vec![E::Captured(Captured {
                        amount_captured: c(amount),
                        amount_released: c(released),
                        at: now,
                    })];
                    if refunded.amount() > Decimal::ZERO {
                        events.push(E::Refunded(Refunded { amount: c(refunded), at_capture: true, at: now }));
                    }
                    events
                }
                Settlement::Voided if operation == Operation::Void => {
                    vec![E::Voided(Voided { amount_released: c(state.capturable), at: now })]
                }
                Settlement::Refunded { amount } if operation == Operation::Refund => {
                    if amount != pending.amount {
                        return Err(PaymentError::RefundMismatch);
                    }
                    vec![E::Refunded(Refunded { amount: c(amount), at_capture: false, at: now })]
                }
                Settlement::Expired if operation == Operation::Authorize && state.pix.is_some() => {
                    vec![E::Expired(Expired { at: now })]
                }
                _ => return Err(PaymentError::OutcomeMismatch),
            };
            Ok(events)
        }
        IntentCommand::RecordExchange { company_id, exchange } => {
            owned(state, company_id)?;
            Ok(vec![E::GatewayExchanged(exchange)])
        }
        IntentCommand::RecordWebhook { company_id, webhook } => {
            owned(state, company_id)?;
            // Gateways deliver at least once: a hook id is recorded once.
            if state.hooks.contains(&webhook.hook_id) {
                return Ok(vec![]);
            }
            Ok(vec![E::WebhookReceived(webhook)])
        }
    }
}
