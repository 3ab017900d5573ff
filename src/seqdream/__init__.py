"""seqdream: a self-hosted, WaveSpeed-compatible Seedream V4 image service."""

__version__ = "0.1.0"
