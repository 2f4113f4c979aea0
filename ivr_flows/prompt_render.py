"""Our prompts as sound files: espeak-ng speaks the texts of prompts.yaml and
sox turns the speech into a format Asterisk plays without transcoding on a
narrowband call: 8 kHz, mono, 16-bit signed PCM WAV (Asterisk's ``wav``).

``OUT/<language>/custom/cc-welcome.wav`` gets a stamp next to it,
``cc-welcome.wav.stamp`` (JSON: the render key - a hash of the words, the
voices, the speed and the espeak-ng version - the sha256 of the wav and
the text).  A file whose key and content match its stamp is not rendered
again.

Both programs run as subprocesses with argument lists; the words reach
espeak-ng on its standard input, never on a command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ivr_flows.prompts import Part, PromptManifest

#: espeak-ng voice per language.  Mandarin is ``cmn-latn-pinyin``: espeak-ng
#: 1.51's ``cmn`` voice reads the pinyin of its own dictionary as English
#: ("好" becomes "hao two", espeak-ng issue #1236); this one says it as
#: Mandarin (Latin letters in a zh text are then read as pinyin too).
VOICES = {"en": "en", "zh": "cmn-latn-pinyin"}
SPEED = 150          # words per minute: a little slower than espeak-ng's 175, for the phone
SAMPLE_RATE = 8000
RENDER_FORMAT = 1    # bump when the rendering below changes, to render everything again
STAMP_SUFFIX = ".stamp"
TIMEOUT = 60
#: Program -> the Debian package that has it.
PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox"}


class ToolMissing(RuntimeError):
    def __init__(self, programs: Sequence[str]) -> None:
        self.programs = tuple(programs)
        packages = " ".join(PACKAGES[p] for p in programs)
        super().__init__(f"{' and '.join(programs)} {'is' if len(programs) == 1 else 'are'} not installed: "
                         f"install the Debian package{'s' if len(programs) > 1 else ''} {packages} "
                         f"(apt-get install {packages})")


class RenderError(RuntimeError):
    """One prompt could not be rendered; the message says why."""


@dataclass(frozen=True)
class Tools:
    espeak: str
    sox: str
    espeak_version: str


def find_tools(which: Callable[[str], str | None] = shutil.which) -> Tools:
    """The programs, or :class:`ToolMissing` naming every missing one."""
    found = {program: which(program) for program in PACKAGES}
    missing = [program for program, path in found.items() if path is None]
    if missing:
        raise ToolMissing(missing)
    espeak, sox = found["espeak-ng"], found["sox"]
    assert espeak is not None and sox is not None
    try:
        version = _run([espeak, "--version"]).stdout.decode("utf-8", "replace").split("Data at")[0].strip()
    except RenderError as exc:
        raise ToolMissing(["espeak-ng"]) from exc
    return Tools(espeak, sox, version)


def voice_for(language: str) -> str:
    """espeak-ng's voice for an Asterisk language code (``fr_CA`` -> ``fr``)."""
    return VOICES.get(language) or VOICES.get(language.split("_")[0]) or language.split("_")[0]


def wav_problem(path: Path) -> str | None:
    """Why ``path`` is not an 8 kHz mono 16-bit PCM WAV with sound in it (None: it is)."""
    try:
        with wave.open(str(path), "rb") as wav:
            params = wav.getparams()
    except (OSError, EOFError, wave.Error) as exc:
        return f"not a PCM WAV file ({exc})"
    if params.comptype != "NONE":
        return f"compressed ({params.compname}), not PCM"
    found = (params.framerate, params.nchannels, params.sampwidth * 8)
    if found != (SAMPLE_RATE, 1, 16):
        return f"{found[0]} Hz, {found[1]} channel(s), {found[2]}-bit: not {SAMPLE_RATE} Hz, 1 channel, 16-bit"
    if params.nframes == 0:
        return "empty: no sound in it"
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Job:
    name: str
    language: str
    parts: tuple[Part, ...]
    target: Path

    def key(self, tools: Tools) -> str:
        recipe = {"format": RENDER_FORMAT, "rate": SAMPLE_RATE, "speed": SPEED, "espeak": tools.espeak_version,
                  "parts": [[voice_for(part.language), part.text] for part in self.parts]}
        return hashlib.sha256(json.dumps(recipe, ensure_ascii=False, sort_keys=True).encode()).hexdigest()

    @property
    def text(self) -> str:
        return " ".join(p.text if p.language == self.language else f"[{p.language}] {p.text}" for p in self.parts)


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # rendered | unchanged | failed
    message: str = ""


def target_of(out_dir: Path, language: str, name: str) -> Path:
    return out_dir / language / f"{name}.wav"


def plan(manifest: PromptManifest, out_dir: Path, languages: Iterable[str]) -> tuple[list[Job], list[str]]:
    """Jobs for every prompt in every language, and the prompts without a text in one."""
    jobs, problems = [], []
    for language in languages:
        for prompt in manifest.rendered.values():
            parts = prompt.texts.get(language)
            if parts is None:
                problems.append(f"{prompt.pos}: prompt {prompt.name!r} has no {language} text")
            else:
                jobs.append(Job(prompt.name, language, parts, target_of(out_dir, language, prompt.name)))
    return jobs, problems


def build(jobs: Sequence[Job], tools: Tools, *, force: bool = False, workers: int | None = None) -> list[Outcome]:
    """Render the jobs whose stamp does not match (all of them with ``force``), in parallel."""
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda job: _build_one(job, tools, force), jobs))


def _build_one(job: Job, tools: Tools, force: bool) -> Outcome:
    key = job.key(tools)
    if not force and _stamp_matches(job.target, key):
        return Outcome(job, "unchanged")
    try:
        render(job, tools)
        write_atomically(_stamp_path(job.target), json.dumps(
            {"key": key, "sha256": sha256_of(job.target), "text": job.text}, ensure_ascii=False, indent=1) + "\n")
    except (RenderError, OSError) as exc:
        return Outcome(job, "failed", f"{job.target}: {exc}")
    return Outcome(job, "rendered")


def render(job: Job, tools: Tools) -> None:
    """Speak every part, join them into ``job.target`` (replaced atomically) and check the result."""
    job.target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cc-prompt-") as scratch:
        spoken = []
        for index, part in enumerate(job.parts):
            path = Path(scratch) / f"part{index}.wav"
            voice = voice_for(part.language)
            result = _run([tools.espeak, "-v", voice, "-s", str(SPEED), "-b", "1", "--stdin", "-w", str(path)],
                          stdin=part.text.encode("utf-8"))
            if not path.exists() or path.stat().st_size <= 44:
                said = result.stderr.decode("utf-8", "replace").strip()
                raise RenderError(f"espeak-ng (voice {voice}) said nothing for {part.text!r}"
                                  + (f": {said}" if said else ""))
            spoken.append(str(path))
        fd, tmp = tempfile.mkstemp(dir=job.target.parent, prefix=f".{job.target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            _run([tools.sox, *spoken, "-t", "wav", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                  "-e", "signed-integer", tmp, "norm", "-3"])
            problem = wav_problem(Path(tmp))
            if problem:
                raise RenderError(f"sox wrote a file Asterisk cannot play natively: {problem}")
            os.chmod(tmp, 0o644)
            os.replace(tmp, job.target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _run(argv: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    program = Path(argv[0]).name
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, timeout=TIMEOUT, check=False)
    except OSError as exc:
        raise RenderError(f"cannot run {program}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise RenderError(f"{program} took longer than {TIMEOUT} s") from None
    if result.returncode != 0:
        said = result.stderr.decode("utf-8", "replace").strip()[:500]
        raise RenderError(f"{program} failed (exit {result.returncode}): {said or 'no message'}")
    return result


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + STAMP_SUFFIX)


def _stamp_matches(target: Path, key: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
        return isinstance(stamp, dict) and stamp.get("key") == key and stamp.get("sha256") == sha256_of(target)
    except (OSError, ValueError):
        return False


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
