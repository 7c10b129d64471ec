"""The pure batch engine: the batch's state and every rule about it, with no Temporal import.

The workflow shell (``batch_orchestra._workflow``) turns Temporal's events (an attempt ended, a
page enqueued, an operator paused, time passed) into calls of ``BatchEngine`` and the engine's
decisions (start these attempts and discoveries, call the tracker, hand over) into commands.
Time comes in as a number; logging goes through a small protocol; nothing here does I/O.
"""
