//! Webhooks: a company's subscriptions (stream `webhook-<id>`) and the
//! delivery of one event to one subscription (stream `webhook_delivery-<id>`),
//! every attempt an event.
//!
//! Secrets are not in the log (it is published to analysts): a subscription's
//! events name its secrets by id and fingerprint; the secret material lives in
//! a table only the platform reads (ADR 0012).

mod delivery;
mod subscription;
#[cfg(test)]
mod tests;

pub use delivery::*;
pub use subscription::*;

/// Event-type filters: `*`, `charge_session.*` or an exact type.
pub fn filter_matches(filter: &str, event_type: &str) -> bool {
    match filter.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => event_type.starts_with(prefix),
        None => filter == event_type,
    }
}

/// Whether a filter is well formed: `*`, `<category>.*`, or `<category>.<name>`
/// in lower case, and matches at least one of `known` types.
pub fn filter_valid(filter: &str, known: &[&str]) -> bool {
    let shape = filter == "*"
        || filter.split_once('.').is_some_and(|(category, rest)| {
            let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            word(category) && (rest == "*" || word(rest))
        });
    shape && known.iter().any(|t| filter_matches(filter, t))
}
