"""Sources: transcripts and metadata of every kind of source, for worker processes.

Owns the ``Source`` seam and its table of kinds (``base``): YouTube videos and playlists
(with proxies, pacing, the cache, optional yt-dlp), subtitle files, recordings in the
vault, podcasts, caption-less videos' audio, transcription engines, and the feed client
of followed channels.

Pure: may import ``vault_tools`` and the shared modules (``config``, ``errors``,
``logs``, ``paths``, ``secrets``); never ``writer``, ``jobs``, ``service`` or ``cli``
(import-linter). ``generate`` only for types (``JobSpec`` under ``TYPE_CHECKING``): at
run time ``generate`` calls ``sources``, never the other way round.
"""
