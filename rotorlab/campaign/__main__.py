"""``python -m rotorlab.campaign campaign SPEC -o DIR`` / ``... report DIR``."""

if __name__ == "__main__":
    import sys

    from rotorlab.campaign.cli_commands import main

    sys.exit(main())
