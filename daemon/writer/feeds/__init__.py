"""Followed channels and playlists: ``fetch`` reads their feeds (network, any thread),
``subscriptions`` remembers what was seen and appends new videos to the inbox (on the
writer thread). Same imports as ``writer``.
"""
