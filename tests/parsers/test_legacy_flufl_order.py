"""flufl.bounce hands back sets: the report must not depend on PYTHONHASHSEED."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

QMAIL = b"""From: MAILER-DAEMON@mx.example.net
To: sender@example.com
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<eve@example.org>:
Sorry, no mailbox here by that name.

<carl@example.org>:
Sorry, no mailbox here by that name.

<dora@example.org>:
Sorry, no mailbox here by that name.

<bob@example.org>:
Sorry, no mailbox here by that name.

<ann@example.org>:
Sorry, no mailbox here by that name.

--- Below this line is a copy of the message.
"""

SCRIPT = """
import email, json, sys
from mailbox_processor.parsers.legacy import _flufl_addresses
print(json.dumps(_flufl_addresses(email.message_from_bytes(sys.stdin.buffer.read()))))
"""


def test_flufl_addresses_in_notice_order_whatever_the_hash_seed() -> None:
    orders = set()
    for seed in ("1", "2", "3", "4"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", SCRIPT], input=QMAIL, env=env,
                             capture_output=True, check=True).stdout
        orders.add(tuple(json.loads(out)))
    assert orders == {("eve@example.org", "carl@example.org", "dora@example.org",
                       "bob@example.org", "ann@example.org")}
