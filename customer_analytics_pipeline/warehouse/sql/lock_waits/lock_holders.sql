-- The sessions the session %(pid)s waits for (pg_blocking_pids), and for what: the lock
-- it asked for and has not been granted (pg_locks). A row lock is waited for on the
-- holder's transaction id; the tuple lock the waiter holds meanwhile names the table.
-- An organization's refresh lock is (%(lock_namespace)s, hashtext(id)): the organization
-- is found back by its hash.
WITH waited AS (
    SELECT w.locktype, w.mode, w.classid, w.objid,
           coalesce(w.relation, (SELECT t.relation FROM pg_locks AS t
                                 WHERE t.pid = %(pid)s AND t.granted AND t.locktype = 'tuple' LIMIT 1)) AS relation
    FROM pg_locks AS w
    WHERE w.pid = %(pid)s AND NOT w.granted
    LIMIT 1
)
SELECT b.pid,
       b.application_name,
       b.usename::text AS role,
       b.state,
       w.locktype,
       w.relation::regclass::text AS relation,
       (SELECT string_agg(DISTINCT h.mode, ', ') FROM pg_locks AS h
        WHERE h.pid = b.pid AND h.granted AND w.relation IS NOT NULL AND h.relation = w.relation) AS held_mode,
       CASE WHEN w.locktype = 'advisory' AND w.classid = %(lock_namespace)s::integer::oid THEN
           (SELECT o.id::text FROM organizations AS o WHERE hashtext(o.id::text)::oid = w.objid LIMIT 1)
       END AS organization_id
FROM unnest(pg_blocking_pids(%(pid)s)) AS blocking(pid)
JOIN pg_stat_activity AS b ON b.pid = blocking.pid
CROSS JOIN waited AS w
ORDER BY b.pid
