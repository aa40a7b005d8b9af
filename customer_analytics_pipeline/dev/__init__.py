"""The development and operator layer: the ``customer-analytics`` command line, the
Dagster instance set-up of ``demo``/``ui``, and the demo data (whose numpy comes with the
``dev`` extra). Nothing outside this package imports it."""
