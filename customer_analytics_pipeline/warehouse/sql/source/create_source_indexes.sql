-- OPTIONAL migration for the application's owners: indexes on the application's
-- source tables that make the pipeline's queries fast. Built CONCURRENTLY so the
-- application keeps writing meanwhile; therefore each statement runs on its own,
-- outside a transaction (the runner splits this file on ';' at line ends).

-- (No index on updated_at: no query of the pipeline reads a stamp. Earlier versions
-- built (organization_id, updated_at) on the four customer tables for a look-back
-- window that no longer exists; where they exist, their owners may drop them.)

-- Per-customer recomputation: a customer's bookings and payments. The first also
-- serves dashboards over the daily appointments view, which read one organization's
-- bookings (its day is computed per location time zone, so no start_at index helps).
CREATE INDEX CONCURRENTLY IF NOT EXISTS bookings_org_customer_idx
    ON bookings (organization_id, square_customer_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_org_customer_idx
    ON payments (organization_id, square_customer_id);
