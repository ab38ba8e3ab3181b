//! Edges of chargeledger to the outside world.
//!
//! Each edge turns outside traffic into commands on the write side and turns
//! events from the log into outside effects:
//!
//! - [`ocpp`]: the WebSocket CSMS for OCPP 1.6-J and 2.0.1;
//! - [`cpms`]: the CPMS adapters of charging infrastructure (the native one over [`ocpp`]);
//! - [`payments`]: the Pagar.me V5 adapter and the simulator gateway;
//! - `kafka`: the relay publishing the log to topics (issue 6);
//! - `webhooks` and `email`: deliveries driven by the log (issues 5 and 7).

pub mod cpms;
pub mod email;
pub mod kafka;
pub mod ocpp;
pub mod payments;
pub mod webhooks;
