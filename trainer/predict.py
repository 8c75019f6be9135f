"""Recognise every word in recordings: the shared segmenter cuts them, the bundle names each segment.

Mirrors the daemon's path offline (segment -> stamp -> LiteRT -> decision), so it shows what the daemon would say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.audio import AUDIO_SUFFIXES, read_audio
from shared.features import Frontend, make_stamp
from shared.segment import segment_frames, segment_mel


@dataclass
class SegmentResult:
    """One segment of one file: where, the decision, and the full probability row (for the heat map)."""

    file: str
    start_s: float
    end_s: float
    word: str | None
    label: str
    confidence: float
    alternatives: list[tuple[str, float]]
    probs: np.ndarray


def audio_files(paths: list[Path]) -> list[Path]:
    """Files as given, folders searched recursively for audio, sorted."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
        else:
            out.append(p)
    return out


def predict_files(bundle: str | Path, paths: list[Path], top_k: int = 3) -> tuple[list[SegmentResult], list[str]]:
    """Every segment of every file -> SegmentResult; returns (results, vocabulary of the probability rows)."""
    from shared.bundle import load_bundle
    from shared.runtime import Recognizer, _softmax

    b = load_bundle(bundle)
    rec = Recognizer([b.path])
    fe = Frontend(b.frontend_config)
    seg_cfg = b.segmenter_config
    labels = b.manifest.vocabulary
    results = []
    for f in audio_files(paths):
        x = read_audio(f)
        mel, energy = fe.compute(x)
        for s in segment_frames(energy, seg_cfg, fe.cfg, x):
            stamp = make_stamp(segment_mel(mel, s.start, s.end, fe.cfg), fe.cfg)
            d = rec.classify(stamp, top_k=top_k)[0]
            emb, probs = rec.cnns[rec.base_of[b.name]].infer(stamp)
            if b.manifest.kind == "head":
                head = rec.heads[b.name]
                probs = _softmax(head.temperature * head.scores(emb[0] if head.input == "embedding" else probs[0]))[None]
            a, e = s.seconds(fe.cfg)
            results.append(SegmentResult(str(f), round(a, 2), round(e, 2), d.word, d.label, d.confidence,
                                         d.alternatives, probs[0]))
    return results, labels


def heatmap_png(results: list[SegmentResult], labels: list[str], path: Path) -> None:
    """Segments across, vocabulary down, probability as colour."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shared.audio import atomic_write_bytes

    m = np.stack([r.probs for r in results]).T if results else np.zeros((len(labels), 1))
    fig, ax = plt.subplots(figsize=(min(24, 2 + 0.45 * m.shape[1]), 1 + 0.3 * len(labels)))
    ax.imshow(m, aspect="auto", cmap="magma", vmin=0, vmax=1)
    ax.set_yticks(range(len(labels)), labels)
    ticks = [f"{Path(r.file).stem[:12]}@{r.start_s:.1f}s" for r in results]
    ax.set_xticks(range(len(ticks)), ticks, rotation=70, ha="right", fontsize=7)
    ax.set_title("word probability per segment")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
