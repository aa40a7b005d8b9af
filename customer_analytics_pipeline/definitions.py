"""The code location: ``customer_analytics_pipeline.definitions:defs`` (``workspace.yaml``
loads it). The only place the code location reads the environment: a malformed setting
fails loading here, naming the variable."""

from customer_analytics_pipeline.defs.factory import build_definitions
from customer_analytics_pipeline.settings import load_settings

defs = build_definitions(load_settings())
