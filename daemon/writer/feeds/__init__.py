"""Followed channels, playlists and podcasts: :mod:`daemon.sources.feeds` reads their
feeds (network, any thread), ``subscriptions`` remembers what was seen and appends new
videos and episodes to the inbox (on the writer thread). Same imports as ``writer``.
"""
