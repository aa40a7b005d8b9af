-- Referral columns against referral_profiles: no profile means not a referrer, NULLs
-- and zeros.
SELECT ca.organization_id, ca.square_customer_id,
       format('referral columns (%%s, %%s, %%s, %%s, %%s) disagree with referral_profiles',
              ca.is_referrer, coalesce(ca.activated_as_referrer_at::text, 'NULL'),
              coalesce(ca.referral_source, 'NULL'), ca.total_referrals, ca.total_rewards_cents) AS problem,
       ca.email_address, ca.phone_number
FROM customer_analytics AS ca
LEFT JOIN referral_profiles AS rp
       ON rp.organization_id = ca.organization_id AND rp.square_customer_id = ca.square_customer_id
LEFT JOIN customer_analytics_refresh_state AS s ON s.organization_id = ca.organization_id
WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
  AND (rp.updated_at IS NULL OR rp.updated_at <= coalesce(s.last_refreshed_at, 'infinity'))
  AND (ca.is_referrer, ca.activated_as_referrer_at, ca.referral_source, ca.total_referrals, ca.total_rewards_cents)
      IS DISTINCT FROM
      (rp.activated_at IS NOT NULL, rp.activated_at, rp.referral_source,
       coalesce(rp.total_referrals, 0), coalesce(rp.total_rewards_cents, 0))
