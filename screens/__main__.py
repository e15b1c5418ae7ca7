"""``python -m screens``: the wizard on its own (the product's command is ``mlops-install``)."""
import argparse

from .app import run_wizard


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m screens", description="mlops-install's wizard")
    ap.add_argument("--answers", help="a (partial) answers file: what it gives is not asked")
    ap.add_argument("--plain", action="store_true", help="plain prompts instead of the full-screen wizard")
    ap.add_argument("--yes", action="store_true", help="assume yes to confirmations")
    ap.add_argument("--log", help="log file")
    a = ap.parse_args(argv)
    return run_wizard(a.answers, plain=a.plain, assume_yes=a.yes, log_path=a.log)


raise SystemExit(main())
