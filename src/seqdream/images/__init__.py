"""Reference images in: parsing, validation and safe fetching."""
