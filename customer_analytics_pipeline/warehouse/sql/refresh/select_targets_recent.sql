-- recent mode: the clients with a client, booking, payment or referral row stamped
-- inside the look-back window, plus every client that has no customer_analytics row
-- yet. Everyone else only gets the segment pass.
CREATE TEMP TABLE refresh_targets ON COMMIT DROP AS
WITH changed_customers AS (
    SELECT organization_id, square_customer_id
    FROM bookings
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
      AND updated_at >= %(changed_since)s::timestamptz
    UNION
    SELECT organization_id, square_customer_id
    FROM payments
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
      AND updated_at >= %(changed_since)s::timestamptz
    UNION
    SELECT organization_id, square_customer_id
    FROM referral_profiles
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
      AND updated_at >= %(changed_since)s::timestamptz
)
SELECT c.organization_id, c.square_customer_id
FROM square_existing_clients AS c
WHERE c.organization_id = ANY(%(organization_ids)s::uuid[])
  AND (
        c.updated_at >= %(changed_since)s::timestamptz
     OR EXISTS (
            SELECT 1 FROM changed_customers AS ch
            WHERE ch.organization_id = c.organization_id
              AND ch.square_customer_id = c.square_customer_id)
     OR NOT EXISTS (
            SELECT 1 FROM customer_analytics AS ca
            -- Restated on ca so the hashed subplan reads the batch's rows, not the table.
            WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
              AND ca.organization_id = c.organization_id
              AND ca.square_customer_id = c.square_customer_id)
  )
