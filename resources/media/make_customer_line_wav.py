"""Generate the demo/notice WAVs in resources/media (no TTS engine needed).

customer_line.wav: the simulated customer's greeting.

A friendly three-note chime followed by a soft 440 Hz hum, repeated for 10 s, 8 kHz
16-bit mono (160 KB) — synthesized here so the build needs no TTS engine. Run:
`python resources/media/make_customer_line_wav.py`.

recording_notice.wav: the recording notice played to the customer when
`recording.consent_notice` is on — two 1400 Hz beeps, the customary "this call is
recorded" tone (8 kHz, 1 s).
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 8000
OUT = Path(__file__).with_name("customer_line.wav")
NOTICE = Path(__file__).with_name("recording_notice.wav")


def tone(freq: float, seconds: float, volume: float) -> list[float]:
    n = int(RATE * seconds)
    fade = int(RATE * 0.02)
    out = []
    for i in range(n):
        env = min(1.0, i / fade, (n - i) / fade)
        out.append(volume * env * math.sin(2 * math.pi * freq * i / RATE))
    return out


def pattern() -> list[float]:
    samples: list[float] = []
    for f in (523.25, 659.25, 783.99):  # C5 E5 G5
        samples += tone(f, 0.25, 0.35)
    samples += [0.0] * int(RATE * 0.25)
    samples += tone(440.0, 1.0, 0.2)
    samples += [0.0] * int(RATE * 0.25)
    return samples


def write(path: Path, samples: list[float]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", int(s * 32767)) for s in samples))


def main() -> None:
    samples: list[float] = []
    while len(samples) < RATE * 10:
        samples += pattern()
    write(OUT, samples[: RATE * 10])
    beep = tone(1400.0, 0.3, 0.4)
    gap = [0.0] * int(RATE * 0.2)
    write(NOTICE, beep + gap + beep + gap)


if __name__ == "__main__":
    main()
