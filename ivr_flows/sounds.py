"""Which prompt files an Asterisk sounds directory has.

Asterisk looks for prompt ``NAME`` of a channel in language ``zh`` as
``SOUNDS/zh/NAME.<ext>``, for every file format it has a module for; for a
language with a dialect (``fr_CA``) it tries ``fr`` next; failing those it
plays the file without a language directory, then the ``en`` one.
:func:`missing_sounds` reports, at the line of the flow that plays it,
every prompt that has no file in a language the flows offer.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ivr_flows.flowset import FlowSet
from ivr_flows.model import FlowError
from ivr_flows.prompts import offered_languages, prompt_uses

#: File extensions of the formats Asterisk reads (its format_* modules):
#: wav = 16-bit PCM WAV, WAV/wav49 = GSM in WAV, sln* = raw signed linear.
SOUND_EXTENSIONS = frozenset({
    "wav", "wav16", "WAV", "wav49", "gsm", "sln", "raw", "sln12", "sln16", "sln24", "sln32", "sln44", "sln48",
    "sln96", "sln192", "ulaw", "ul", "mu", "ulw", "pcm", "alaw", "al", "alw", "au", "g722", "g719", "g723",
    "g723sf", "g726-40", "g726-32", "g726-24", "g726-16", "g729", "ilbc", "siren7", "siren14", "vox", "ogg",
    "opus", "spx",
})
DEFAULT_LANGUAGE = "en"


class SoundsDir:
    """An Asterisk sounds directory (``/var/lib/asterisk/sounds``), each subdirectory listed once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, frozenset[str]] = {}

    def files(self, language: str, name: str) -> list[Path]:
        """Files of prompt ``name`` in ``language``'s own directory, in any playable format."""
        prompt = PurePosixPath(name)
        return self.playable(self.root / language / prompt.parent, prompt.name)

    def playable(self, directory: Path, stem: str) -> list[Path]:
        """``directory/stem.<ext>`` for every format Asterisk plays that is there."""
        listing = self._listing(directory)
        return sorted(directory / f"{stem}.{ext}" for ext in SOUND_EXTENSIONS if f"{stem}.{ext}" in listing)

    def plays(self, language: str, name: str) -> bool:
        """Whether a caller in ``language`` hears ``name`` in that language (``fr_CA`` may use ``fr``)."""
        base = language.split("_")[0]
        return bool(self.files(language, name) or (base != language and self.files(base, name)))

    def _listing(self, directory: Path) -> frozenset[str]:
        if directory not in self._listings:
            try:
                names = frozenset(entry.name for entry in os.scandir(directory) if not entry.is_dir())
            except OSError:
                names = frozenset()
            self._listings[directory] = names
        return self._listings[directory]


def missing_sounds(flow_set: FlowSet, sounds: SoundsDir) -> list[FlowError]:
    """Every prompt a flow plays that has no file in a language the flows offer, at the place it is played."""
    languages = offered_languages(flow_set.flows.values())
    errors = []
    for name, flow in flow_set.flows.items():
        for use in prompt_uses(flow, flow_set.texts[name]):
            for language in languages:
                if sounds.plays(language, use.name):
                    continue
                instead = (f"; a {language} caller hears the {DEFAULT_LANGUAGE} one instead"
                           if language != DEFAULT_LANGUAGE and sounds.plays(DEFAULT_LANGUAGE, use.name) else "")
                errors.append(FlowError.at(use.pos, f"no {language} sound file for prompt {use.name!r} (no "
                                                    f"{sounds.root / language / use.name}.wav, .gsm, .ulaw, "
                                                    f"...){instead}"))
    return errors
