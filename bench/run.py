"""`make bench` / `python -m bench.run [--quick]`: every performance figure -> bench/results.json, bench/RESULTS.md
and bench/README-section.md. Each section is a function below; a section that cannot run (no models, no data) is
recorded with its reason instead of stopping the others."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import accuracy as acc
from bench.heldout import ANIMALS, DIGITS, HeldOut, held_out, noise_test_audio, sc_clips
from bench.report import Figure, Results, format_value, write_results
from bench.stats import git_commit, machine, now_iso
from bench.streams import make_stream
from daemon.config import DaemonConfig

REPO = Path(__file__).resolve().parents[1]
MIC_BLOCK_MS = DaemonConfig.block_ms  # the audio block the daemon asks of a microphone


@dataclass(frozen=True)
class Plan:
    """How much of everything to measure: the full run (~15 min on 2 shared cores) or --quick (a few minutes)."""

    streams: int = 6
    words_per_stream: int = 25
    snrs: tuple = (None, 20.0, 10.0, 5.0)
    noise_hours: float = 1.0
    peer_noise_s: float = 300.0
    latency_words: int = 40
    memory_starts: int = 3
    throughput_repeats: int = 5
    seed_epochs: int = 12
    seed_folds: int = 6
    fsdd_peer_clips: int = 3000
    shots_repeats: int = 5


QUICK = Plan(streams=2, words_per_stream=20, noise_hours=1 / 6, peer_noise_s=120.0, latency_words=12,
             memory_starts=2, throughput_repeats=3, seed_epochs=6, seed_folds=2, fsdd_peer_clips=300,
             shots_repeats=2)


class Bench:
    """Shared state of one bench run: paths, held-out material, the results being filled in."""

    def __init__(self, models: Path, shared: Path, out: Path, plan: Plan, command: str) -> None:
        self.models, self.shared, self.out, self.plan = models, shared, out, plan
        self.work = Path(tempfile.mkdtemp(prefix="wordstamp-bench-"))
        self.res = Results()
        self.digits = models / "digits"
        self.animals = models / "animals" if (models / "animals" / "manifest.json").is_file() else None
        self.bundles = [self.digits] + ([self.animals] if self.animals else [])
        self.vocab = DIGITS + (ANIMALS if self.animals else [])
        self.h: HeldOut | None = None
        self.run_loso = False
        self.res.meta = {"command": command, "date": now_iso(), "commit": git_commit(str(REPO)), "machine": machine(),
                         "quick": plan == QUICK, "plan": {k: v for k, v in plan.__dict__.items()}}
        m = self.res.meta["machine"]
        self.res.meta["machine_short"] = f"{m['cores']}-core {m['cpu'].split('@')[0].strip()[:28]}, shared"

    def fig(self, section: str, key: str, name: str, value, unit: str = "", how: str = "", target: str = "",
            meets: bool | None = None) -> None:
        self.res.add(Figure(section, name, value, unit, how, target, meets, key))
        print(f"  {section:<10} {name}: {format_value(value, unit)}", flush=True)

    # -- sections ---------------------------------------------------------------------------------------------------

    def models_meta(self) -> None:
        from shared.bundle import load_bundle

        self.res.meta["models"] = [{"name": b.name, "hash": b.hash, "kind": b.manifest.kind, "path": str(b.path)}
                                   for b in (load_bundle(p) for p in self.bundles)]

    def heldout(self) -> None:
        self.h = held_out(self.models, self.shared, with_animals=self.animals is not None)
        self.animals_exclusions()
        h = self.h
        self.res.details["held_out"] = {"sc_speakers": h.sc_speakers, "source": h.source,
                                        "sc_digit_clips": len(h.sc_digits), "sc_animal_clips": len(h.sc_animals),
                                        "tts_clips": len(h.tts), "oov_clips": len(h.oov)}

    def animals_exclusions(self) -> None:
        """Drop SC animal clips whose speakers the animals head was enrolled on (its manifest names its folder)."""
        if not self.animals or not self.h:
            return
        m = json.loads((self.animals / "manifest.json").read_text())
        folder = Path((m.get("training") or {}).get("folder") or "")
        if folder.is_dir():
            seen = {f.name.split("_")[0] for f in folder.rglob("*.wav")}
            self.h.sc_animals = [c for c in self.h.sc_animals if c[1].name.split("_")[0] not in seen]

    def accuracy(self) -> None:
        h = self.h
        assert h is not None
        sc = acc.evaluate_clips(self.digits, h.sc_digits, self.work)
        tts = acc.evaluate_clips(self.digits, [c for c in h.tts if c[0] in DIGITS], self.work)
        both = acc.evaluate_clips(self.digits, h.digits(), self.work)
        self.res.details["accuracy"] = {"sc_digits": sc.to_dict(), "tts_digits": tts.to_dict(), "digits": both.to_dict()}
        self.fig("accuracy", "accuracy.sc_digits", "digits, Speech Commands held-out speakers (int8)", 100 * sc.accuracy,
                 "%", f"{sc.n} clips of the {len(h.sc_speakers)} SC speakers in the digits dataset's test split, "
                 f"trainer.evaluate through LiteRT; a rejection counts as wrong; {acc.interval(sc.accuracy_ci95)}")
        self.fig("accuracy", "accuracy.tts_digits", "digits, held-out TTS voices (int8)", 100 * tts.accuracy, "%",
                 f"{tts.n} clips: festival ked, flite rms, espeak-ng en-gb-scotland at 3 speeds (never trained on); "
                 f"{acc.interval(tts.accuracy_ci95)}")
        if h.accent:
            ac = acc.evaluate_clips(self.digits, h.accent, self.work)
            self.res.details["accuracy"]["accent_digits"] = ac.to_dict()
        voices = "festival's Czech ph, Finnish lj and Telugu NSK voices saying the digits respelt in their own letters"
        self.fig("accuracy", "accuracy.accent_digits", "digits, accented synthetic voices never trained on (int8)",
                 100 * ac.accuracy if h.accent else None, "%",
                 f"{ac.n} clips: {voices}, 3 speeds (trainer/accents.py ACCENT_HELD_OUT); "
                 f"{acc.interval(ac.accuracy_ci95)}" if h.accent else
                 f"not measured: festival lacks {', '.join(h.accent_missing)} (apt-get install them)")
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            noise = acc.noise_clips(self.shared, Path(tmp), 120)
            oov = acc.evaluate_clips(self.digits, h.oov + noise, self.work)
            oov_w = acc.evaluate_clips(self.digits, h.oov, self.work)
            self.res.details["oov"] = {"digits_words": oov_w.to_dict(), "digits_words_and_noise": oov.to_dict()}
            self.fig("accuracy", "oov.digits_words", "out-of-vocabulary words falsely accepted (digits)",
                     100 * oov_w.oov_false_accept_rate, "%",
                     f"{oov_w.oov_n} SC clips of tree/wow/sheila/marvin (no model trained on them, any speaker); "
                     f"{acc.interval(oov_w.oov_false_accept_ci95)}")
            self.fig("accuracy", "oov.digits_noise", "OOV words + 1-s noise chunks falsely accepted (digits)",
                     100 * oov.oov_false_accept_rate, "%",
                     f"{oov.oov_n} clips: the OOV words and 120 one-second chunks of the held-out noise tails; "
                     f"{acc.interval(oov.oov_false_accept_ci95)}")
            if self.animals:
                a = acc.evaluate_clips(self.animals, h.animals(), self.work)
                ao = acc.evaluate_clips(self.animals, h.oov + noise + [c for c in h.digits()], self.work)
                self.res.details["animals"] = {"held_out": a.to_dict(), "oov": ao.to_dict()}
                self.fig("accuracy", "accuracy.animals", "animals head (shipped), held-out speakers and voices",
                         100 * a.accuracy, "%", f"{a.n} clips: {len(h.sc_animals)} SC cat/dog/bird of held-out speakers "
                         f"the head was not enrolled on + held-out TTS voices; {acc.interval(a.accuracy_ci95)}")
                self.fig("accuracy", "oov.animals", "animals head: other words and noise falsely accepted",
                         100 * ao.oov_false_accept_rate, "%", f"{ao.oov_n} clips: OOV words, noise chunks, held-out digits; "
                         f"{acc.interval(ao.oov_false_accept_ci95)}")

    def fsdd_loso(self) -> None:
        """FSDD is all in training: quote the recipe's leave-one-speaker-out figure, else bench/loso.json."""
        from bench import loso

        q = acc.cross_speaker_quote(self.models)
        if q is not None:
            v = q["value"]
            val = v.get("mean_accuracy") if isinstance(v, dict) else v
            val = 100 * val if isinstance(val, float) and val <= 1 else val
            self.fig("accuracy", "accuracy.fsdd_loso", "digits, FSDD leave-one-speaker-out", val, "%",
                     f"quoted from the trainer's recipe ({q['key']} in {Path(q['source']).name}); every FSDD speaker "
                     "is in the shipped model's training data, so only retraining holds one out")
            self.res.details["fsdd_loso"] = q
            return
        m = json.loads((self.digits / "manifest.json").read_text())
        ds = Path(((m.get("training") or {}).get("datasets") or [""])[0])
        d = loso.load_current(ds) if ds.is_file() else None
        if d is None and self.run_loso and ds.is_file():
            d = loso.run(ds)
        if d is None:
            self.fig("accuracy", "accuracy.fsdd_loso", "digits, FSDD leave-one-speaker-out", None, "%",
                     "not recorded by the recipe and bench/loso.json is missing or for another dataset: run "
                     "`python -m bench.loso` (6 retrainings, ~15 min) or `python -m bench.run --loso`")
            return
        self.res.details["fsdd_loso"] = d
        folds = ", ".join(f"{k} {100 * v['accuracy']:.0f}%" for k, v in d["folds"].items())
        self.fig("accuracy", "accuracy.fsdd_loso", "digits, FSDD leave-one-speaker-out", 100 * d["mean_accuracy"], "%",
                 f"mean of {len(d['folds'])} folds ({folds}); trainer.evaluate.cross_speaker (the machinery of "
                 f"`wordstamp evaluate --cross-speaker`): retrain on all other clips, {d['epochs']} epochs, "
                 f"{d['copies']} augmented copy, {d['model']}; quoted from bench/loso.json, measured "
                 f"{d['measured'][:10]} by `{d['command']}` on this dataset in {d['seconds'] / 60:.0f} min")

    def shots(self) -> None:
        if not self.animals or not self.h:
            return
        from bench.heldout import tts_clips_voices

        pool = tts_clips_voices(ANIMALS) + [c for c in sc_clips(self.shared, ["cat", "dog", "bird"], None)
                                            if c[1].name.split("_")[0] not in set(self.h.sc_speakers)]
        held = self.h.animals()
        r = acc.animals_shots(self.digits, pool, held, self.work, repeats=self.plan.shots_repeats)
        self.res.details["shots"] = r
        copies = f", each with {r['copies']} perturbed copies" if r["copies"] else ""
        for k, v in r["accuracy_by_shots"].items():
            self.fig("accuracy", f"shots.{k}", f"animals head enrolled from {k} shot{'s' if k != '1' else ''} a word",
                     100 * v, "%", f"fresh linear SVM on the int8 digits CNN's embedding, {k} random clip(s) a word from "
                     f"training-voice TTS and other SC speakers{copies}; tested on {r['test_n']} held-out clips; mean of "
                     f"{r['repeats']} draws")

    def streaming(self) -> None:
        from bench import streaming as st

        h, p = self.h, self.plan
        assert h is not None
        clips = h.digits() + (h.animals() if self.animals else [])
        noises = noise_test_audio(self.shared)
        streams = st.build_streams(clips, p.streams, p.words_per_stream, seed=1)
        res = st.wer_at_snrs(streams, noises, list(p.snrs), self.bundles, self.work, self.vocab, seed=2)
        self.res.details["streaming"] = {str(r.snr_db if r.snr_db is not None else "clean"):
                                         {"ours": r.ours.to_dict(), "peer": r.peer.to_dict() if r.peer else None}
                                         for r in res}
        n_words, secs = sum(len(s.words) for s in streams), sum(s.seconds for s in streams)
        for r in res:
            label = "clean" if r.snr_db is None else f"{r.snr_db:g} dB SNR"
            o = r.ours
            self.fig("streaming", f"wer.{label.split()[0]}", f"word error rate, {label}", 100 * o.wer, "%",
                     f"S {o.substitutions} D {o.deletions} I {o.insertions} of {o.n_ref} words; {p.streams} streams "
                     f"({secs:.0f} s) of held-out clips with 0.3-1.5 s pauses, held-out noise tails mixed in; "
                     "daemon.replay.replay_events")
            if r.peer:
                self.fig("peer", f"peer.wer.{label.split()[0]}", f"pocketsphinx word error rate, {label}",
                         100 * r.peer.wer, "%", f"S {r.peer.substitutions} D {r.peer.deletions} I {r.peer.insertions}"
                         f" on the same audio; JSGF grammar of our {len(self.vocab)} words, any sequence")
        self.res.details["streaming_words"] = n_words
        # The issue's own definition: long recordings of digits only, heard by the digits model alone.
        d_streams = st.build_streams(h.digits(), p.streams, p.words_per_stream, seed=4)
        d_res = st.wer_at_snrs(d_streams, noises, list(p.snrs), [self.digits], self.work, self.vocab, seed=5,
                               peer=False)
        self.res.details["streaming_digits"] = {str(r.snr_db if r.snr_db is not None else "clean"): r.ours.to_dict()
                                                for r in d_res}
        d_secs = sum(s.seconds for s in d_streams)
        for r in d_res:
            label = "clean" if r.snr_db is None else f"{r.snr_db:g} dB SNR"
            o = r.ours
            self.fig("streaming", f"wer_digits.{label.split()[0]}", f"word error rate, digits only, {label}",
                     100 * o.wer, "%", f"S {o.substitutions} D {o.deletions} I {o.insertions} of {o.n_ref} words; "
                     f"{p.streams} streams ({d_secs:.0f} s) of held-out digit clips only, models/digits alone")
        peer_cpu = [r.peer.cpu_s / max(r.peer.audio_s, 1e-9) for r in res if r.peer]
        if peer_cpu:
            self.fig("peer", "peer.cpu_streams", "pocketsphinx CPU per audio second, streams", float(np.median(peer_cpu)),
                     "s/s", "median over the SNRs of its CPU time on the streams above (one utterance a stream); "
                     f"per SNR: {', '.join(f'{x:.3f}' for x in peer_cpu)}")
        audio = st.noise_only(noises, p.noise_hours * 3600, seed=3)
        fe = st.false_events_per_hour(audio, self.bundles, self.work, p.peer_noise_s, self.vocab)
        self.res.details["noise_only"] = fe
        self.fig("streaming", "false_events_per_hour", "false word events per hour of noise only", fe["per_hour"],
                 "/h", f"{fe['word_events']} word events in {fe['audio_h'] * 60:.0f} min of held-out noise tails (one "
                 "or two mixed, -55..-15 dBFS, 5-20 s stretches) through replay")
        if "peer" in fe:
            self.fig("peer", "peer.false_events_per_hour", "pocketsphinx false words per hour of noise only",
                     fe["peer"]["per_hour"], "/h", f"{fe['peer']['word_events']} words in the first "
                     f"{fe['peer']['audio_h'] * 60:.0f} min of the same noise (30 s utterances)")
        self._stream_for_speed = streams[0]
        self._noises = noises

    def latency(self) -> None:
        """Two paced runs: steady pink noise (a microphone's hiss) and kitchen noise (dishes), both at 20 dB SNR."""
        from bench import latency as lat
        from shared.audio import write_wav_atomic

        h = self.h
        assert h is not None
        names = [f.name for f in sorted((self.shared / "noise").glob("*.wav"))]
        noises = noise_test_audio(self.shared)
        clips = h.digits() + (h.animals() if self.animals else [])
        self.res.details["latency"] = {}
        for tag, noise_name, label in lat.LATENCY_NOISES:
            s, audio = lat.latency_stream(clips, noises, names, noise_name, self.plan.latency_words)
            wav = self.work / "latency.wav"
            write_wav_atomic(wav, audio, 16000, overwrite=True)
            run = lat.measure(self.bundles, s, wav, self.work)
            d = run.to_dict()
            self.res.details["latency"][label] = d
            sp = d["latency_ms"]
            how = (f"{run.words_matched}/{run.words_true} words (those published as word events; rejected words "
                   f"publish nothing) of a {s.seconds:.0f}-s held-out stream ({label} "
                   "at 20 dB SNR) played in real time into `wordstamp daemon --input --paced`, subscriber in another "
                   "process; from the true word end (ground truth + stream start = min of heartbeat time - "
                   "audio_seconds) to arrival")
            where = "" if not tag else f", {label}"
            self.fig("latency", f"latency.{tag}p50_ms", f"latency p50, true word end -> event received{where}",
                     sp["p50"], "ms", how, "<= 150 ms", sp["p50"] <= 150)
            self.fig("latency", f"latency.{tag}p95_ms", f"latency p95{where}", sp["p95"], "ms", "same run",
                     "<= 250 ms", sp["p95"] <= 250)
            self.fig("latency", f"latency.{tag}max_ms", f"latency max{where}", sp["max"], "ms", "same run")
            self.fig("latency", f"latency.{tag}end_lag_p50_ms", f"segmenter's word end after the true end, p50{where}",
                     d["end_lag_ms"]["p50"], "ms", f"p95 {d['end_lag_ms']['p95']} ms; event `end` (audio clock) minus "
                     "the true end (-30 dB of the clip's peak): time spent waiting for the segmenter to close the word")
            if not tag:
                self.fig("latency", "latency.daemon_p50_ms", "the daemon's own latency_ms p50 (from its segment end)",
                         d["daemon_latency_ms"]["p50"], "ms", "same events; includes the segmenter's hang-over")

    def throughput(self) -> None:
        from bench import throughput as tp
        from bench.streams import mix_noise
        from shared.audio import write_wav_atomic

        s = self._stream_for_speed
        rng = np.random.default_rng(5)
        wav = self.work / "throughput.wav"
        write_wav_atomic(wav, mix_noise(s.audio, self._noises[1], 20.0, rng), 16000, overwrite=True)
        r = tp.measure(wav, self.bundles, self.plan.throughput_repeats)
        self.res.details["throughput"] = r
        self.fig("throughput", "throughput.x_real_time", "replay speed on one core (audio s per CPU s)",
                 r["x_real_time"], "x", f"median of {r['repeats']} replays of a {r['audio_s']:.0f}-s stream, "
                 f"{'taskset -c 0' if r['pinned_one_core'] else 'unpinned'}, 1 thread per library, thread CPU time; "
                 f"whole process incl. ZeroMQ I/O thread {r['process_x_real_time']:g}x", ">= 500x",
                 r["x_real_time"] >= 500)
        for stage, v in r["stages"].items():
            self.fig("throughput", f"throughput.{stage}", f"stage: {stage}", v["x_real_time"], "x",
                     f"{100 * v['share']:.1f}% of CPU; {v['cpu_s'] * 1000:.1f} ms CPU for {r['audio_s']:.0f} s "
                     "(bench/stages.py proxies)")
        # The same replay in the microphone's 20 ms blocks: what the per-call overhead costs (events are identical).
        m = tp.measure(wav, self.bundles, self.plan.throughput_repeats, block_ms=MIC_BLOCK_MS)
        self.res.details["throughput_mic_blocks"] = m
        self.fig("throughput", "throughput.mic_blocks_x_real_time",
                 f"replay speed in {MIC_BLOCK_MS} ms blocks, as the microphone delivers them", m["x_real_time"], "x",
                 f"same stream, run and pinning; replay reads {r['block_ms']} ms a call (the row above): "
                 f"{r['x_real_time'] / m['x_real_time']:.2f}x faster; features {m['stages']['features']['x_real_time']:,.0f}x, "
                 f"segmentation {m['stages']['segmentation']['x_real_time']:,.0f}x here")

    def memory(self) -> None:
        from bench import memory as mem
        from shared.audio import write_wav_atomic

        s = make_stream(self._stream_clips(8), np.random.default_rng(6))
        wav = self.work / "memory.wav"
        write_wav_atomic(wav, s.audio, 16000, overwrite=True)
        runs = [mem.measure([self.digits], wav, self.work, self.plan.memory_starts)]
        if self.animals:
            runs.append(mem.measure(self.bundles, wav, self.work, self.plan.memory_starts))
        self.res.details["memory"] = [r.to_dict() for r in runs]
        for r in runs:
            d = r.to_dict()
            n = len(r.models)
            self.fig("memory", f"memory.rss_{n}", f"daemon RSS with {n} bundle{'s' if n > 1 else ''} "
                     f"({' + '.join(r.models)})", d["rss_mb_median"], "MB",
                     f"VmRSS 3 s into a paced file with words; peak VmHWM {d['hwm_mb_median']} MB; median of "
                     f"{r.starts} starts", "<= 80 MB" if n == 2 else "", (d["rss_mb_median"] <= 80) if n == 2 else None)
            self.fig("memory", f"startup.ready_{n}", f"start-up to ready, {n} bundle{'s' if n > 1 else ''}",
                     1000 * d["ready_s_median"], "ms", f"spawn of `wordstamp daemon` to its first control-socket "
                     f"answer; median of {r.starts} starts")

    def _stream_clips(self, n: int):
        h = self.h
        assert h is not None
        clips = h.digits()
        rng = np.random.default_rng(7)
        return [clips[int(i)] for i in rng.choice(len(clips), size=min(n, len(clips)), replace=False)]

    def peer_clips(self) -> None:
        h = self.h
        assert h is not None
        tts = [c for c in h.tts if c[0] in DIGITS]
        r_sc, r_tts = acc.peer_clips(h.sc_digits, DIGITS), acc.peer_clips(tts, DIGITS)
        self.res.details["peer_clips"] = {"sc_digits": r_sc, "tts_digits": r_tts}
        rows = [("sc", r_sc, "SC held-out speakers"), ("tts", r_tts, "held-out TTS voices")]
        if h.accent:
            self.res.details["peer_clips"]["accent_digits"] = r_ac = acc.peer_clips(h.accent, DIGITS)
            rows.append(("accent", r_ac, "held-out accented voices"))
        for key, r, what in rows:
            self.fig("peer", f"peer.accuracy.{key}", f"pocketsphinx accuracy, digits, {what}", 100 * r["accuracy"], "%",
                     f"the same {r['n']} clips as ours; JSGF grammar of the 10 digits, one word an utterance; "
                     f"{acc.interval(r['accuracy_ci95'])}")
        fsdd = sorted((self.shared / "fsdd").glob("*.wav"))
        rng = np.random.default_rng(8)
        if len(fsdd) > self.plan.fsdd_peer_clips:
            fsdd = [fsdd[int(i)] for i in sorted(rng.choice(len(fsdd), self.plan.fsdd_peer_clips, replace=False))]
        f = acc.peer_clips([(DIGITS[int(p.name.split("_")[0])], p) for p in fsdd], DIGITS)
        self.res.details["peer_clips"]["fsdd"] = f
        self.fig("peer", "peer.accuracy.fsdd", "pocketsphinx accuracy, FSDD (all 6 speakers)", 100 * f["accuracy"],
                 "%", f"{f['n']} FSDD clips (pocketsphinx never saw them); compare with leave-one-speaker-out")
        self.fig("peer", "peer.cpu", "pocketsphinx CPU per audio second", f["cpu_per_audio_s"], "s/s",
                 f"process CPU on the FSDD clips; ours: {self._ours_cpu()} s/s (1 / replay speed)")

    def _ours_cpu(self) -> str:
        r = self.res.details.get("throughput")
        return f"{1 / r['x_real_time']:.4f}" if r else "see throughput"

    def seed(self) -> None:
        from bench import seed_baseline as sb

        h = self.h
        assert h is not None
        m = json.loads((self.digits / "manifest.json").read_text())
        ds = [Path(p) for p in (m.get("training") or {}).get("datasets") or []]
        ds = [p if p.is_absolute() else REPO / p for p in ds]
        if not ds or not all(p.is_file() for p in ds):
            raise FileNotFoundError(f"the digits model's datasets {ds} are not on this machine")
        from trainer.dataset import load_dataset
        from shared.audio import read_audio

        t0 = time.time()
        x, y, spk, split = [], [], [], []
        for p in ds:
            d = load_dataset(p)
            for i in range(len(d)):
                x.append(sb.seed_stamp(d.clip_audio(i)))
                y.append(d.word_of(i))
            spk += d.speakers.astype(str).tolist()
            split += d.split.astype(str).tolist()
        x, spk, split = np.stack(x), np.array(spk), np.array(split)
        yv = np.array(y)
        tr = split == "train"
        model = sb.train_seed(x[tr], yv[tr].tolist(), epochs=self.plan.seed_epochs)
        test = h.digits()
        xt = np.stack([sb.seed_stamp(read_audio(p)) for _, p in test])
        a = sb.accuracy(model, xt, [w for w, _ in test])
        n_sc = len(h.sc_digits)
        a_sc = sb.accuracy(model, xt[:n_sc], [w for w, _ in test[:n_sc]])
        a_tts = sb.accuracy(model, xt[n_sc:], [w for w, _ in test[n_sc:]])
        self.fig("baseline", "seed.accuracy.sc", "seed pipeline accuracy, digits, SC held-out speakers", 100 * a_sc, "%",
                 f"the same {n_sc} clips as ours; 64x32 time-warped 32-band fbank stamps, MNIST-style CNN "
                 f"(trainer.nets baseline), trained on the {model.n_train} clips of the digits dataset's train split "
                 f"(the shipped model's data, no augmentation), {self.plan.seed_epochs} epochs, float")
        self.fig("baseline", "seed.accuracy.tts", "seed pipeline accuracy, digits, held-out TTS voices", 100 * a_tts,
                 "%", f"the same {len(test) - n_sc} clips as ours; same model")
        folds = {}
        fsdd_spk = sorted({s for s in spk if s in {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}})
        for s in fsdd_spk[:self.plan.seed_folds]:
            fm = sb.train_seed(x[spk != s], yv[spk != s].tolist(), epochs=self.plan.seed_epochs)
            folds[s] = round(sb.accuracy(fm, x[spk == s], yv[spk == s].tolist()), 4)
            print(f"    seed fold {s}: {folds[s]:.3f}", flush=True)
        self.res.details["seed_baseline"] = {"heldout_digits": a, "sc": a_sc, "tts": a_tts, "fsdd_folds": folds,
                                             "train_seconds": round(model.train_seconds, 1), "n_train": model.n_train,
                                             "wall_s": round(time.time() - t0, 1)}
        if folds:
            self.fig("baseline", "seed.fsdd_loso", "seed pipeline, FSDD leave-one-speaker-out",
                     100 * float(np.mean(list(folds.values()))), "%",
                     f"mean of {len(folds)} folds ({', '.join(folds)}): trained on every other clip of the dataset, "
                     f"tested on that FSDD speaker's clips")

    def training_time(self) -> None:
        from shared.bundle import load_bundle

        total = 0.0
        parts = []
        for p in self.bundles:
            b = load_bundle(p)
            sec = (b.manifest.training or {}).get("seconds")
            if sec:
                total += float(sec)
                parts.append(f"{b.name} {float(sec) / 60:.1f} min")
        log = self._make_models_log()
        if log is not None:
            self.fig("training", "training.make_models_s", "full recipe (scripts/make-models.sh)", log[0] / 60, "min",
                     f"quoted from {log[1]}")
        self.fig("training", "training.train_s", "training time of the shipped models", total / 60 if total else None,
                 "min", "quoted from the bundles' manifests (training.seconds: augmentation + fit): "
                 + (", ".join(parts) if parts else "not recorded"))

    def _make_models_log(self) -> tuple[float, str] | None:
        """A total time the recipe logged, if models/ holds one (e.g. make-models.json with `seconds`)."""
        p = self.models / "RESULTS.json"  # written by scripts/make-models.sh (trainer/make_models.py)
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        sec = d.get("seconds")
        if isinstance(sec, dict) and "total" in sec:
            parts = ", ".join(f"{k} {v:.0f} s" for k, v in sec.items() if k != "total")
            return float(sec["total"]), f"models/RESULTS.json seconds.total ({parts})"
        return None


SECTIONS = ("models_meta", "heldout", "accuracy", "shots", "streaming", "throughput", "latency", "memory", "peer_clips",
            "seed", "training_time", "fsdd_loso")  # fsdd_loso last: it may wait on a bench.loso run finishing
SECTION_ORDER = ("accuracy", "streaming", "latency", "throughput", "memory", "peer", "baseline", "training")


def readme_section(res: Results) -> str:
    """The README paragraph the lead merges: headline figures, each with a pointer to the full table."""
    f = {x.key: x for x in res.figures}

    def v(key: str) -> str:
        return f[key].shown() if key in f else "—"

    q = " (quick run)" if res.meta.get("quick") else ""
    return "\n".join([
        "## Performance", "",
        f"Measured by `make bench`{q} on {res.meta.get('machine_short', '')} ({res.meta.get('date', '')[:10]}); every "
        "figure, how it was measured and the peer's figures are in [bench/RESULTS.md](bench/RESULTS.md).", "",
        "| | wordstamp | pocketsphinx (grammar of our words) | seed pipeline |", "|---|---|---|---|",
        f"| digits, Speech Commands speakers never trained on | {v('accuracy.sc_digits')} | {v('peer.accuracy.sc')} | "
        f"{v('seed.accuracy.sc')} |",
        f"| digits, TTS voices never trained on | {v('accuracy.tts_digits')} | {v('peer.accuracy.tts')} | "
        f"{v('seed.accuracy.tts')} |",
        f"| digits, accented synthetic voices never trained on | {v('accuracy.accent_digits')} | "
        f"{v('peer.accuracy.accent')} | |",
        f"| FSDD leave-one-speaker-out | {v('accuracy.fsdd_loso')} | {v('peer.accuracy.fsdd')} (all speakers) | "
        f"{v('seed.fsdd_loso')} |",
        "| stream word error rate, digits and animals, clean / 20 / 10 / 5 dB SNR | "
        f"{v('wer.clean')} / {v('wer.20')} / {v('wer.10')} / "
        f"{v('wer.5')} | {v('peer.wer.clean')} / {v('peer.wer.20')} / {v('peer.wer.10')} / {v('peer.wer.5')} | |",
        f"| stream word error rate, digits only (digits model alone), clean / 20 / 10 / 5 dB SNR | "
        f"{v('wer_digits.clean')} / {v('wer_digits.20')} / {v('wer_digits.10')} / {v('wer_digits.5')} | | |",
        f"| false words per hour of noise | {v('false_events_per_hour')} | {v('peer.false_events_per_hour')} | |",
        f"| speed, one core | {v('throughput.x_real_time')} real time | {v('peer.cpu')} CPU per audio s | |", "",
        f"Latency from the true end of a word to the event at a subscriber: p50 {v('latency.p50_ms')}, p95 "
        f"{v('latency.p95_ms')} (targets 150 / 250 ms). Daemon memory with digits + animals: {v('memory.rss_2')}; "
        f"ready {v('startup.ready_2')} after start. Out-of-vocabulary words falsely accepted: {v('oov.digits_words')}. "
        f"Animals head from 1 / 3 / 5 / 10 shots a word: {v('shots.1')} / {v('shots.3')} / {v('shots.5')} / "
        f"{v('shots.10')}.", ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few-minute run with fewer streams, folds and repeats")
    ap.add_argument("--models", type=Path, default=REPO / "models", help="folder holding digits/ (and animals/)")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="the developers' data folder")
    ap.add_argument("--out", type=Path, default=REPO / "bench", help="where results.json and RESULTS.md go")
    ap.add_argument("--loso", action="store_true", help="run FSDD leave-one-speaker-out if bench/loso.json is stale")
    ap.add_argument("--only", default="", help="comma-separated sections to run (default all): " + ",".join(SECTIONS))
    a = ap.parse_args(argv)
    plan = QUICK if a.quick else Plan()
    command = "python -m bench.run" + (" --quick" if a.quick else "") if argv is not None or a.quick else "make bench"
    if not (a.models / "digits" / "manifest.json").is_file():
        print(f"bench: no digits bundle in {a.models} (run `make models` first)", file=sys.stderr)
        return 2
    t0 = time.time()
    b = Bench(a.models, a.shared, a.out, plan, command)
    b.run_loso = a.loso
    only = [s for s in a.only.split(",") if s]
    for name in SECTIONS:
        if only and name not in only and name not in ("models_meta", "heldout"):
            continue
        print(f"bench: {name}", flush=True)
        t = time.time()
        try:
            getattr(b, name)()
        except Exception as exc:  # one section's failure is recorded, the others still run
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            b.res.notes.append(f"section `{name}` failed: {type(exc).__name__}: {msg}")
            traceback.print_exc()
        b.res.meta.setdefault("section_seconds", {})[name] = round(time.time() - t, 1)
    b.res.meta["runtime_s"] = round(time.time() - t0, 1)
    b.res.notes += NOTES
    rank = {name: i for i, name in enumerate(SECTION_ORDER)}
    b.res.figures.sort(key=lambda f: rank.get(f.section, len(rank)))  # stable: keeps each section's own order
    j, md = write_results(b.res, a.out)
    from shared.audio import atomic_write_bytes

    atomic_write_bytes(a.out / "README-section.md", readme_section(b.res).encode())
    import shutil

    shutil.rmtree(b.work, ignore_errors=True)  # streams and links only; the TTS cache stays in ~/.cache
    print(f"bench: wrote {j}, {md} and {a.out / 'README-section.md'} in {b.res.meta['runtime_s']:.0f} s")
    return 0


NOTES = [
    "Held out means never in training: SC speakers of the digits dataset's test split (named in the digits "
    "manifest), TTS voices the recipe excludes, SC words nobody trained on, and the tails (last 30 %) of the noise "
    "files whose first 70 % made the `_silence_` class. FSDD speakers are all in training: only leave-one-speaker-out "
    "retraining holds them out.",
    "pocketsphinx has no reject option with a closed grammar, so it always answers one of our words; its false "
    "accepts on out-of-vocabulary clips are near 100 % by construction and are not listed.",
    "Speeds are CPU-time ratios (audio seconds per CPU second) measured within one run, so other load on the shared "
    "machine slows wall time but barely moves them; latency and start-up are wall-clock and do move with load.",
]


if __name__ == "__main__":
    raise SystemExit(main())
