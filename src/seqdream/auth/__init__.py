"""API keys: created by the CLI, shown once, stored as hashes."""
