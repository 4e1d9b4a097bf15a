"""``python -m rotorlab.training train MATERIAL ...`` (the same as ``rotorlab train``)."""

import argparse
import sys

from rotorlab.training.cli_commands import add_parsers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rotorlab.training")
    sub = p.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
