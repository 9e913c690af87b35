"""The process: wiring, lock, signals, schedule, watcher and service files.

Owns ``daemon`` (:class:`~daemon.service.daemon.Daemon`: start and stop order, the
vault lock, SIGHUP reload, the APScheduler jobs, the heartbeat), ``vault_watcher``,
``sdnotify``, ``batch_run`` (``vaultd run --batch``) and ``install/`` (systemd unit,
launchd agent). May import ``jobs``, ``writer``, ``generate``, ``sources`` and the
shared modules; never ``cli``.
"""
