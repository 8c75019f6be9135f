"""The peer recognizer for side-by-side figures: pocketsphinx with the English model its wheel ships and a JSGF
grammar of exactly our words (one word per utterance for clips; any sequence for streams)."""

from __future__ import annotations

import time

import numpy as np


class Pocketsphinx:
    """pocketsphinx 5 decoder restricted to `words` by a grammar."""

    def __init__(self, words: list[str], sequence: bool = False) -> None:
        from pocketsphinx import Config, Decoder

        alt = " | ".join(words)
        body = f"( {alt} )*" if sequence else f"( {alt} )"
        jsgf = f"#JSGF V1.0;\ngrammar words;\npublic <w> = {body} ;\n"
        self.decoder = Decoder(Config(lm=None, samprate=16000, loglevel="FATAL"))
        self.decoder.add_jsgf_string("words", jsgf)
        self.decoder.activate_search("words")
        self.cpu_seconds = 0.0
        self.audio_seconds = 0.0

    def recognise(self, x: np.ndarray) -> list[str]:
        """16 kHz float audio -> the words pocketsphinx heard (possibly none)."""
        pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()
        t0 = time.process_time()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        self.cpu_seconds += time.process_time() - t0
        self.audio_seconds += x.size / 16000
        return hyp.hypstr.split() if hyp is not None and hyp.hypstr else []

    @property
    def cpu_per_audio_second(self) -> float:
        return self.cpu_seconds / max(self.audio_seconds, 1e-9)
