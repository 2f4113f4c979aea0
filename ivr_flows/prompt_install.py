"""Rendered prompts into an Asterisk sounds directory, next to studio recordings.

``install`` copies ``BUILD/<language>/custom/NAME.wav`` to
``SOUNDS/<language>/custom/NAME.wav`` (temporary file, then rename: Asterisk
never plays half a file) and records the sha256 of every file it wrote in
``SOUNDS/<language>/custom/.callcenter-prompts.json``.  A file there that is
not in that record with the same hash is someone else's: a studio recording
the admin put in its place, kept unless ``force`` - also when it is in
another format (``NAME.gsm``, ``NAME.sln16``...), which Asterisk may prefer
to our wav.  Nothing else in the directory is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ivr_flows.prompt_render import sha256_of, target_of, wav_problem, write_atomically
from ivr_flows.prompts import CUSTOM_DIR, PromptManifest
from ivr_flows.sounds import SoundsDir

RECORD_FILE = ".callcenter-prompts.json"
RECORD_NOTE = ("Files `callcenter prompts install` wrote, with their sha256.  A file here whose hash differs "
               "is someone else's (a studio recording) and is kept; `install --force` replaces it.")


class InstallError(RuntimeError):
    """Nothing was installed (or a file could not be written); the message says why."""


@dataclass(frozen=True)
class Installed:
    language: str
    target: Path
    status: str  # installed | updated | unchanged | kept | replaced
    note: str = ""


def install(manifest: PromptManifest, build_dir: Path, sounds_dir: Path, languages: Iterable[str], *,
            force: bool = False) -> list[Installed]:
    """Copy every rendered prompt of ``languages``; checks every source first."""
    sources: list[tuple[str, str, Path]] = []
    problems = []
    for language in languages:
        for prompt in manifest.rendered.values():
            if language not in prompt.texts:
                continue
            source = target_of(build_dir, language, prompt.name)
            problem = "not there" if not source.is_file() else wav_problem(source)
            if problem:
                problems.append(f"{source}: {problem}")
            sources.append((language, prompt.file_name + ".wav", source))
    if problems:
        raise InstallError("nothing installed, the rendered prompts are not all there (run `callcenter prompts "
                           "build` first):\n  " + "\n  ".join(problems))
    results = []
    for language in dict.fromkeys(language for language, _, _ in sources):
        batch = [(rel, source) for lang, rel, source in sources if lang == language]
        results += _install_language(language, batch, sounds_dir / language / CUSTOM_DIR, force)
    return results


def _install_language(language: str, batch: list[tuple[str, Path]], custom_dir: Path,
                      force: bool) -> list[Installed]:
    record_path = custom_dir / RECORD_FILE
    record = _read_record(record_path)
    sounds = SoundsDir(custom_dir)
    results = []
    try:
        custom_dir.mkdir(parents=True, exist_ok=True)
        try:
            for rel, source in batch:
                target = custom_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                status, note = _install_one(rel, source, target, record, sounds, force)
                results.append(Installed(language, target, status, note))
        finally:
            _write_record(record_path, record)  # what was copied so far is ours
    except OSError as exc:
        raise InstallError(f"cannot write in {custom_dir}: {exc} (run as the user Asterisk's sounds belong "
                           f"to, or root)") from None
    return results


def _install_one(rel: str, source: Path, target: Path, record: dict[str, str], sounds: SoundsDir,
                 force: bool) -> tuple[str, str]:
    new = sha256_of(source)
    others = [p.name for p in sounds.playable(target.parent, target.stem) if p.name != target.name]
    beside = (f"; {', '.join(others)} is there too, and Asterisk plays whichever format costs least: "
              f"remove it to hear this one") if others else ""
    if target.is_file():
        current = sha256_of(target)
        if current == new:
            record[rel] = new  # ours (perhaps the record was lost): the same bytes
            return "unchanged", ""
        if record.get(rel) == current:
            _copy(source, target)
            record[rel] = new
            return "updated", beside.lstrip("; ")
        if not force:
            return "kept", "a studio recording (not a file install wrote); --force replaces it"
        _copy(source, target)
        record[rel] = new
        return "replaced", "the studio recording was replaced (--force)" + beside
    if target.exists() or target.is_symlink():
        return "kept", "not a regular file: left alone"
    if others and not force:
        return "kept", f"studio recording {', '.join(others)} kept, no wav installed beside it; --force installs it"
    _copy(source, target)
    record[rel] = new
    return "installed", beside.lstrip("; ")


def _copy(source: Path, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _read_record(path: Path) -> dict[str, str]:
    """name below custom/ -> sha256 of the file we wrote there."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot read {path}: {exc}") from None
    try:
        files = json.loads(text)["files"]
        record = {str(name): str(entry["sha256"]) for name, entry in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InstallError(f"{path} is damaged: it records the prompts we installed, so without it every file "
                           f"there would count as a studio recording; delete it to start again (existing files "
                           f"are then kept unless --force)") from None
    return record


def _write_record(path: Path, record: dict[str, str]) -> None:
    if not path.parent.is_dir():
        return
    present = {rel: digest for rel, digest in sorted(record.items()) if (path.parent / rel).is_file()}
    text = json.dumps({"note": RECORD_NOTE, "files": {rel: {"sha256": d} for rel, d in present.items()}},
                      indent=1) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    write_atomically(path, text)
