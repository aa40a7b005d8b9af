"""The operators' commands on the application's database (``migrate``, ``refresh``,
``check``) and the production runbook's processes (``code-server``, ``webserver``,
``daemon``): no Dagster definitions, no demo generator, no ``dev`` extra."""
