"""Sync new orders into a warehouse table every night: a series over a growing SQLite table."""
