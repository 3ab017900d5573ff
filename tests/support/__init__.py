"""Helpers the tests share (imported as `support.*`; conftest.py only holds fixtures)."""
