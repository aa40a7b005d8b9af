-- customer_analytics: one row per square_existing_clients row (docs/contract.md, customer_analytics),
-- plus the segment rule and the per-organization refresh state.

CREATE TABLE IF NOT EXISTS customer_analytics (
    organization_id                 uuid        NOT NULL,
    square_customer_id              text        NOT NULL,
    given_name                      text,
    family_name                     text,
    email_address                   text,
    phone_number                    text,
    first_booking_at                timestamptz,
    first_booking_id                text,
    first_booking_location_id       text,
    last_booking_at                 timestamptz,
    last_payment_at                 timestamptz,
    total_accepted_bookings         integer     NOT NULL DEFAULT 0,
    total_cancelled_by_customer     integer     NOT NULL DEFAULT 0,
    total_cancelled_by_seller       integer     NOT NULL DEFAULT 0,
    total_no_shows                  integer     NOT NULL DEFAULT 0,
    total_revenue_cents             bigint      NOT NULL DEFAULT 0,
    total_tips_cents                bigint      NOT NULL DEFAULT 0,
    total_payments                  integer     NOT NULL DEFAULT 0,
    avg_ticket_cents                bigint,
    booking_notes                   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    preferred_technician_id         text,
    preferred_service_variation_id  text,
    distinct_locations              integer     NOT NULL DEFAULT 0,
    is_referrer                     boolean     NOT NULL DEFAULT false,
    activated_as_referrer_at        timestamptz,
    referral_source                 text,
    total_referrals                 integer     NOT NULL DEFAULT 0,
    total_rewards_cents             bigint      NOT NULL DEFAULT 0,
    customer_segment                text        NOT NULL,
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customer_analytics_pkey PRIMARY KEY (organization_id, square_customer_id),
    CONSTRAINT customer_analytics_client_fkey
        FOREIGN KEY (organization_id, square_customer_id)
        REFERENCES square_existing_clients (organization_id, square_customer_id)
        ON DELETE CASCADE
);

-- Segment dashboards filter one organization by segment.
CREATE INDEX IF NOT EXISTS customer_analytics_org_segment_idx
    ON customer_analytics (organization_id, customer_segment);

COMMENT ON TABLE customer_analytics IS
    'One row per square_existing_clients row: booking, payment, note and referral metrics. Owned and refreshed by the customer_analytics Dagster asset.';
COMMENT ON COLUMN customer_analytics.organization_id IS 'Organization of the client (key, with square_customer_id).';
COMMENT ON COLUMN customer_analytics.square_customer_id IS 'Square customer id of the client (key, with organization_id).';
COMMENT ON COLUMN customer_analytics.given_name IS 'Copied from square_existing_clients.given_name.';
COMMENT ON COLUMN customer_analytics.family_name IS 'Copied from square_existing_clients.family_name.';
COMMENT ON COLUMN customer_analytics.email_address IS 'Copied from square_existing_clients.email_address.';
COMMENT ON COLUMN customer_analytics.phone_number IS 'Copied from square_existing_clients.phone_number.';
COMMENT ON COLUMN customer_analytics.first_booking_at IS 'Earliest start_at of the customer''s ACCEPTED bookings; NULL if none.';
COMMENT ON COLUMN customer_analytics.first_booking_id IS 'id of the first accepted booking; ties on start_at go to the smallest id in byte order.';
COMMENT ON COLUMN customer_analytics.first_booking_location_id IS 'location_id of the first accepted booking (same tie rule as first_booking_id).';
COMMENT ON COLUMN customer_analytics.last_booking_at IS 'Latest start_at of the customer''s ACCEPTED bookings (future ones included); NULL if none.';
COMMENT ON COLUMN customer_analytics.last_payment_at IS 'Latest created_at of the customer''s COMPLETED payments; NULL if none.';
COMMENT ON COLUMN customer_analytics.total_accepted_bookings IS 'Number of bookings in status ACCEPTED.';
COMMENT ON COLUMN customer_analytics.total_cancelled_by_customer IS 'Number of bookings in status CANCELLED_BY_CUSTOMER.';
COMMENT ON COLUMN customer_analytics.total_cancelled_by_seller IS 'Number of bookings in status CANCELLED_BY_SELLER.';
COMMENT ON COLUMN customer_analytics.total_no_shows IS 'Number of bookings in status NO_SHOW.';
COMMENT ON COLUMN customer_analytics.total_revenue_cents IS 'Sum of amount_cents - refunded_cents over COMPLETED payments, in cents; may be negative; 0 if none.';
COMMENT ON COLUMN customer_analytics.total_tips_cents IS 'Sum of tip_cents over COMPLETED payments, in cents; 0 if none.';
COMMENT ON COLUMN customer_analytics.total_payments IS 'Number of COMPLETED payments.';
COMMENT ON COLUMN customer_analytics.avg_ticket_cents IS 'total_revenue_cents / total_payments rounded half away from zero to a whole cent; NULL when total_payments = 0.';
COMMENT ON COLUMN customer_analytics.booking_notes IS 'JSON array, one object {booking_id, start_at (UTC ISO 8601), customer_note, seller_note} per booking of any status with a customer or seller note that is not NULL or only space/tab/LF/CR; ordered by start_at, then id in byte order; [] if none.';
COMMENT ON COLUMN customer_analytics.preferred_technician_id IS 'Non-null technician_id with the most ACCEPTED bookings; ties: latest accepted booking, then smallest id in byte order; NULL if none.';
COMMENT ON COLUMN customer_analytics.preferred_service_variation_id IS 'Non-null service_variation_id with the most ACCEPTED bookings; ties: latest accepted booking, then smallest id in byte order; NULL if none.';
COMMENT ON COLUMN customer_analytics.distinct_locations IS 'Number of distinct location_id among ACCEPTED bookings, with or without a locations row.';
COMMENT ON COLUMN customer_analytics.is_referrer IS 'True when a referral profile exists and its activated_at is not NULL.';
COMMENT ON COLUMN customer_analytics.activated_as_referrer_at IS 'referral_profiles.activated_at; NULL if no profile.';
COMMENT ON COLUMN customer_analytics.referral_source IS 'referral_profiles.referral_source; NULL if no profile.';
COMMENT ON COLUMN customer_analytics.total_referrals IS 'referral_profiles.total_referrals; 0 if no profile.';
COMMENT ON COLUMN customer_analytics.total_rewards_cents IS 'referral_profiles.total_rewards_cents; 0 if no profile.';
COMMENT ON COLUMN customer_analytics.customer_segment IS 'Relative to the refresh as_of (days of exactly 86400 s): NEW if first_booking_at >= as_of - new_days; else ACTIVE if last_booking_at >= as_of - active_days; else AT_RISK if last_booking_at >= as_of - at_risk_days; else LOST (also with no accepted booking). Defaults 30/90/180.';
COMMENT ON COLUMN customer_analytics.created_at IS 'Refresh transaction time when the row was first written.';
COMMENT ON COLUMN customer_analytics.updated_at IS 'Refresh transaction time when the row content last changed.';

-- The one definition of the segment rule, shared by full recomputation and by the
-- segment-only pass of the recent mode. make_interval(hours => ...) is exact
-- (86,400 s a day), unlike interval 'N days' which follows daylight saving.
CREATE OR REPLACE FUNCTION customer_analytics_segment(
    first_booking_at timestamptz,
    last_booking_at  timestamptz,
    as_of            timestamptz,
    new_days         integer,
    active_days      integer,
    at_risk_days     integer
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN first_booking_at >= as_of - make_interval(hours => new_days * 24) THEN 'NEW'
        WHEN last_booking_at >= as_of - make_interval(hours => active_days * 24) THEN 'ACTIVE'
        WHEN last_booking_at >= as_of - make_interval(hours => at_risk_days * 24) THEN 'AT_RISK'
        ELSE 'LOST'
    END
$$;

COMMENT ON FUNCTION customer_analytics_segment(timestamptz, timestamptz, timestamptz, integer, integer, integer) IS
    'NEW / ACTIVE / AT_RISK / LOST segment of docs/contract.md, customer_analytics for a given as_of and day counts.';

-- When each organization was last refreshed, how, and how many rows it then had.
CREATE TABLE IF NOT EXISTS customer_analytics_refresh_state (
    organization_id   uuid        PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    last_refreshed_at timestamptz NOT NULL,
    mode              text        NOT NULL CHECK (mode IN ('full', 'recent')),
    as_of             timestamptz NOT NULL,
    row_count         bigint      NOT NULL
);

COMMENT ON TABLE customer_analytics_refresh_state IS
    'Last refresh of customer_analytics per organization: when (transaction time), mode, as_of and the row count it left.';
