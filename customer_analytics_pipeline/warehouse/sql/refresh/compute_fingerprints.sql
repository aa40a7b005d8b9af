-- The source fingerprint of every customer in refresh_targets: the XOR of a 64-bit hash
-- of (id, xmin) of each of its booking and payment rows, and of the xmin of its client
-- and referral rows, each table hashed with its own seed so rows of two tables never
-- cancel out. Every insert, update (a new row version has a new xmin), delete or move of
-- one of those rows changes it. %(seed)s comes from the refresh's code version, so new
-- refresh SQL invalidates every fingerprint. Run before the metrics are computed: the
-- metrics then see at least the rows fingerprinted (a later change only makes the next
-- refresh recompute).
CREATE TEMP TABLE refresh_fingerprints ON COMMIT DROP AS
WITH booking_hashes AS (
    SELECT b.organization_id, b.square_customer_id,
           bit_xor(hashtextextended(b.id || '/' || b.xmin::text, %(seed)s::bigint)) AS hash
    FROM bookings AS b
    JOIN refresh_targets AS t USING (organization_id, square_customer_id)
    GROUP BY b.organization_id, b.square_customer_id
),
payment_hashes AS (
    SELECT p.organization_id, p.square_customer_id,
           bit_xor(hashtextextended(p.id || '/' || p.xmin::text, %(seed)s::bigint + 1)) AS hash
    FROM payments AS p
    JOIN refresh_targets AS t USING (organization_id, square_customer_id)
    GROUP BY p.organization_id, p.square_customer_id
)
SELECT t.organization_id, t.square_customer_id,
       hashtextextended(c.xmin::text, %(seed)s::bigint + 2)
       # coalesce(hashtextextended(rp.xmin::text, %(seed)s::bigint + 3), 0)
       # coalesce(bh.hash, 0)
       # coalesce(ph.hash, 0) AS fingerprint
FROM refresh_targets AS t
JOIN square_existing_clients AS c USING (organization_id, square_customer_id)
LEFT JOIN referral_profiles AS rp USING (organization_id, square_customer_id)
LEFT JOIN booking_hashes AS bh USING (organization_id, square_customer_id)
LEFT JOIN payment_hashes AS ph USING (organization_id, square_customer_id)
