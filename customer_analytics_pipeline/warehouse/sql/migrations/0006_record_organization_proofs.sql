-- What proves an organization's rows current without recomputing them, and when time
-- alone will change them (docs/contract.md, "Ticks at the cost of change").

-- Every source row a customer_analytics row can depend on, named by its table, its key
-- and its row version (xmin). An insert, an update (a new row version has a new xmin), a
-- delete or a move of any of these rows changes the set. Within one organization the
-- texts are unique (table prefix, then the table's key; xmin, digits only, comes last),
-- so hashes of two rows never cancel in an XOR. Rows of unknown customers (no client
-- row, or a NULL square_customer_id) are included: the organization-level proof then
-- changes with them too, which costs at most a needless `recent`, never a missed change.
-- The refresh groups it by customer (one fingerprint per customer), the hourly tick by
-- organization (one per organization); both hash row_version with the same seed.
CREATE OR REPLACE VIEW customer_analytics_source_row_versions AS
SELECT c.organization_id, c.square_customer_id,
       'c/' || c.square_customer_id || '/' || c.xmin::text AS row_version
FROM square_existing_clients AS c
UNION ALL
SELECT rp.organization_id, rp.square_customer_id,
       'r/' || rp.square_customer_id || '/' || rp.xmin::text
FROM referral_profiles AS rp
UNION ALL
SELECT b.organization_id, b.square_customer_id,
       'b/' || b.id || '/' || b.xmin::text
FROM bookings AS b
UNION ALL
SELECT p.organization_id, p.square_customer_id,
       'p/' || p.id || '/' || p.xmin::text
FROM payments AS p;

COMMENT ON VIEW customer_analytics_source_row_versions IS
    'One row per client, referral, booking and payment row: its organization, customer and a text naming the row and its version (xmin).';

-- The last instant at which a customer still has `segment` (computed with these day
-- counts): after it, time alone moves the customer to another segment. 'infinity' for
-- LOST, which time never changes. Days are exactly 86,400 seconds, as in
-- customer_analytics_segment.
CREATE OR REPLACE FUNCTION customer_analytics_segment_valid_until(
    segment          text,
    first_booking_at timestamptz,
    last_booking_at  timestamptz,
    new_days         integer,
    active_days      integer,
    at_risk_days     integer
) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE segment
        WHEN 'NEW' THEN first_booking_at + make_interval(hours => new_days * 24)
        WHEN 'ACTIVE' THEN last_booking_at + make_interval(hours => active_days * 24)
        WHEN 'AT_RISK' THEN last_booking_at + make_interval(hours => at_risk_days * 24)
        ELSE 'infinity'::timestamptz
    END
$$;

COMMENT ON FUNCTION customer_analytics_segment_valid_until(text, timestamptz, timestamptz, integer, integer, integer) IS
    'Last instant at which a customer keeps the given segment as time passes (infinity for LOST).';

ALTER TABLE customer_analytics_refresh_state
    ADD COLUMN IF NOT EXISTS source_fingerprint bigint,
    ADD COLUMN IF NOT EXISTS new_days integer,
    ADD COLUMN IF NOT EXISTS active_days integer,
    ADD COLUMN IF NOT EXISTS at_risk_days integer,
    ADD COLUMN IF NOT EXISTS segments_valid_until timestamptz,
    ADD COLUMN IF NOT EXISTS verified_at timestamptz,
    ADD COLUMN IF NOT EXISTS verified_as_of timestamptz;

COMMENT ON COLUMN customer_analytics_refresh_state.source_fingerprint IS
    'XOR of the hashes of every customer_analytics_source_row_versions row of the organization, taken by the last refresh before it computed; NULL: no proof (refresh before this column existed).';
COMMENT ON COLUMN customer_analytics_refresh_state.new_days IS 'new_days of the last refresh.';
COMMENT ON COLUMN customer_analytics_refresh_state.active_days IS 'active_days of the last refresh.';
COMMENT ON COLUMN customer_analytics_refresh_state.at_risk_days IS 'at_risk_days of the last refresh.';
COMMENT ON COLUMN customer_analytics_refresh_state.segments_valid_until IS
    'Last instant at which every customer of the organization keeps the segment the last refresh wrote (infinity: never changes).';
COMMENT ON COLUMN customer_analytics_refresh_state.verified_at IS
    'When an hourly tick last proved the organization''s rows current without a refresh (transaction time).';
COMMENT ON COLUMN customer_analytics_refresh_state.verified_as_of IS 'The as_of of that tick.';

-- Restated without a reference outside the repository (0001 set it for new databases).
COMMENT ON FUNCTION customer_analytics_segment(timestamptz, timestamptz, timestamptz, integer, integer, integer) IS
    'NEW / ACTIVE / AT_RISK / LOST segment (docs/contract.md, customer_analytics) for a given as_of and day counts.';
