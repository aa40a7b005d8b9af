"""Tests of the warehouse layer."""
