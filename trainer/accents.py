"""Accented synthetic speakers: festival's Italian, Czech, Catalan, Finnish, Russian and Indian voices saying the
English digits, each from a respelling in its own language's letters (as its speakers would write what they say).

The English training voices are a few recorded people (kal, slt, awb…) and espeak's one synthesiser; these voices add
other people's vocal tracts (women, a boy) and other vowels and consonants for the same digits. Debian packages them
as festvox-* (main). A voice that is not installed is skipped. The Latin-script voices also read some `_unknown_`
words as written, with their own letter-to-sound rules, so that an accent alone does not mean "a digit".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.recipe import DIGITS, TtsJob
from trainer.synth import FESTIVAL_VOICES

# respellings of zero … nine, one table a language
_IT = "ziro uan tu tri for faiv sics seven eit nain"  # Italian and Catalan letters read alike for these
_CS = "zirou uan tu tri for fajv siks sevn ejt najn"
_FI = "siirou uan tuu trii foor faiv siks seven eit nain"
_RU = "зироу уан ту сри фор файв сикс севн эйт найн"
_MR = "झीरो वन टू थ्री फोर फाइव्ह सिक्स सेव्हन एट नाइन"
_TE = "జీరో వన్ టూ త్రీ ఫోర్ ఫైవ్ సిక్స్ సెవెన్ ఎయిట్ నైన్"

# festival voice -> (package, respelt digits, reads Latin-script `_unknown_` words)
ACCENT_VOICES: dict[str, tuple[str, str, bool]] = {
    "lp_diphone": ("festvox-italp16k", _IT, True),
    "pc_diphone": ("festvox-itapc16k", _IT, True),
    "czech_dita": ("festvox-czech-dita", _CS, True),
    "czech_krb": ("festvox-czech-krb", _CS, True),
    "czech_machac": ("festvox-czech-machac", _CS, True),
    "czech_ph": ("festvox-czech-ph", _CS, True),
    "upc_ca_ona_hts": ("festvox-ca-ona-hts", _IT, True),
    "suo_fi_lj_diphone": ("festvox-suopuhe-lj", _FI, True),
    "hy_fi_mv_diphone": ("festvox-suopuhe-mv", _FI, True),
    "msu_ru_nsh_clunits": ("festvox-ru", _RU, False),
    "marathi_NSK_diphone": ("festvox-mr-nsk", _MR, False),
    "telugu_NSK_diphone": ("festvox-te-nsk", _TE, False),
}
# kept out of training: voices the network never heard (a man, a woman, an Indian voice), each with a training
# sibling of its language
ACCENT_HELD_OUT = ("czech_ph", "suo_fi_lj_diphone", "telugu_NSK_diphone")


def installed(voice: str, root: Path = FESTIVAL_VOICES) -> bool:
    """Whether festival has `voice` (its folder sits under voices/<language>/)."""
    return any(root.glob(f"*/{voice}"))


def missing_packages(root: Path = FESTIVAL_VOICES, voices: tuple[str, ...] = tuple(ACCENT_VOICES)) -> list[str]:
    """The Debian packages of those of `voices` (default: every accent voice) festival does not have."""
    return [ACCENT_VOICES[v][0] for v in voices if not installed(v, root)]


def respelt(voice: str) -> dict[str, str]:
    """digit word -> the text `voice` is given for it."""
    return dict(zip(DIGITS, ACCENT_VOICES[voice][1].split(), strict=True))


def accent_jobs(root: Path, unknown_words: list[str], *, held_out: bool = False, n_unknown: int = 40,
                speeds: tuple[float, ...] = (0.85, 1.0, 1.2), seed: int = 0,
                voices_root: Path = FESTIVAL_VOICES) -> list[TtsJob]:
    """Jobs for the installed training accent voices (`held_out`: the held-out ones, digits only): every digit at
    each speed into root/<digit>/, and `n_unknown` of `unknown_words` (a seeded draw a voice, normal speed) into
    root/_unknown_/ for the voices that read Latin letters."""
    rng = np.random.default_rng(seed)
    jobs = []
    for voice, (_, _, latin) in ACCENT_VOICES.items():
        if (voice in ACCENT_HELD_OUT) != held_out or not installed(voice, voices_root):
            continue
        spk = "tts-festival-" + voice.replace("_", "-").lower()
        for word, text in respelt(voice).items():
            jobs += [TtsJob("festival", voice, s, 0, text, root / word / f"{spk}_{word}_{i}.wav")
                     for i, s in enumerate(speeds)]
        if latin and not held_out and unknown_words:
            pick = rng.choice(len(unknown_words), size=min(n_unknown, len(unknown_words)), replace=False)
            jobs += [TtsJob("festival", voice, 1.0, 0, unknown_words[int(k)],
                            root / "_unknown_" / f"{spk}_{unknown_words[int(k)]}_0.wav") for k in sorted(pick)]
    return jobs
