//! The log on every deployment path of ADR 0002, on real PostgreSQL clusters
//! the tests create themselves (issue 11): a hot standby, a `pg_dump` restore
//! into a younger cluster, a logical-replication subscriber, prepared
//! transactions.
#![allow(clippy::unwrap_used)]

#[path = "clusters/cluster.rs"]
mod cluster;
#[path = "clusters/prepared.rs"]
mod prepared;
#[path = "clusters/restore.rs"]
mod restore;
#[path = "clusters/standby.rs"]
mod standby;
#[path = "clusters/subscriber.rs"]
mod subscriber;
