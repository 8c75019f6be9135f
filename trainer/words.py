"""A prefix's word list (`DATA/PREFIX.words`) and the naming rules every data command shares.

One place decides what a word, a prefix and a speaker may look like, so file names written by `split`, `import`,
`record` and `synth` all parse the same way: the first `_`-separated field of a clip's name is its speaker.
"""

from __future__ import annotations

import re
from pathlib import Path

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_WORD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9'\-]*$|^_[A-Za-z0-9]+_$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")


class WordsError(ValueError):
    """A missing or unusable word list or name; str() is one line naming the file or value."""


def check_word(word: str) -> str:
    """A word becomes a folder name: letters, digits, ' and -, or `_name_` for special classes."""
    if not _WORD_RE.match(word):
        raise WordsError(f"{word!r} is not a usable word (letters, digits, ' and - only)")
    return word


def check_name(name: str, what: str = "name") -> str:
    """Speakers, voices and prefixes: no `_` (it separates fields), no path characters."""
    if not _NAME_RE.match(name or ""):
        raise WordsError(f"{what} {name!r} must be letters, digits, '.' or '-' (no '_', '/' or spaces)")
    return name


def check_prefix(prefix: str) -> str:
    """A prefix names files `PREFIX_*.wav` and the folder `PREFIX/`: no path separators or leading dots."""
    if not prefix or "/" in prefix or "\\" in prefix or prefix.startswith(".") or "_" in prefix or " " in prefix:
        raise WordsError(f"prefix {prefix!r} must be a plain name without '_', '/', spaces or a leading '.'")
    return prefix


def words_path(data: Path, prefix: str) -> Path:
    return Path(data) / f"{prefix}.words"


def read_words(data: Path, prefix: str) -> list[str]:
    """The words of `DATA/PREFIX.words` in order (whitespace-separated; `#` starts a comment)."""
    p = words_path(data, prefix)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WordsError(f"{p}: no such word list (write the words, e.g. 'cat dog fox bird', into it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WordsError(f"{p}: cannot be read ({type(exc).__name__})") from None
    words = [w for line in text.splitlines() for w in line.split("#", 1)[0].split()]
    if not words:
        raise WordsError(f"{p}: holds no words")
    for w in words:
        try:
            check_word(w)
        except WordsError as exc:
            raise WordsError(f"{p}: {exc}") from None
    return words


def write_words(data: Path, prefix: str, words: list[str]) -> Path:
    """Write a word list (used by import and synth when a prefix has none yet)."""
    from shared.audio import atomic_write_bytes

    for w in words:
        check_word(w)
    return atomic_write_bytes(words_path(data, prefix), (" ".join(words) + "\n").encode())


def speaker_of(stem: str) -> str:
    """The project-wide convention: the first `_`-separated field of a clip's file name is its speaker."""
    return stem.split("_", 1)[0]
