-- What each customer's row was computed from: a fingerprint of the customer's client,
-- booking, payment and referral rows (their ids and row versions, xmin), taken in the
-- refresh transaction that computed the row. A source row inserted, updated, deleted or
-- moved to or from the customer changes it, so `recent` may skip a customer whose
-- fingerprint is unchanged (docs/contract.md, customer_analytics). Goes with the client (cascade).
CREATE TABLE IF NOT EXISTS customer_analytics_source_fingerprints (
    organization_id     uuid   NOT NULL,
    square_customer_id  text   NOT NULL,
    fingerprint         bigint NOT NULL,
    CONSTRAINT customer_analytics_source_fingerprints_pkey PRIMARY KEY (organization_id, square_customer_id),
    CONSTRAINT customer_analytics_source_fingerprints_client_fkey
        FOREIGN KEY (organization_id, square_customer_id)
        REFERENCES square_existing_clients (organization_id, square_customer_id)
        ON DELETE CASCADE
);

COMMENT ON TABLE customer_analytics_source_fingerprints IS
    'Per customer: XOR of hashes of (table, id, xmin) of its client, booking, payment and referral rows when its customer_analytics row was last computed.';
