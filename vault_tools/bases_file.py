"""``Study Notes.base``: the Obsidian Bases view vaultd ships at the vault root.

Bases (Obsidian's core plugin) reads a YAML file with ``filters``, ``formulas``,
``properties`` and ``views`` (each view: ``type`` table or cards, ``name``, its own
``filters``, ``order`` of the columns). The views select by the
``type`` frontmatter key vaultd writes (study-note, assessment, topic-note), never by
folder, so they keep working when the user moves notes. The file is created once when
absent; a file of that name is the user's and is never replaced.
"""

from __future__ import annotations

BASE_NAME = "Study Notes.base"

BASE_TEXT = """\
# Created by vaultd once; yours to edit (vaultd never rewrites this file).
filters:
  or:
    - 'type == "study-note"'
    - 'type == "assessment"'
    - 'type == "topic-note"'
formulas:
  minutes: 'if(duration, (duration / 60).round(0), "")'
properties:
  note.title:
    displayName: Title
  note.channel:
    displayName: Channel
  formula.minutes:
    displayName: Minutes
  note.created:
    displayName: Created
  note.tags:
    displayName: Tags
views:
  - type: table
    name: Study notes
    filters:
      and:
        - 'type == "study-note"'
    order:
      - file.name
      - note.title
      - note.channel
      - formula.minutes
      - note.created
      - note.tags
  - type: cards
    name: Study cards
    filters:
      and:
        - 'type == "study-note"'
    order:
      - note.title
      - note.channel
      - note.created
  - type: table
    name: Assessments
    filters:
      and:
        - 'type == "assessment"'
    order:
      - file.name
      - note.notes
      - note.created
  - type: table
    name: Topics
    filters:
      and:
        - 'type == "topic-note"'
    order:
      - file.name
      - note.topic
      - note.videos
"""
