"""How a deployment's events are cut into windows: kept in the store
(:mod:`opsloop.store.windowing`) and importable here, where the monitoring's windows use it.

It lives in the state layer because the label join, which the serving layer's feedback
uses too, counts a label as late by the window of its answer, and serving must not import
the monitoring, which imports serving: the dependency goes one way, monitoring -> serving
-> store.

>>> w = Windowing("5min")
>>> w.window_ms, w.start_of(1_000_000), duration_ms("1h")
(300000, 900000, 3600000)
"""

from opsloop.store.windowing import DURATION_PATTERN, MAX_DURATION_MS, Windowing, duration_ms

__all__ = ["DURATION_PATTERN", "MAX_DURATION_MS", "Windowing", "duration_ms"]
