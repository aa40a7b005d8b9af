"""Customer analytics for Square-synced appointment businesses, kept in PostgreSQL by Dagster."""
