"""Import ready-cut word clips from public datasets into `DATA/PREFIX/<word>/<speaker>_<rest>.wav` (16 kHz, 16-bit).

Two layouts: FSDD (`{digit}_{speaker}_{i}.wav`, from a folder, a zip, or a URL of its GitHub archive) and word
folders (`<word>/*.wav`, as Speech Commands ships). The speaker is kept as the first `_`-field of every name, so a
later split by speaker keeps train and test voices apart.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from shared.audio import AUDIO_SUFFIXES, AudioError, read_audio, write_wav_atomic
from trainer.words import DIGIT_WORDS, check_word

FSDD_NAME = re.compile(r"^([0-9])_([A-Za-z0-9\-]+)_([0-9]+)\.wav$", re.IGNORECASE)
MAX_MEMBER_BYTES = 50 * 1024 * 1024  # a single clip bigger than this is not a word: refuse (zip bombs)
MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024
URL_SCHEMES = ("http", "https", "file", "ftp")


class SourceError(ValueError):
    """A source that cannot be imported at all; str() is one line."""


@dataclass
class ImportResult:
    """One source clip: status ok, exists or error (message says why)."""

    src: str
    status: str
    dest: Path | None = None
    message: str = ""


@dataclass
class ImportPlan:
    """(word, destination stem, source file) for every clip found."""

    items: list[tuple[str, str, Path]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def is_url(src: str) -> bool:
    return urllib.parse.urlparse(src).scheme in URL_SCHEMES


def download(url: str, dest: Path, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Fetch `url` into `dest` in chunks (urllib), refusing absurd sizes; a failed download leaves no file."""
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as fh:
            total = r.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            got = 0
            while chunk := r.read(1 << 16):
                got += len(chunk)
                if got > MAX_DOWNLOAD_BYTES:
                    raise SourceError(f"{url}: larger than {MAX_DOWNLOAD_BYTES >> 20} MB, refused")
                fh.write(chunk)
                if progress:
                    progress(got, total)
        tmp.replace(dest)
    except SourceError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise SourceError(f"{url}: download failed ({str(reason).splitlines()[0]})") from None
    return dest


def extract_wavs(archive: Path, dest: Path, keep: Callable[[str], bool]) -> list[Path]:
    """Extract the wav members whose base name `keep` accepts, flat into `dest` (member paths never used as paths)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{archive}: not a readable zip archive ({exc})") from None
    out = []
    with zf:
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if info.is_dir() or not base or not keep(base):
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                continue
            target = dest / base
            try:
                with zf.open(info) as src, open(target, "wb") as fh:
                    shutil.copyfileobj(src, fh)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise SourceError(f"{archive}: member {info.filename} is corrupt ({exc})") from None
            out.append(target)
    return out


def plan_fsdd(folder: Path) -> ImportPlan:
    """FSDD clips in `folder` or `folder/recordings` (or deeper, as GitHub's zip nests them)."""
    plan = ImportPlan()
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() == ".wav")
    for f in files:
        m = FSDD_NAME.match(f.name)
        if not m:
            plan.ignored.append(str(f))
            continue
        digit, speaker, i = m.groups()
        plan.items.append((DIGIT_WORDS[int(digit)], f"{speaker.replace('_', '-')}_{i}", f))
    return plan


def speaker_and_rest(stem: str) -> tuple[str, str]:
    """Speech Commands' `HASH_nohash_N` -> (HASH, N); otherwise the first `_` splits speaker from the rest."""
    if "_nohash_" in stem:
        speaker, rest = stem.split("_nohash_", 1)
    elif "_" in stem:
        speaker, rest = stem.split("_", 1)
    else:
        speaker, rest = stem, ""
    return speaker.replace("_", "-") or "unknown", rest


def plan_folders(root: Path, words: list[str] | None = None) -> ImportPlan:
    """`root/<word>/*.{wav,ogg,flac}`; folders starting with `_` or `.` (e.g. `_background_noise_`) only if asked."""
    root = Path(root)
    plan = ImportPlan()
    wanted = set(words) if words else None
    for wdir in sorted(p for p in root.iterdir() if p.is_dir()):
        w = wdir.name
        if wanted is not None and w not in wanted:
            continue
        if wanted is None and (w.startswith("_") or w.startswith(".")):
            continue
        try:
            check_word(w)
        except ValueError as exc:
            plan.ignored.append(f"{wdir}: {exc}")
            continue
        for f in sorted(wdir.iterdir()):
            if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES:
                speaker, rest = speaker_and_rest(f.stem)
                plan.items.append((w, f"{speaker}_{rest}" if rest else speaker, f))
    if wanted:
        missing = wanted - {w for w, _, _ in plan.items}
        plan.ignored += [f"{root / w}: no clips for word {w!r}" for w in sorted(missing)]
    return plan


def convert(item: tuple[str, str, Path], out_root: Path) -> ImportResult:
    """One clip -> `out_root/<word>/<stem>.wav` at 16 kHz; bad audio becomes an error result, never an exception."""
    word, stem, src = item
    dest = out_root / word / f"{stem}.wav"
    if dest.exists():
        return ImportResult(str(src), "exists", dest)
    try:
        x = read_audio(src)
        write_wav_atomic(dest, x)
    except AudioError as exc:
        return ImportResult(str(src), "error", None, exc.problem)
    except FileExistsError:
        return ImportResult(str(src), "exists", dest)
    except OSError as exc:
        return ImportResult(str(src), "error", None, f"cannot write {dest} ({exc.strerror or exc})")
    return ImportResult(str(src), "ok", dest)


def run_plan(plan: ImportPlan, out_root: Path) -> Iterator[ImportResult]:
    """Convert every planned clip; yields one result a clip."""
    for item in plan.items:
        yield convert(item, out_root)


class FsddSource:
    """FSDD from a folder, a local zip, or a URL of a zip; a context manager so downloads are cleaned up."""

    def __init__(self, src: str, progress: Callable[[int, int | None], None] | None = None) -> None:
        self.src = src
        self.progress = progress
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Path:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> Path:
        """The folder holding the recordings (downloaded and extracted first if need be)."""
        p = Path(self.src)
        if not is_url(self.src) and p.is_dir():
            return p
        self._tmp = tempfile.TemporaryDirectory(prefix="ws-fsdd-")
        tmp = Path(self._tmp.name)
        if is_url(self.src):
            archive = download(self.src, tmp / "fsdd.zip", self.progress)
        elif p.is_file():
            archive = p
        else:
            raise SourceError(f"{self.src}: no such folder, zip or URL")
        out = tmp / "recordings"
        out.mkdir()
        found = extract_wavs(archive, out, lambda name: bool(FSDD_NAME.match(name)))
        if not found:
            raise SourceError(f"{self.src}: holds no FSDD recordings ({{digit}}_{{speaker}}_{{i}}.wav)")
        return out

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
