"""Write a folder of WAV files to try ``wav:`` data and ``wavenet`` on: 12 sine tones
(220-1047 Hz) and 12 linear chirps (up and down), 2 s each at 8 kHz, 16-bit mono, made with the
tests' generators (:mod:`tests.data.wavs`)::

    .venv/bin/python scripts/make_tones.py data/tones
    dgm train wavenet --data wav:data/tones --minutes 10 --out runs/wavenet-tones
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.data.wavs

from tests.data.wavs import chirp, tone, write_wav_file  # noqa: E402

RATE = 8000
TONES = (220, 277, 330, 392, 440, 523, 587, 659, 784, 880, 988, 1047)
CHIRPS = ((100, 1000), (200, 1600), (300, 600), (150, 2000), (400, 1200), (250, 900))


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "data/tones")
    for f in TONES:
        write_wav_file(root / f"tone_{f}.wav", tone(2.0, RATE, f, 0.5), RATE)
    for f0, f1 in CHIRPS:
        write_wav_file(root / f"chirp_{f0}_{f1}.wav", chirp(2.0, RATE, f0, f1, 0.6), RATE)
        write_wav_file(root / f"chirp_{f1}_{f0}.wav", chirp(2.0, RATE, f1, f0, 0.6), RATE)
    print(f"{len(TONES) + 2 * len(CHIRPS)} WAV files written to {root}")


if __name__ == "__main__":
    main()
