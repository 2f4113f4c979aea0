"""Embedded defaults for ``callcenter demo``: one box, nothing to install."""

from __future__ import annotations

import shutil
from pathlib import Path

import ivr_flows
from callcenter.config import build_config, Config

#: The lab Asterisk's AMI account (asterisk_conf/manager.conf uses the same).
DEMO_AMI_SECRET = "cti-secret"
FLOWS_DIR = Path(ivr_flows.__file__).resolve().parent / "flows"


def demo_config(data_dir: Path, *, desktop_port: int = 8080, agi_port: int = 4573, ami_port: int = 5038,
                api_port: int = 8081) -> Config:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    flows = data_dir / "flows"
    if not flows.exists():  # the demo's own copy: edit it and watch the daemon hot-reload it
        shutil.copytree(FLOWS_DIR, flows, ignore=shutil.ignore_patterns(".history"))
        from callcenter.demo_lab import ALWAYS_OPEN

        (flows / "routes.yaml").write_text(ALWAYS_OPEN, encoding="utf-8")
    doc = {
        "asterisk": {"ami_secret": DEMO_AMI_SECRET, "agi_port": agi_port, "ami_port": ami_port},
        "crm": {"url": f"sqlite:///{data_dir / 'callcenter.db'}", "journal": str(data_dir / "contacts.journal")},
        "desktop": {"port": desktop_port, "api_enabled": api_port > 0, "api_port": max(api_port, 0)},
        "ivr": {"flows_dir": str(flows), "routes": str(flows / "routes.yaml")},
        "acd": {"control_socket": str(data_dir / "callcenter.sock"), "state_file": str(data_dir / "acd-state.json")},
    }
    return build_config(doc, source="<demo>", base=data_dir, environ={})
