"""Marks that say an output was AI-made: a signed C2PA manifest and an invisible watermark."""
