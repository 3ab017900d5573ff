"""The HTTP API: WaveSpeed v3 compatible routes."""
