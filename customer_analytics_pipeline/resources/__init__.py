"""Dagster resources."""

from customer_analytics_pipeline.resources.database import PostgresResource

__all__ = ["PostgresResource"]
