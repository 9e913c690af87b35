"""The process: wiring, locks, signals, the schedule, the watcher and the service files.

Owns ``daemon`` (:class:`~daemon.service.daemon.Daemon`: start and stop order, SIGHUP
reload, the periodic jobs, the heartbeat ``daemon.json``), ``ticker`` (the periodic jobs
on the monotonic clock), ``vault_lock`` (one daemon per vault), ``supervisor`` (a core
thread that dies ends the daemon non-zero), ``vault_watcher``, ``sdnotify``,
``batch_run`` (``vaultd run --batch``) and ``install/`` (systemd unit, launchd agent).

May import ``writer``, ``jobs``, ``generate``, ``sources``, ``vault_tools`` and the shared
modules (``config``, ``errors``, ``logs``, ``paths``, ``secrets``); never ``cli``
(import-linter: only ``cli`` imports ``cli``).
"""
