"""The eight checks of SPEC section 4, evaluated without Dagster."""
