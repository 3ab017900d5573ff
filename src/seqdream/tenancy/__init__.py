"""Sharing one service between many API keys: fair claims, per-key limits, idempotent submits
and the usage ledger. Everything is kept in the database, so it holds across API processes."""
