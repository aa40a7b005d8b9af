"""Tests of the dev layer."""
