-- The watermark's "another database's transaction" test, made race-free
-- (commands/tests/log/global_order.rs failed about one CI run in three).
--
-- 0015 read each xid's database from pg_stat_activity's backend_xid. That
-- view copies a backend slot's status (its database) and the slot's current
-- xid in two steps: when a backend of another database exits and a backend of
-- this one takes its slot in between, a writer of this database is read as
-- another's, its xid is left out, and the watermark passes a transaction
-- still open here; a reader then skips its events. Now an xid is another
-- database's only when the lock manager says which backend (pid) holds it and
-- that backend is connected to another database: a pid names one backend for
-- its whole life, and an xid whose holder cannot be matched counts as ours
-- (the watermark may wait a little, never skip).

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
        SELECT held.transactionid::text::bigint AS xid
        FROM pg_locks held
        JOIN pg_stat_activity backend ON backend.pid = held.pid
        WHERE held.locktype = 'transactionid' AND held.mode = 'ExclusiveLock' AND held.granted
          AND backend.datname IS NOT NULL AND backend.datname <> current_database()
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
