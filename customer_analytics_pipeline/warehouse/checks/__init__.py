"""The eight checks of docs/contract.md, The eight checks, evaluated without Dagster."""
