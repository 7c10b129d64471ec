"""Periodic batches: the series workflow, its pure state, one run of a series, and their types.

``workflow.py`` holds ``BatchSeries`` (the workflow a series' schedule starts) and ``run.py``
``BatchSeriesRun`` (one batch of a series, committing its outcome to the series' book);
``state.py`` is the series' book (pure); ``types.py`` and ``messages.py`` what the series' users
and messages carry. The client side (creating, describing, listing series) is in
``batch_orchestra._client``.
"""
