#!/usr/bin/env bash
# The README's test command: install what the tests need, then run every check.
#   - Dovecot (dovecot-imapd) for the IMAP integration tests, via apt-get when missing;
#   - the package with its test extras;
#   - ruff, mypy (strict) and the whole pytest suite (integration tests included).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dovecot >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "installing dovecot-imapd (IMAP integration tests)..." >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dovecot-imapd >/dev/null
    else
        echo "error: dovecot is missing and apt-get is not available; install dovecot-imapd" >&2
        exit 2
    fi
fi

PY=${PYTHON:-python3}
$PY -m pip install -q -e ".[test]"
$PY -m ruff check mailbox_processor tests bench setup.py
$PY -m mypy
$PY -m cogapp --check README.md   # the command reference is generated from --help
$PY -m pytest "$@"
