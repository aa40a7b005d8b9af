"""Names of the customer_analytics columns (docs/contract.md, customer_analytics), shared by refresh and checks."""

CUSTOMER_ANALYTICS_TABLE = "customer_analytics"
# The log of segment changes the refresh writes beside it (docs/contract.md, Segment movements).
SEGMENT_CHANGES_TABLE = "customer_segment_changes"

CUSTOMER_ANALYTICS_KEY = ("organization_id", "square_customer_id")

# Every column the refresh computes, in table order (key first). created_at and
# updated_at are bookkeeping columns written by the upsert itself.
CUSTOMER_ANALYTICS_CONTENT_COLUMNS = (
    *CUSTOMER_ANALYTICS_KEY,
    "given_name",
    "family_name",
    "email_address",
    "phone_number",
    "first_booking_at",
    "first_booking_id",
    "first_booking_location_id",
    "last_booking_at",
    "last_payment_at",
    "total_accepted_bookings",
    "total_cancelled_by_customer",
    "total_cancelled_by_seller",
    "total_no_shows",
    "total_revenue_cents",
    "total_tips_cents",
    "total_payments",
    "avg_ticket_cents",
    "booking_notes",
    "preferred_technician_id",
    "preferred_service_variation_id",
    "distinct_locations",
    "is_referrer",
    "activated_as_referrer_at",
    "referral_source",
    "total_referrals",
    "total_rewards_cents",
    "customer_segment",
)

CUSTOMER_ANALYTICS_COLUMNS = (*CUSTOMER_ANALYTICS_CONTENT_COLUMNS, "created_at", "updated_at")

CUSTOMER_SEGMENTS = ("NEW", "ACTIVE", "AT_RISK", "LOST")
