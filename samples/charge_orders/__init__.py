"""Charge, ship and email each order in its own workflow: a batch that starts item workflows."""
