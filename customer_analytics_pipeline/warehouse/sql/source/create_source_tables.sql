-- Source tables owned by the Square-synced booking application (docs/contract.md, Source tables).
-- The pipeline never creates these in production; this DDL exists for the demo and
-- the tests. Idempotent: safe to run on a database that already has them.

CREATE TABLE IF NOT EXISTS organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS locations (
    organization_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    square_location_id  text NOT NULL,
    name                text,
    timezone            text,
    PRIMARY KEY (organization_id, square_location_id)
);

CREATE TABLE IF NOT EXISTS square_existing_clients (
    organization_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    square_customer_id  text NOT NULL,
    given_name          text,
    family_name         text,
    email_address       text,
    phone_number        text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (organization_id, square_customer_id)
);

CREATE TABLE IF NOT EXISTS bookings (
    organization_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id                    text NOT NULL,
    square_customer_id    text,
    location_id           text NOT NULL,
    status                text NOT NULL,
    start_at              timestamptz NOT NULL,
    technician_id         text,
    service_variation_id  text,
    customer_note         text,
    seller_note           text,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (organization_id, id)
);

CREATE TABLE IF NOT EXISTS payments (
    organization_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id                  text NOT NULL,
    square_customer_id  text,
    location_id         text,
    booking_id          text,
    status              text NOT NULL,
    amount_cents        bigint NOT NULL,
    tip_cents           bigint NOT NULL DEFAULT 0,
    refunded_cents      bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (organization_id, id)
);

CREATE TABLE IF NOT EXISTS referral_profiles (
    organization_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    square_customer_id   text NOT NULL,
    referral_code        text,
    activated_at         timestamptz,
    referral_source      text,
    total_referrals      int NOT NULL DEFAULT 0,
    total_rewards_cents  bigint NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (organization_id, square_customer_id)
);

CREATE TABLE IF NOT EXISTS application_logs (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    level       text,
    message     text,
    payload     jsonb
);
