"""The eight asset checks of SPEC section 4."""
