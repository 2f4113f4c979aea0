"""``callcenter prompts ...``: render our prompts and install them for Asterisk.

Exit status: 0 success, 1 an invalid manifest, a prompt that could not be
rendered or installed, 2 bad usage or espeak-ng / sox not installed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import click

from ivr_flows.cli import DEFAULT_FLOWS_DIR
from ivr_flows.flowset import PROMPTS_FILE, load_manifest
from ivr_flows.prompt_install import InstallError, install
from ivr_flows.prompt_render import ToolMissing, build, find_tools, plan
from ivr_flows.prompts import PromptManifest

DEFAULT_BUILD_DIR = "build/prompts"
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?")


@dataclass
class _Options:
    flows_dir: Path
    manifest_path: Path | None

    def manifest(self) -> PromptManifest:
        path = self.manifest_path or self.flows_dir / PROMPTS_FILE
        manifest, errors = load_manifest(path)
        if manifest is None:
            for error in errors:
                click.echo(str(error))
            raise click.exceptions.Exit(_failed(f"{len(errors)} error(s) in {path}"))
        if not manifest.rendered:
            raise click.exceptions.Exit(_failed(f"{path} gives no prompt a text: nothing to render (see "
                                                f"ivr_flows/README.md, prompts.yaml)"))
        return manifest

    def languages(self, manifest: PromptManifest, chosen: tuple[str, ...]) -> tuple[str, ...]:
        for language in chosen:
            if not _LANGUAGE.fullmatch(language):
                raise click.BadParameter(f"{language!r} is not a language code like en, zh or fr_CA",
                                         param_hint="--language")
            if language not in manifest.languages:
                raise click.BadParameter(f"no prompt has a {language} text in {manifest.file} (it has "
                                         f"{', '.join(manifest.languages)})", param_hint="--language")
        return tuple(dict.fromkeys(chosen)) or manifest.languages


def _failed(message: str) -> int:
    click.echo(message, err=True)
    return 1


@click.group("prompts", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--flows-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_FLOWS_DIR,
              envvar="CALLCENTER_FLOWS_DIR", show_default=True, help="Directory of the flow files.")
@click.option("--manifest", "manifest_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Prompt manifest (default: FLOWS_DIR/prompts.yaml).")
@click.pass_context
def prompts(ctx: click.Context, flows_dir: Path, manifest_path: Path | None) -> None:
    """The IVR's own prompts: speak their texts (prompts.yaml) and install the files for Asterisk."""
    ctx.obj = _Options(flows_dir, manifest_path)


@prompts.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_BUILD_DIR,
              show_default=True, help="Where the files go: OUT/<language>/custom/NAME.wav (relative to here).")
@click.option("--language", "languages", multiple=True, metavar="L",
              help="Only this language (repeatable; default: every language of prompts.yaml).")
@click.option("--force", is_flag=True, help="Render every prompt again, changed or not.")
@click.pass_obj
def build_command(opts: _Options, out: Path, languages: tuple[str, ...], force: bool) -> None:
    """Render every prompt of prompts.yaml with espeak-ng and sox.

    The files are 8 kHz mono 16-bit PCM WAV, which Asterisk plays natively.
    Each gets a stamp (NAME.wav.stamp); a prompt whose text, voice and file
    are unchanged is not rendered again.  Needs the Debian packages
    espeak-ng and sox.
    """
    manifest = opts.manifest()
    chosen = opts.languages(manifest, languages)
    try:
        tools = find_tools()
    except ToolMissing as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(2)
    jobs, problems = plan(manifest, out, chosen)
    started = time.monotonic()
    outcomes = build(jobs, tools, force=force)
    elapsed = time.monotonic() - started
    for outcome in outcomes:
        if outcome.status == "rendered":
            click.echo(f"rendered {outcome.job.target}")
    failures = problems + [outcome.message for outcome in outcomes if outcome.status == "failed"]
    for problem in failures:
        click.echo(f"error: {problem}", err=True)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("rendered", "unchanged")}
    click.echo(f"{len(jobs)} prompt file(s) in {out} ({', '.join(chosen)}): {counts['rendered']} rendered, "
               f"{counts['unchanged']} unchanged, {len(failures)} failed ({elapsed:.1f} s)")
    if failures:
        raise click.exceptions.Exit(1)


@prompts.command("install")
@click.option("--sounds-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Asterisk's sounds directory, e.g. /var/lib/asterisk/sounds.")
@click.option("--from", "build_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_BUILD_DIR,
              show_default=True, help="What `prompts build` wrote.")
@click.option("--language", "languages", multiple=True, metavar="L",
              help="Only this language (repeatable; default: every language of prompts.yaml).")
@click.option("--force", is_flag=True, help="Replace studio recordings too.")
@click.pass_obj
def install_command(opts: _Options, sounds_dir: Path, build_dir: Path, languages: tuple[str, ...],
                    force: bool) -> None:
    """Copy the rendered prompts to SOUNDS_DIR/<language>/custom/.

    Files are replaced atomically.  A file there that this command did not
    write (recorded in .callcenter-prompts.json) is a studio recording: it
    is kept, in whatever format, unless --force.  Other files are never
    touched.
    """
    manifest = opts.manifest()
    chosen = opts.languages(manifest, languages)
    try:
        results = install(manifest, build_dir, sounds_dir, chosen, force=force)
    except InstallError as exc:
        raise click.exceptions.Exit(_failed(f"error: {exc}"))
    for result in results:
        if result.status != "unchanged":
            click.echo(f"{result.status} {result.target}" + (f": {result.note}" if result.note else ""))
    for language in chosen:
        mine = [r for r in results if r.language == language]
        counts = {s: sum(r.status == s for r in mine) for s in ("installed", "updated", "replaced", "unchanged",
                                                                "kept")}
        click.echo(f"{language}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "installed")
                   + f" in {sounds_dir / language / 'custom'}")
