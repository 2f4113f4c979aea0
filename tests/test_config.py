"""The config file contract: every error is reported at once, naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config import ConfigError, build_config, load_config

ROOT = Path(__file__).resolve().parent.parent
SECRET = {"asterisk": {"ami_secret": "s"}}


def problems(doc, environ=None):
    with pytest.raises(ConfigError) as info:
        build_config(doc, source="cc.toml", environ=environ or {})
    return [str(p) for p in info.value.problems]


def write(tmp_path, text, name="cc.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid():
    """The shipped callcenter.example.toml loads without errors."""
    cfg = load_config(ROOT / "callcenter.example.toml", environ={})
    assert cfg.asterisk.ami_port == 5038
    assert cfg.log.format == "text"


def test_defaults_apply_to_missing_keys():
    """An almost empty config gets the documented defaults."""
    cfg = build_config(SECRET, environ={})
    assert (cfg.asterisk.ami_host, cfg.asterisk.agi_port, cfg.desktop.port) == ("127.0.0.1", 4573, 8080)
    assert cfg.crm.url == "sqlite:///callcenter.db"
    assert not cfg.redis.enabled


def test_unknown_section_names_the_allowed_ones():
    """An unknown section is an error listing the known sections."""
    assert problems({**SECRET, "asterix": {}}) == [
        "cc.toml: asterix: unknown section; expected one of: acd, asterisk, crm, desktop, ivr, log, redis"]


def test_unknown_key_names_the_allowed_ones():
    """A misspelt key is an error listing the section's keys."""
    assert problems({"asterisk": {"ami_secret": "s", "ami_pass": "x"}}) == [
        "cc.toml: asterisk.ami_pass: unknown key; expected one of: agi_allowed_peers, agi_bind, agi_port, ami_host, "
        "ami_port, ami_secret, ami_tls, ami_user"]


@pytest.mark.parametrize("section,key,value,expected", [
    ("asterisk", "ami_port", "5038", "expected an integer, got string '5038'"),
    ("asterisk", "ami_tls", "yes", "expected a boolean (true or false), got string 'yes'"),
    ("asterisk", "ami_host", 12, "expected a string, got integer 12"),
    ("asterisk", "agi_port", 1.5, "expected an integer, got number 1.5"),
    ("desktop", "allowed_origins", "https://a.example", "expected an array, got string 'https://a.example'"),
    ("redis", "url", True, "expected a string, got boolean True"),
    ("crm", "url", [], "expected a string, got array"),
])
def test_wrong_type_names_key_and_expected_type(section, key, value, expected):
    """A value of the wrong type names the key and the expected type."""
    doc = {"asterisk": {"ami_secret": "s"}}
    doc.setdefault(section, {})[key] = value
    assert problems(doc) == [f"cc.toml: {section}.{key}: {expected}"]


def test_section_that_is_not_a_table():
    """A section given as a plain value is an error."""
    assert problems({**SECRET, "log": "debug"}) == ["cc.toml: log: expected a table, got string 'debug'"]


def test_port_out_of_range():
    """Ports must be 1..65535."""
    assert problems({"asterisk": {"ami_secret": "s", "ami_port": 0}}) == [
        "cc.toml: asterisk.ami_port: expected an integer from 1 to 65535, got 0"]


def test_enum_values_are_listed():
    """log.level and log.format list their allowed values."""
    assert problems({**SECRET, "log": {"level": "loud", "format": "xml"}}) == [
        "cc.toml: log.format: expected one of text, json, got string 'xml'",
        "cc.toml: log.level: expected one of debug, info, warning, error, critical, got string 'loud'"]


def test_empty_string_where_a_value_is_needed():
    """Empty host, user, url or path is refused."""
    assert problems({**SECRET, "crm": {"url": ""}}) == ["cc.toml: crm.url: must not be empty"]


def test_array_item_of_wrong_type():
    """Each allowed origin must be a string; the index is named."""
    assert problems({**SECRET, "desktop": {"allowed_origins": ["https://a.example", 7]}}) == [
        "cc.toml: desktop.allowed_origins[1]: expected a string, got integer 7"]


def test_origin_must_be_an_origin():
    """An origin with a path or no scheme is refused."""
    assert problems({**SECRET, "desktop": {"allowed_origins": ["desk.example.com", "https://a.example/x"]}}) == [
        "cc.toml: desktop.allowed_origins[0]: expected an origin like https://desk.example.com, got 'desk.example.com'",
        "cc.toml: desktop.allowed_origins[1]: expected an origin like https://desk.example.com, "
        "got 'https://a.example/x'"]


def test_redis_url_scheme():
    """redis.url must be redis://, rediss:// or unix://."""
    assert problems({**SECRET, "redis": {"url": "http://cache:6379"}}) == [
        "cc.toml: redis.url: expected a redis://, rediss:// or unix:// URL, got scheme 'http'"]


def test_crm_url_not_a_url():
    """crm.url must parse as a SQLAlchemy URL."""
    (msg,) = problems({**SECRET, "crm": {"url": "not a url"}})
    assert msg.startswith("cc.toml: crm.url: not a SQLAlchemy URL:")


def test_crm_url_unsupported_database():
    """Only SQLite and PostgreSQL are supported."""
    assert problems({**SECRET, "crm": {"url": "mysql://u@h/db"}}) == [
        "cc.toml: crm.url: unsupported database 'mysql'; expected sqlite or postgresql"]


def test_missing_secret_points_to_the_environment():
    """No AMI secret in file or environment is an error that says how to fix it."""
    assert problems({}) == [
        "cc.toml: asterisk.ami_secret: missing; set it in the file or in CALLCENTER_AMI_SECRET"]


def test_secret_with_line_break_is_refused():
    """A CR or LF in the secret would inject AMI headers."""
    assert problems({"asterisk": {"ami_secret": "a\r\nAction: Originate"}}) == [
        "cc.toml: asterisk.ami_secret: must not contain CR, LF or NUL"]


def test_desktop_and_agi_on_the_same_port():
    """Two of our listeners on the same address is an error."""
    assert problems({**SECRET, "desktop": {"port": 4573}}) == [
        "cc.toml: desktop.port: same address as asterisk.agi_port (4573)"]


def test_all_errors_reported_at_once():
    """Type errors and semantic errors from several sections come in one report."""
    found = problems({"asterisk": {"ami_port": "x"}, "redis": {"url": "ftp://x"}, "bogus": 1,
                      "log": {"level": 3}})
    assert found == [
        "cc.toml: bogus: unknown section; expected one of: acd, asterisk, crm, desktop, ivr, log, redis",
        "cc.toml: asterisk.ami_port: expected an integer, got string 'x'",
        "cc.toml: log.level: expected one of debug, info, warning, error, critical, got integer 3",
        "cc.toml: redis.url: expected a redis://, rediss:// or unix:// URL, got scheme 'ftp'",
        "cc.toml: asterisk.ami_secret: missing; set it in the file or in CALLCENTER_AMI_SECRET",
    ]


def test_environment_overrides_the_file():
    """CALLCENTER_* variables replace secrets and URLs from the file."""
    cfg = build_config({"asterisk": {"ami_secret": "file"}}, environ={
        "CALLCENTER_AMI_SECRET": "env", "CALLCENTER_REDIS_URL": "redis://r:6379/1",
        "CALLCENTER_CRM_URL": "postgresql://u:p@db/cc", "CALLCENTER_AMI_USER": "cti2"})
    assert (cfg.asterisk.ami_secret, cfg.asterisk.ami_user) == ("env", "cti2")
    assert cfg.redis.url == "redis://r:6379/1"
    assert cfg.crm.url == "postgresql://u:p@db/cc"


def test_secret_is_not_in_repr():
    """Printing the config never shows the AMI secret."""
    cfg = build_config({"asterisk": {"ami_secret": "hunter2"}}, environ={})
    assert "hunter2" not in repr(cfg)


def test_toml_syntax_error_has_line_and_column(tmp_path):
    """A TOML syntax error names the file, line and column."""
    path = write(tmp_path, '[asterisk]\nami_port = 5038\nami_host = "x\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (msg,) = [str(p) for p in info.value.problems]
    assert msg.startswith(f"{path}: TOML syntax error:") and "line 3" in msg


def test_file_that_is_not_utf8(tmp_path):
    """A config in another encoding is refused clearly."""
    path = tmp_path / "cc.toml"
    path.write_bytes(b'[log]\nlevel = "d\xe9bug"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert [str(p) for p in info.value.problems] == [f"{path}: not UTF-8 text (line 2)"]


def test_missing_file(tmp_path):
    """A missing file is one clear error."""
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert [str(p) for p in info.value.problems] == [f"{path}: cannot read: No such file or directory"]


def test_relative_paths_follow_the_config_file(tmp_path):
    """SQLite file, journal and flows resolve against the config's directory."""
    path = write(tmp_path, '[asterisk]\nami_secret="s"\n[crm]\nurl="sqlite:///data/cc.db"\njournal="j.log"\n'
                           '[ivr]\nflows_dir="flows"\n')
    cfg = load_config(path, environ={})
    assert cfg.crm.url == f"sqlite:///{tmp_path}/data/cc.db"
    assert cfg.crm.journal == str(tmp_path / "j.log")
    assert cfg.ivr.flows_dir == str(tmp_path / "flows")


def test_default_region_must_be_a_region_code():
    """crm.default_region is a two-letter ISO 3166 code."""
    assert problems({**SECRET, "crm": {"default_region": "China"}}) == [
        "cc.toml: crm.default_region: expected a two-letter ISO 3166 region code such as CN or US, got 'China'"]
    assert build_config({**SECRET, "crm": {"default_region": "US"}}, environ={}).crm.default_region == "US"


def test_without_ivr_the_flows_installed_with_the_package_are_used(tmp_path):
    """A config outside the repository with no [ivr] finds the packaged flows, not <config dir>/ivr_flows."""
    import ivr_flows

    path = tmp_path / "elsewhere" / "cc.toml"
    path.parent.mkdir()
    path.write_text('[asterisk]\nami_secret = "s"\n')
    cfg = load_config(path, environ={})
    packaged = Path(ivr_flows.__file__).resolve().parent / "flows"
    assert cfg.ivr.flows_dir == str(packaged)
    assert cfg.ivr.routes == str(packaged / "routes.yaml")
    assert Path(cfg.ivr.routes).is_file()


def test_routes_default_to_the_configured_flows_dir(tmp_path):
    """Only flows_dir set: routes.yaml is taken from there; both relative to the config file."""
    path = tmp_path / "cc.toml"
    path.write_text('[asterisk]\nami_secret = "s"\n[ivr]\nflows_dir = "myflows"\n')
    cfg = load_config(path, environ={})
    assert (cfg.ivr.flows_dir, cfg.ivr.routes) == (str(tmp_path / "myflows"), str(tmp_path / "myflows" / "routes.yaml"))
    path.write_text('[asterisk]\nami_secret = "s"\n[ivr]\nflows_dir = "myflows"\nroutes = "r/routes.yaml"\n')
    assert load_config(path, environ={}).ivr.routes == str(tmp_path / "r" / "routes.yaml")


def test_agi_allowed_peers_default_to_this_machine():
    """Without asterisk.agi_allowed_peers only 127.0.0.1 and ::1 may open FastAGI sessions."""
    assert build_config(SECRET, environ={}).asterisk.agi_allowed_peers == ("127.0.0.1", "::1")
    cfg = load_config(ROOT / "callcenter.example.toml", environ={})
    assert cfg.asterisk.agi_allowed_peers == ("127.0.0.1", "::1")


def test_agi_allowed_peers_take_addresses_and_networks_of_both_families():
    """IPv4 and IPv6 addresses and CIDR networks are accepted as given."""
    peers = ["192.0.2.7", "10.1.0.0/16", "::1", "2001:db8::/32"]
    cfg = build_config({"asterisk": {"ami_secret": "s", "agi_allowed_peers": peers}}, environ={})
    assert cfg.asterisk.agi_allowed_peers == tuple(peers)


def test_agi_allowed_peers_bad_entries_name_index_and_reason():
    """Each bad entry is reported with its index: not an address, host bits set, bad prefix, zone, type, empty."""
    assert problems({"asterisk": {"ami_secret": "s", "agi_allowed_peers": [
        "asterisk.example.com", "10.0.0.1/8", "10.0.0.0/33", "fe80::1%eth0", "127.0.0.1"]}}) == [
        "cc.toml: asterisk.agi_allowed_peers[0]: expected an IP address or network such as 192.0.2.7, 10.0.0.0/8 "
        "or 2001:db8::/32, got 'asterisk.example.com'",
        "cc.toml: asterisk.agi_allowed_peers[1]: '10.0.0.1/8' has host bits set; the network is 10.0.0.0/8",
        "cc.toml: asterisk.agi_allowed_peers[2]: expected an IP address or network such as 192.0.2.7, 10.0.0.0/8 "
        "or 2001:db8::/32, got '10.0.0.0/33'",
        "cc.toml: asterisk.agi_allowed_peers[3]: a zone index (%...) is not supported; give the address without it, "
        "got 'fe80::1%eth0'",
    ]
    assert problems({"asterisk": {"ami_secret": "s", "agi_allowed_peers": ["127.0.0.1", 7, ""]}}) == [
        "cc.toml: asterisk.agi_allowed_peers[1]: expected a string, got integer 7",
        "cc.toml: asterisk.agi_allowed_peers[2]: must not be empty",
    ]


def test_agi_allowed_peers_must_be_a_non_empty_array():
    """A single string or an empty list is refused with the reason."""
    assert problems({"asterisk": {"ami_secret": "s", "agi_allowed_peers": "10.0.0.0/8"}}) == [
        "cc.toml: asterisk.agi_allowed_peers: expected an array, got string '10.0.0.0/8'"]
    assert problems({"asterisk": {"ami_secret": "s", "agi_allowed_peers": []}}) == [
        "cc.toml: asterisk.agi_allowed_peers: must list at least one address; an empty list refuses every Asterisk"]


def test_agi_allowed_peers_errors_come_from_check_config(tmp_path):
    """The TOML file's bad entry is reported as file: key: reason."""
    path = write(tmp_path, '[asterisk]\nami_secret = "s"\nagi_allowed_peers = ["127.0.0.1", "10.0.0.1/8"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert [str(p) for p in info.value.problems] == [
        f"{path}: asterisk.agi_allowed_peers[1]: '10.0.0.1/8' has host bits set; the network is 10.0.0.0/8"]
