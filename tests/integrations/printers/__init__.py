"""Tests of the printer drivers."""
