-- Organizations neither refreshed nor verified by a tick within %(window)s of now: the
-- freshness promise broken (the hourly schedule stopped, or its runs keep failing). An
-- organization created within the window that no tick has reached yet is not stale.
-- Returns each with its name and the last instant its rows were proven current (NULL: never).
SELECT o.id::text AS organization_id,
       o.name,
       greatest(s.last_refreshed_at, s.verified_at) AS current_at
FROM organizations AS o
LEFT JOIN customer_analytics_refresh_state AS s ON s.organization_id = o.id
WHERE coalesce(greatest(s.last_refreshed_at, s.verified_at), o.created_at, '-infinity')
      < now() - %(window)s::interval
ORDER BY current_at NULLS FIRST, o.id
