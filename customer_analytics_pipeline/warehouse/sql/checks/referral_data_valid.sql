-- Referral columns against referral_profiles: no profile means not a referrer, NULLs
-- and zeros. The problem names each column that disagrees, with both values, except
-- referral_source: free text (it can name the referrer) never leaves the database.
WITH compared AS (
    SELECT ca.organization_id, ca.square_customer_id, ca.email_address, ca.phone_number,
           ca.is_referrer, rp.activated_at IS NOT NULL AS source_is_referrer,
           ca.activated_as_referrer_at, rp.activated_at AS source_activated_at,
           ca.referral_source IS DISTINCT FROM rp.referral_source AS referral_source_differs,
           ca.total_referrals, coalesce(rp.total_referrals, 0) AS source_total_referrals,
           ca.total_rewards_cents, coalesce(rp.total_rewards_cents, 0) AS source_total_rewards_cents
    FROM audited_rows AS ca
    LEFT JOIN (SELECT * FROM referral_profiles WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS rp
           ON rp.organization_id = ca.organization_id AND rp.square_customer_id = ca.square_customer_id
    LEFT JOIN (SELECT * FROM customer_analytics_refresh_state
               WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS s
           ON s.organization_id = ca.organization_id
    WHERE (rp.updated_at IS NULL OR rp.updated_at <= coalesce(s.last_refreshed_at, 'infinity'))
)
SELECT organization_id, square_customer_id,
       concat_ws('; ',
           CASE WHEN is_referrer IS DISTINCT FROM source_is_referrer
                THEN format('is_referrer %%s, referral_profiles give %%s', is_referrer::text, source_is_referrer::text) END,
           CASE WHEN activated_as_referrer_at IS DISTINCT FROM source_activated_at
                THEN format('activated_as_referrer_at %%s, referral_profiles give %%s',
                            coalesce(activated_as_referrer_at::text, 'NULL'),
                            coalesce(source_activated_at::text, 'NULL')) END,
           CASE WHEN referral_source_differs THEN 'referral_source differs (text not shown)' END,
           CASE WHEN total_referrals IS DISTINCT FROM source_total_referrals
                THEN format('total_referrals %%s, referral_profiles give %%s',
                            total_referrals, source_total_referrals) END,
           CASE WHEN total_rewards_cents IS DISTINCT FROM source_total_rewards_cents
                THEN format('total_rewards_cents %%s, referral_profiles give %%s',
                            total_rewards_cents, source_total_rewards_cents) END
       ) AS problem,
       email_address, phone_number
FROM compared
WHERE (is_referrer, activated_as_referrer_at, total_referrals, total_rewards_cents)
      IS DISTINCT FROM (source_is_referrer, source_activated_at, source_total_referrals, source_total_rewards_cents)
   OR referral_source_differs
