-- The read watermark on every deployment path (ADR 0002, issue 11).
--
-- 1. Hot standby. A snapshot taken in recovery lists every in-progress xid in
--    its subxip array and none in xip, so the old function fell back to xmax
--    and let a reader pass a transaction still open on the primary. In recovery
--    the watermark is the snapshot's xmin: the oldest xid the standby knows to
--    be running (it learns of every xid below one it has seen in the WAL, even
--    of a transaction that has not written anything yet).
-- 2. Prepared transactions of another database no longer count (they cannot
--    write here); one of this database still does.
-- 3. Read-only log transactions. A transaction that writes read models but
--    never appends events (a projector batch) calls
--    events_read_only_transaction() first: it holds a shared advisory lock for
--    its lifetime and sets chargeledger.events_read_only, and the insert
--    trigger below refuses it any append. The watermark skips the xid of a
--    transaction holding that lock (matched by virtual transaction id in one
--    pg_locks row set each, so a later transaction of the same backend is never
--    mistaken for it), so a projector batch no longer holds back every reader.

CREATE OR REPLACE FUNCTION events_watermark() RETURNS bigint
LANGUAGE sql STABLE AS $$
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    elsewhere AS (
        SELECT backend_xid::text::bigint AS xid
        FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
        UNION ALL
        SELECT transaction::text::bigint
        FROM pg_prepared_xacts
        WHERE database IS DISTINCT FROM current_database()
        UNION ALL
        SELECT own.transactionid::text::bigint
        FROM pg_locks own
        JOIN pg_locks marker ON marker.virtualtransaction = own.virtualtransaction
        WHERE own.locktype = 'transactionid' AND own.mode = 'ExclusiveLock' AND own.granted
          AND marker.locktype = 'advisory' AND marker.granted AND marker.mode = 'ShareLock'
          AND marker.classid = 1128811591::oid AND marker.objid = 1::oid AND marker.objsubid = 2
          AND marker.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    )
    SELECT CASE
        WHEN pg_is_in_recovery() THEN (SELECT pg_snapshot_xmin(s)::text::bigint FROM snap)
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
    PERFORM pg_advisory_xact_lock_shared(1128811591, 1);
END
$$;

CREATE FUNCTION refuse_append_in_read_only_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('chargeledger.events_read_only', true) = 'on' THEN
        RAISE EXCEPTION 'this transaction declared itself read-only for the log (events_read_only_transaction)'
            USING ERRCODE = 'read_only_sql_transaction';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_read_only_transactions BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_in_read_only_transaction();

GRANT EXECUTE ON FUNCTION events_read_only_transaction() TO chargeledger_app;
