"""Compose study-note and assessment files (frontmatter + body) from generated content.

The frontmatter contract (Dataview users query these keys) lives here and only here:

* study note: ``type: study-note``, title, source, video_id, channel, duration (s),
  published, created, tags, aliases, assessment ("[[...]]"), model,
  tokens {in, out, cached}, source_key; a podcast episode with Podcasting 2.0 chapters
  also gets ``chapters`` (``["0:00 Welcome", "12:30 Light reactions"]``)
* assessment: ``type: assessment``, source, video_id, notes ("[[...]]"), source_key

Study-note ``tags`` never include a tag of the Spaced Repetition plugin (see
:func:`topic_tags`); an assessment stays a flashcard source through the
``#flashcards/<deck>`` line in its body, as the plugin reads it.

``source_key`` (the ledger key) is how the daemon recognises its own notes by identity,
not by path.
"""

from __future__ import annotations

import re
from typing import Any

from vault_tools import frontmatter
from vault_tools.models import VideoContent, format_timestamp
from vault_tools.sanitize import strip_region_markers
from vault_tools.sr_settings import SrSettings


def wikilink(rel_path_no_ext: str, label: str | None = None) -> str:
    if label and label != rel_path_no_ext.rsplit("/", 1)[-1]:
        return f"[[{rel_path_no_ext}|{label}]]"
    return f"[[{rel_path_no_ext}]]"


_TAGS = re.compile(r"<%.*?%>|<[/!]?[A-Za-z][^>]*>|[\x00-\x08\x0b-\x1f\x7f]", re.S)


def plain_text(value: str) -> str:
    """Metadata from a video (title, channel) as plain text: no HTML or Templater tags,
    no vaultd region markers and no ``%%`` (the body's rule, :mod:`vault_tools.sanitize`,
    holds for frontmatter too), no control characters, one line. Plugins may render
    frontmatter values."""
    text = strip_region_markers(_TAGS.sub(" ", value)).replace("%%", " ")
    return " ".join(text.split())


def _plain_list(values: list[str]) -> list[str]:
    return [clean for v in values if (clean := plain_text(v))]


def _source(content: VideoContent) -> str:
    meta = content.meta
    return plain_text(meta.url or (meta.file_path or meta.key))


def topic_tags(tags: list[str], sr: SrSettings | None = None) -> list[str]:
    """Generated tags a study note may carry: plain text, each once, and never a tag
    the Spaced Repetition plugin reacts to (its flashcard tags would make the note a card
    deck, its review tags put it in the note-review queue). ``sr`` holds the vault's
    plugin settings; the plugin's defaults when None."""
    sr = sr or SrSettings()
    kept = (plain_text(t) for t in tags)
    return list(dict.fromkeys(t for t in kept if t and not sr.is_plugin_tag(t)))


def note_frontmatter(content: VideoContent, *, created: str, assessment_link: str,
                     sr: SrSettings | None = None) -> dict[str, Any]:
    meta, usage = content.meta, content.usage
    data: dict[str, Any] = {
        "type": "study-note",
        "title": plain_text(meta.title),
        "source": _source(content),
        "video_id": meta.video_id,
        "channel": plain_text(meta.channel),
        "duration": int(round(meta.duration)) if meta.duration is not None else None,
        "published": meta.published,
        "created": created,
        "tags": topic_tags(content.tags, sr),
        "aliases": _plain_list(content.aliases),
        "assessment": assessment_link,
        "model": content.model,
        "tokens": {"in": usage.input_tokens, "out": usage.output_tokens,
                   "cached": usage.cache_read_tokens},
        "concepts": _plain_list(content.key_terms),
        "source_key": encode_key(meta.key),
    }
    if meta.kind == "podcast" and meta.chapters:  # Podcasting 2.0 chapters of the feed
        data["chapters"] = [f"{format_timestamp(c.start)} {plain_text(c.title)}"
                            for c in meta.chapters]
    return data


def assessment_frontmatter(content: VideoContent, *, created: str, notes_link: str
                           ) -> dict[str, Any]:
    meta = content.meta
    return {
        "type": "assessment",
        "title": f"{plain_text(meta.title)} — Assessment",
        "source": _source(content),
        "video_id": meta.video_id,
        "notes": notes_link,
        "created": created,
        "tags": ["assessment"],
        "source_key": encode_key(meta.key),
    }


def compose_note(fm: dict[str, Any], body: str, existing_text: str | None = None) -> str:
    """Whole file text; with ``existing_text`` the user's frontmatter keys are kept."""
    existing = frontmatter.split(existing_text)[0] if existing_text else None
    return frontmatter.compose(frontmatter.merge(existing, fm), body)


def encode_key(key: str) -> str:
    """A ledger key as written in frontmatter: a file name may hold ``<`` or ``>``,
    which must not reach a note as markup."""
    return key.replace("%", "%25").replace("<", "%3C").replace(">", "%3E")


def decode_key(value: str) -> str:
    return value.replace("%3C", "<").replace("%3E", ">").replace("%25", "%")


def owner_key(text: str) -> str | None:
    """The ledger key a note belongs to, from its frontmatter (None for user notes)."""
    data, _ = frontmatter.split(text)
    if not data:
        return None
    key = data.get("source_key")
    if isinstance(key, str) and key:
        return decode_key(key)
    vid = data.get("video_id")
    if isinstance(vid, str) and vid and data.get("type") in ("study-note", "assessment"):
        return f"youtube:{vid}"
    return None
