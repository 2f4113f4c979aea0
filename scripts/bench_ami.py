"""AMI decoding throughput on the recorded Asterisk 22 streams (prints figures; not a test).

    .venv/bin/python scripts/bench_ami.py [--seconds 3] [--read 4096]

Feeds every raw AMI capture in tests/fixtures/asterisk-22 through one
AMIDecoder per connection in reads of ``--read`` bytes, for about
``--seconds``, and prints messages/s and MB/s on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.asterisk.ami_codec import AMIDecoder  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "asterisk-22"
RAW = ["ami_full_call.txt", "ami_agi_edge_call.txt", "ami_hangup_mid_agi.txt", "ami_hangup_idle_agi.txt",
       "ami_actions.event_stream_during.txt", "more/ami_utf8_callerid.txt", "more/ami_acd_a_answer.txt",
       "more/ami_atxfer.txt", "more/ami_chanspy.txt"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--read", type=int, default=4096, help="bytes per socket read")
    args = ap.parse_args()
    streams = [(FIXTURES / name).read_bytes() for name in RAW]
    messages = volume = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for data in streams:
            decoder = AMIDecoder()
            for i in range(0, len(data), args.read):
                messages += len(decoder.feed(data[i:i + args.read]))
            volume += len(data)
    elapsed = time.perf_counter() - start
    print(f"AMI decode: {messages / elapsed:,.0f} messages/s, {volume / elapsed / 1e6:.1f} MB/s "
          f"({messages:,} messages in {elapsed:.1f} s, {args.read}-byte reads, one core)")


if __name__ == "__main__":
    main()
