"""Content checks on generated images."""
