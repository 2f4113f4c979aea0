"""Our prompts: texts per language in prompts.yaml, rendered with the real espeak-ng and sox,
installed next to studio recordings, and checked against a sounds directory."""

from __future__ import annotations

import json
import os
import shutil
import time
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from callcenter.cli import cli
from ivr_flows.flowset import load_flowset, load_manifest
from ivr_flows.loader import load_flow_text
from ivr_flows.prompts import offered_languages, parse_manifest, prompt_uses

SHIPPED = Path(__file__).resolve().parent.parent / "ivr_flows" / "flows"

MANIFEST = """\
core: [vm-goodbye]
custom:
  custom/cc-welcome:
    en: Welcome.
    zh: 欢迎。
  custom/cc-menu:
    en: ["For English, press 1.", {zh: 中文请按 2。}]
    zh: [中文请按 2。, {en: "For English, press 1."}]
"""
FLOW = """\
start: welcome
nodes:
  welcome:
    type: play
    prompt: custom/cc-welcome
    next: choose
  choose:
    type: menu
    prompt: custom/cc-menu
    choices:
      1: english
      2: chinese
    fallback: english
  english:
    type: set
    language: en
    next: bye
  chinese:
    type: set
    language: zh
    next: bye
  bye:
    type: play
    prompt: vm-goodbye
    next: end
  end:
    type: hangup
"""
ROUTES = """\
timezone: Europe/Berlin
routes:
  "4000": {flow: main}
"""


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """Two custom prompts in en and zh, one core prompt, one flow offering both languages."""
    target = tmp_path / "flows"
    target.mkdir()
    (target / "prompts.yaml").write_text(MANIFEST, encoding="utf-8")
    (target / "main.yaml").write_text(FLOW)
    (target / "routes.yaml").write_text(ROUTES)
    return target


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def build(flows_dir: Path, out: Path, *args: str, env: dict | None = None):
    return run("prompts", "--flows-dir", str(flows_dir), "build", "--out", str(out), *args, env=env)


def install(flows_dir: Path, out: Path, sounds: Path, *args: str):
    return run("prompts", "--flows-dir", str(flows_dir), "install", "--sounds-dir", str(sounds), "--from", str(out),
               *args)


def wav_params(path: Path) -> tuple:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth() * 8, wav.getcomptype(), wav.getnframes()


def seconds(path: Path) -> float:
    rate, *_, frames = wav_params(path)
    return frames / rate


# -- the manifest ------------------------------------------------------------------------

def test_every_shipped_custom_prompt_has_an_english_and_a_mandarin_text():
    """The flows offer en and zh; prompts.yaml gives each custom prompt a text in both."""
    flow_set, errors = load_flowset(SHIPPED)
    assert errors == []
    assert set(offered_languages(flow_set.flows.values())) == {"en", "zh"}
    manifest, _ = load_manifest(SHIPPED / "prompts.yaml")
    custom = {name for name in manifest.names if name.startswith("custom/")}
    assert set(manifest.rendered) == custom and len(custom) == 22
    assert all(set(prompt.texts) == {"en", "zh"} for prompt in manifest.rendered.values())
    assert "beep" in manifest.names and "beep" not in manifest.rendered


def test_a_missing_text_in_an_offered_language_is_a_validation_error(tmp_path):
    """Removing a zh text: flows validate names the prompt at its line in prompts.yaml and the flow offering zh."""
    flows = tmp_path / "flows"
    shutil.copytree(SHIPPED, flows, ignore=shutil.ignore_patterns(".history"))
    manifest = flows / "prompts.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert "    zh: 欢迎致电客户服务热线。\n" in text
    manifest.write_text(text.replace("    zh: 欢迎致电客户服务热线。\n", ""), encoding="utf-8")
    line = text.splitlines().index("  custom/cc-welcome:") + 1
    result = run("flows", "--flows-dir", str(flows), "validate")
    assert result.exit_code == 1
    assert result.stdout == (f"{manifest}:{line}:3: prompt 'custom/cc-welcome' has no zh text: hotline.yaml offers zh "
                             "(a custom prompt needs a text in every language the flows offer: en, zh)\n")
    assert result.stderr == "1 error(s)\n"


def test_a_set_node_offering_a_new_language_needs_texts_in_it(flows_dir):
    """A flow that sets French makes every custom prompt need a fr text, reported per prompt."""
    (flows_dir / "main.yaml").write_text(FLOW.replace("language: zh", "language: fr"))
    flow_set, errors = load_flowset(flows_dir)
    assert flow_set is None
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (3, "prompt 'custom/cc-welcome' has no fr text"), (6, "prompt 'custom/cc-menu' has no fr text")]


@pytest.mark.parametrize("text, expected", [
    ("custom:\n  cc-welcome: {en: Hi}\n",
     "p.yaml:2:3: prompt 'cc-welcome' has texts, so callcenter renders it into custom/: name it 'custom/cc-welcome'"),
    ("custom:\n  custom/a: {en: '  '}\n", "p.yaml:2:18: empty text: say what 'custom/a' says in en"),
    ("custom:\n  custom/a: {english: Hi}\n",
     "p.yaml:2:14: 'english' is not allowed here: use a language code like en, zh or fr_CA"),
    ("custom:\n  custom/a.wav: {en: Hi}\n",
     "p.yaml:2:3: 'custom/a.wav' is not allowed here: use a prompt name of letters, digits, _, - and / (no extension)"),
    ("custom:\n  custom/a: {en: Hi}\nmore:\n  custom/a: {en: Ho}\n",
     "p.yaml:4:3: prompt 'custom/a' already has texts at line 2"),
    ("custom:\n  custom/a: {en: 5}\n", "p.yaml:2:18: en: 5 is not of type 'string', 'array'"),
    ("custom: hello\n", "p.yaml:1:9: custom: 'hello' is not of type 'array', 'object'"),
    ("- beep\n", "p.yaml:1:1: the prompt manifest maps groups to lists of prompt names, or to custom prompts "
                 "with their texts"),
])
def test_manifest_errors_are_reported_at_their_line_and_column(text, expected):
    """Each malformed manifest gives one plain error at file:line:column."""
    manifest, errors = parse_manifest(text, "p.yaml")
    assert manifest is None and [str(e) for e in errors] == [expected]


def test_the_older_list_format_still_loads():
    """custom: as a plain list of names is still a valid manifest: names only, nothing to render."""
    manifest, errors = parse_manifest("core: [beep]\ncustom: [custom/welcome, custom/menu]\n", "p.yaml")
    assert errors == [] and manifest.names == {"beep", "custom/welcome", "custom/menu"}
    assert manifest.rendered == {}


def test_prompt_uses_finds_every_prompt_field_with_its_position():
    """Menu prompt lists, retry prompts, say items and the amount prompts an amount implies."""
    text = ("start: a\nnodes:\n  a:\n    type: menu\n    prompt: [beep, custom/x]\n    choices: {1: b}\n"
            "    invalid_prompt: pbx-invalid\n  b:\n    type: play\n    say:\n      - prompt: custom/y\n"
            "      - currency: customer.balance\n    next: c\n  c:\n    type: hangup\n")
    flow, errors = load_flow_text(text, "f.yaml", "f")
    assert errors == []
    assert [(u.pos.line, u.pos.column, u.name) for u in prompt_uses(flow, text)] == [
        (5, 14, "beep"), (5, 20, "custom/x"), (7, 21, "pbx-invalid"), (11, 17, "custom/y"), (12, 19, "cents"),
        (12, 19, "dollars")]


# -- build ---------------------------------------------------------------------------------

def test_build_renders_8khz_mono_16bit_pcm_wav_per_language(flows_dir, tmp_path):
    """OUT/<language>/custom/NAME.wav, 8000 Hz, 1 channel, 16-bit PCM, with sound in it and a stamp."""
    out = tmp_path / "out"
    result = build(flows_dir, out)
    assert result.exit_code == 0, result.output
    assert "4 prompt file(s)" in result.stdout and "4 rendered, 0 unchanged, 0 failed" in result.stdout
    for language in ("en", "zh"):
        for name in ("cc-welcome", "cc-menu"):
            path = out / language / "custom" / f"{name}.wav"
            rate, channels, bits, compression, frames = wav_params(path)
            assert (rate, channels, bits, compression) == (8000, 1, 16, "NONE") and frames > 0
            stamp = json.loads((path.parent / f"{name}.wav.stamp").read_text(encoding="utf-8"))
            assert set(stamp) == {"key", "sha256", "text"}
    # the menu speaks both languages: longer than its English part alone
    assert seconds(out / "en" / "custom" / "cc-menu.wav") > seconds(out / "en" / "custom" / "cc-welcome.wav") + 1.5


def test_a_second_build_renders_nothing_and_a_changed_text_renders_only_that_prompt(flows_dir, tmp_path):
    """The stamp next to each file makes an unchanged rebuild a no-op; edits and damaged files are redone."""
    out = tmp_path / "out"
    assert build(flows_dir, out).exit_code == 0
    files = sorted(out.rglob("*.wav"))
    before = {p: p.stat().st_mtime_ns for p in files}
    again = build(flows_dir, out)
    assert again.exit_code == 0 and "0 rendered, 4 unchanged" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in files} == before

    manifest = flows_dir / "prompts.yaml"
    manifest.write_text(MANIFEST.replace("en: Welcome.", "en: Welcome to the hotline."), encoding="utf-8")
    (out / "zh" / "custom" / "cc-menu.wav").write_bytes(b"not a wav")
    changed = build(flows_dir, out)
    assert changed.exit_code == 0
    assert sorted(line.split("/")[-3:] for line in changed.stdout.splitlines() if line.startswith("rendered")) == [
        ["en", "custom", "cc-welcome.wav"], ["zh", "custom", "cc-menu.wav"]]
    assert wav_params(out / "zh" / "custom" / "cc-menu.wav")[:3] == (8000, 1, 16)
    assert "2 rendered, 2 unchanged" in changed.stdout


def test_build_one_language_and_force(flows_dir, tmp_path):
    """--language limits the build; --force renders unchanged prompts again."""
    out = tmp_path / "out"
    result = build(flows_dir, out, "--language", "zh")
    assert result.exit_code == 0 and "2 prompt file(s)" in result.stdout
    assert not (out / "en").exists() and len(list((out / "zh" / "custom").glob("*.wav"))) == 2
    forced = build(flows_dir, out, "--language", "zh", "--force")
    assert "2 rendered, 0 unchanged" in forced.stdout


def test_build_the_whole_shipped_set(tmp_path):
    """Every shipped prompt in en and zh renders to a valid file (the one test that renders them all)."""
    out = tmp_path / "out"
    started = time.monotonic()
    result = run("prompts", "--flows-dir", str(SHIPPED), "build", "--out", str(out))
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    files = sorted(out.rglob("*.wav"))
    assert len(files) == 44
    for path in files:
        assert wav_params(path)[:4] == (8000, 1, 16, "NONE") and seconds(path) > 0.2, path
    assert elapsed < 30, f"rendering the 44 prompts took {elapsed:.1f} s"


def test_build_without_espeak_ng_or_sox_exits_2_naming_the_debian_package(flows_dir, tmp_path):
    """A missing program is named with the package to install; nothing is written."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("sox"), bin_dir / "sox")
    result = build(flows_dir, tmp_path / "out", env={"PATH": str(bin_dir)})
    assert result.exit_code == 2
    assert result.stderr == ("error: espeak-ng is not installed: install the Debian package espeak-ng "
                             "(apt-get install espeak-ng)\n")
    (bin_dir / "sox").unlink()
    result = build(flows_dir, tmp_path / "out", env={"PATH": str(bin_dir)})
    assert result.exit_code == 2
    assert "espeak-ng and sox are not installed: install the Debian packages espeak-ng sox" in result.stderr
    assert not (tmp_path / "out").exists()


def test_build_bad_usage_and_a_bad_manifest(flows_dir, tmp_path):
    """An unknown --language is bad usage (2); an invalid manifest is reported like a flow error (1)."""
    result = build(flows_dir, tmp_path / "out", "--language", "fr")
    assert result.exit_code == 2 and "no prompt has a fr text" in result.output
    result = build(flows_dir, tmp_path / "out", "--language", "../etc")
    assert result.exit_code == 2 and "'../etc' is not a language code" in result.output
    (flows_dir / "prompts.yaml").write_text(MANIFEST.replace("en: Welcome.", "en: ''"), encoding="utf-8")
    result = build(flows_dir, tmp_path / "out")
    assert result.exit_code == 1
    assert result.stdout == f"{flows_dir / 'prompts.yaml'}:4:9: empty text: say what 'custom/cc-welcome' says in en\n"
    assert result.stderr == f"1 error(s) in {flows_dir / 'prompts.yaml'}\n"


def test_a_language_espeak_ng_has_no_voice_for_fails_that_prompt_with_its_message(flows_dir, tmp_path):
    """espeak-ng's own complaint is passed on; the other prompts still render; exit 1."""
    (flows_dir / "prompts.yaml").write_text(MANIFEST.replace("    zh: 欢迎。\n", "    zh: 欢迎。\n    qq: Hello.\n"),
                                            encoding="utf-8")
    result = build(flows_dir, tmp_path / "out")
    assert result.exit_code == 1
    assert "4 rendered, 0 unchanged, 2 failed" in result.stdout
    assert f"error: {tmp_path / 'out' / 'qq' / 'custom' / 'cc-welcome.wav'}: espeak-ng failed (exit 1): " \
           "Error: The specified espeak-ng voice does not exist." in result.stderr
    assert "prompt 'custom/cc-menu' has no qq text" in result.stderr


def test_prompts_group_has_help():
    """callcenter prompts, build and install explain themselves."""
    for args in (["prompts", "--help"], ["prompts", "build", "--help"], ["prompts", "install", "--help"]):
        result = run(*args)
        assert result.exit_code == 0 and "Usage: " in result.output


# -- install -------------------------------------------------------------------------------

@pytest.fixture
def built(flows_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    assert build(flows_dir, out).exit_code == 0
    return out


def test_install_copies_into_language_custom_dirs_and_records_its_files(flows_dir, built, tmp_path):
    """Files land in SOUNDS/<language>/custom/, byte for byte, other files there untouched; a rerun changes nothing."""
    sounds = tmp_path / "sounds"
    (sounds / "en" / "custom").mkdir(parents=True)
    other = sounds / "en" / "custom" / "someone-else.gsm"
    other.write_bytes(b"theirs")
    result = install(flows_dir, built, sounds)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [f"en: 2 installed in {sounds / 'en' / 'custom'}",
                                               f"zh: 2 installed in {sounds / 'zh' / 'custom'}"]
    for language in ("en", "zh"):
        for name in ("cc-welcome.wav", "cc-menu.wav"):
            assert (sounds / language / "custom" / name).read_bytes() == (built / language / "custom" / name).read_bytes()
        record = json.loads((sounds / language / "custom" / ".callcenter-prompts.json").read_text())
        assert sorted(record["files"]) == ["cc-menu.wav", "cc-welcome.wav"]
    assert other.read_bytes() == b"theirs"
    assert sorted(p.name for p in (sounds / "en" / "custom").iterdir()) == [
        ".callcenter-prompts.json", "cc-menu.wav", "cc-welcome.wav", "someone-else.gsm"]
    again = install(flows_dir, built, sounds)
    assert again.stdout.splitlines() == [f"en: 0 installed, 2 unchanged in {sounds / 'en' / 'custom'}",
                                         f"zh: 0 installed, 2 unchanged in {sounds / 'zh' / 'custom'}"]


def test_install_never_overwrites_a_studio_recording_unless_forced(flows_dir, built, tmp_path):
    """A recording the admin put in place of ours (any format) is kept; --force replaces the wav."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    assert install(flows_dir, built, sounds).exit_code == 0
    studio = sounds / "zh" / "custom" / "cc-welcome.wav"
    studio.write_bytes(b"RIFF studio take 3")
    gsm = sounds / "en" / "custom" / "cc-menu.gsm"
    (sounds / "en" / "custom" / "cc-menu.wav").unlink()
    gsm.write_bytes(b"studio gsm")
    # a changed text: our own files are updated, the studio ones are not
    (flows_dir / "prompts.yaml").write_text(MANIFEST.replace("中文请按 2。", "中文服务请按 2。"), encoding="utf-8")
    assert build(flows_dir, built).exit_code == 0
    result = install(flows_dir, built, sounds)
    assert result.exit_code == 0, result.output
    assert studio.read_bytes() == b"RIFF studio take 3" and gsm.read_bytes() == b"studio gsm"
    assert not (sounds / "en" / "custom" / "cc-menu.wav").exists()
    assert f"kept {studio}: a studio recording (not a file install wrote); --force replaces it" in result.stdout
    assert f"updated {sounds / 'zh' / 'custom' / 'cc-menu.wav'}" in result.stdout
    assert "en: 0 installed, 1 unchanged, 1 kept" in result.stdout and "zh: 0 installed, 1 updated, 1 kept" in result.stdout

    forced = install(flows_dir, built, sounds, "--force")
    assert forced.exit_code == 0
    assert studio.read_bytes() == (built / "zh" / "custom" / "cc-welcome.wav").read_bytes()
    assert gsm.read_bytes() == b"studio gsm"  # never deleted
    assert "cc-menu.gsm is there too" in forced.stdout
    assert install(flows_dir, built, sounds).stdout.count("unchanged") == 2


def test_install_before_build_or_with_a_damaged_record_exits_1(flows_dir, built, tmp_path):
    """Missing rendered files: nothing is copied.  A damaged record: refused, with what to do."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    (built / "zh" / "custom" / "cc-menu.wav").unlink()
    result = install(flows_dir, built, sounds)
    assert result.exit_code == 1
    assert f"{built / 'zh' / 'custom' / 'cc-menu.wav'}: not there" in result.stderr
    assert "callcenter prompts build" in result.stderr and list(sounds.iterdir()) == []
    assert build(flows_dir, built).exit_code == 0
    (sounds / "en" / "custom").mkdir(parents=True)
    (sounds / "en" / "custom" / ".callcenter-prompts.json").write_text("{broken")
    result = install(flows_dir, built, sounds)
    assert result.exit_code == 1 and ".callcenter-prompts.json is damaged" in result.stderr
    result = install(flows_dir, built, tmp_path / "nowhere")
    assert result.exit_code == 2 and "does not exist" in result.output


# -- flows validate --sounds-dir ------------------------------------------------------------

def test_validate_sounds_dir_reports_each_missing_prompt_per_language_where_it_is_played(flows_dir, built, tmp_path):
    """Missing files are errors at the flow line playing the prompt, naming the language; all there: exit 0."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    assert install(flows_dir, built, sounds).exit_code == 0
    (sounds / "en" / "vm-goodbye.gsm").write_bytes(b"core sound")
    (sounds / "zh" / "custom" / "cc-menu.wav").unlink()
    flow = flows_dir / "main.yaml"
    result = run("flows", "--flows-dir", str(flows_dir), "validate", "--sounds-dir", str(sounds))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{flow}:9:13: no zh sound file for prompt 'custom/cc-menu' (no {sounds}/zh/custom/cc-menu.wav, .gsm, .ulaw, "
        "...); a zh caller hears the en one instead",
        f"{flow}:24:13: no zh sound file for prompt 'vm-goodbye' (no {sounds}/zh/vm-goodbye.wav, .gsm, .ulaw, ...); "
        "a zh caller hears the en one instead",
    ]
    assert result.stderr == "2 error(s)\n"

    shutil.copy(built / "zh" / "custom" / "cc-menu.wav", sounds / "zh" / "custom" / "cc-menu.wav")
    (sounds / "zh" / "vm-goodbye.sln16").write_bytes(b"recorded in Mandarin")
    result = run("flows", "--flows-dir", str(flows_dir), "validate", "--sounds-dir", str(sounds))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: 1 flow(s) valid, 0 test case(s) passed, every prompt file in {sounds}\n"


def test_validate_sounds_dir_checks_the_shipped_flows_in_both_languages(tmp_path):
    """An empty sounds directory: every prompt of every shipped flow is missing in en and in zh."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    result = run("flows", "--flows-dir", str(SHIPPED), "validate", "--no-tests", "--sounds-dir", str(sounds))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len([line for line in lines if ": no en sound file" in line]) == len(
        [line for line in lines if ": no zh sound file" in line]) == 32
    assert any(line.startswith(f"{SHIPPED / 'hotline.yaml'}:17:13: no zh sound file for prompt 'custom/cc-welcome'")
               for line in lines)
