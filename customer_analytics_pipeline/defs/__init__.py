"""The Dagster layer: assets, the eight checks, partitions, jobs, schedules, sensors,
resources and the run launcher, all built by ``build_definitions`` from one ``Settings``.
It imports the database layer (``warehouse``), never the development layer (``dev``)."""
