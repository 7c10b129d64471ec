"""The pure batch engine: no Temporal imports, driven by the workflow shell and unit-tested alone.

``scheduler.py`` is the facade the workflow talks to, composed of parts with one job each (see its
docstring); ``continuation.py`` carries it across continue-as-new; ``flow.py``, ``progress.py``,
``history.py``, ``budgets.py`` and ``ranges.py`` are the rest of the core. Modules here keep plain
names, each with its own ``__all__``; public names are re-exported by ``batch_orchestra``.
"""
