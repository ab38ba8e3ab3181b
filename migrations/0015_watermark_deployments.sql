-- The read watermark on every deployment path (ADR 0002, issue 11).
--
-- 1. Hot standby. A snapshot taken in recovery lists every in-progress xid in
--    its subxip array and none in xip, so the old function fell back to xmax
--    and let a reader pass a transaction still open on the primary. When xip is
--    empty the watermark is now the snapshot's xmin: on a standby the oldest
--    xid it knows to be running (it learns of every xid below one it has seen
--    in the WAL, even of a transaction that has not written anything yet); on
--    a primary, with nothing in progress, xmin equals xmax. (Not decided by
--    pg_is_in_recovery(): a snapshot taken just before promotion ends would
--    be read as a primary's.)
-- 2. Prepared transactions of another database no longer count (they cannot
--    write here); one of this database still does.
-- 3. Read-only log transactions. A transaction that writes read models but
--    never appends events (a projector batch) calls
--    events_read_only_transaction() first: it takes a SHARE lock on the empty
--    table events_read_only_marker (table locks are only ever held by a
--    transaction, never by a session) and sets chargeledger.events_read_only,
--    and the store's insert appends nothing while that is on (a condition of
--    its statement, not a trigger running on every append). The watermark skips
--    the xid of a transaction that holds that lock and has no subtransaction
--    ids (one transactionid lock): a declaration made inside a savepoint that
--    could be rolled back (releasing the lock) never exempts anything. Matched
--    by virtual transaction id, unique to one transaction. This guards the
--    platform's own code paths; a database role that may INSERT into events
--    can break the order anyway (ADR 0002, "Who may write the log").

CREATE TABLE events_read_only_marker ();
GRANT SELECT, UPDATE ON events_read_only_marker TO chargeledger_app;

CREATE OR REPLACE FUNCTION events_watermark() RETURNS bigint
LANGUAGE sql STABLE AS $$
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    readers AS (
        SELECT marker.virtualtransaction
        FROM pg_locks marker
        WHERE marker.locktype = 'relation' AND marker.mode = 'ShareLock' AND marker.granted
          AND marker.relation = 'events_read_only_marker'::regclass
          AND marker.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    ),
    reader_xids AS (
        SELECT own.virtualtransaction, min(own.transactionid::text::bigint) AS xid, count(*) AS xids
        FROM pg_locks own
        WHERE own.locktype = 'transactionid' AND own.mode = 'ExclusiveLock' AND own.granted
          AND own.virtualtransaction IN (SELECT virtualtransaction FROM readers)
        GROUP BY own.virtualtransaction
    ),
    elsewhere AS (
        SELECT backend_xid::text::bigint AS xid
        FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
        UNION ALL
        SELECT transaction::text::bigint
        FROM pg_prepared_xacts
        WHERE database IS DISTINCT FROM current_database()
        UNION ALL
        SELECT xid FROM reader_xids WHERE xids = 1
    )
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM snap, pg_snapshot_xip(snap.s)) THEN (SELECT pg_snapshot_xmin(s)::text::bigint FROM snap)
        ELSE COALESCE(
            (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
              WHERE (x::text::bigint & 4294967295) NOT IN (SELECT xid FROM elsewhere)),
            (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap))
    END << 16
$$;

-- Marks the calling transaction as one that never appends to the log. Must be
-- its first write: a transaction that already has an xid may have appended.
CREATE FUNCTION events_read_only_transaction() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'events_read_only_transaction() must come before the transaction''s first write'
            USING ERRCODE = 'active_sql_transaction';
    END IF;
    PERFORM set_config('chargeledger.events_read_only', 'on', true);
    LOCK TABLE events_read_only_marker IN SHARE MODE;
END
$$;

GRANT EXECUTE ON FUNCTION events_read_only_transaction() TO chargeledger_app;
