"""Allow ``python -m mailbox_processor``."""

from mailbox_processor.cli import cli

if __name__ == "__main__":  # pragma: no cover
    cli(prog_name="mailbox-processor")
