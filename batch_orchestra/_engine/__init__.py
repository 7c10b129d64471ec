"""The pure batch engine: no Temporal imports, driven by the workflow shell and unit-tested alone.

``engine.py`` holds ``BatchEngine``: the batch's state and every rule about it (events in as
method calls with the time as a number, decisions out as return values). Its parts have one job
each: ``admission.py``, ``controls.py``, ``failure_ledger.py``, ``handover.py``,
``hook_calls.py``, ``checkpoints.py``, ``outbox.py``, ``results.py``, ``identity.py`` and the
``Scheduler`` (``scheduler.py``, a facade over its own parts; see its docstring), flow control
(``flow.py``), progress (``progress.py``) and the hand-over codec (``continuation.py``). The
workflow shell (``batch_orchestra._workflow``) turns Temporal's events into the engine's events
and its decisions into commands. Modules here keep plain names, each with its own ``__all__``;
public names are re-exported by ``batch_orchestra``.
"""
