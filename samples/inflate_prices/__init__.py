"""Inflate product prices: a database migration run as a Batch Orchestra batch.

See README.md in this folder.
"""
