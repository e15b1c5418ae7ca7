"""mlops-install: the core (answers, plan, engine, journal, command line). Imports nothing heavy."""

__version__ = "0.1.0"  # kept equal to pyproject.toml's version by tests/installer/test_cli.py
PROG = "mlops-install"  # the command's name, as help, messages and completion scripts print it
