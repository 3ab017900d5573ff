"""The `seqdream` command line."""
