"""Imported last by the worker fork server: freeze the preloaded objects out of the
garbage collector's sight, so that forked workers share their pages.

Owns nothing at run time; its import has one effect. After a fork every page of the
fork server is shared with the worker until one of them writes to it. Python's cyclic
garbage collector writes to every object it examines (the ``gc_refs`` field in the
object's header), so the first full collection in a worker copied the whole preloaded
heap: measured on the bench machine, 0.15 s of a worker's CPU between building its first
request and sending it, on the path of the first model call (benchmarks/README.md, "Cold
start"). :func:`gc.freeze` moves every object alive now to a permanent generation that
collections skip (the CPython documentation's advice for pre-fork servers); objects the
worker creates itself are still collected as usual. No ``gc.collect()`` first: the few
cycles the imports left cost less memory than the 0.09 s a full collection of the
preloaded heap took in the fork server, on the path of the first call.

:mod:`daemon.jobs.warm_start` puts this module at the end of every preload list.
"""

from __future__ import annotations

import gc

gc.freeze()
