"""``python -m customer_analytics_pipeline`` is the ``customer-analytics`` command."""

import sys

from customer_analytics_pipeline.dev.cli import main

sys.exit(main())
