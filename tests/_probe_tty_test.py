import sys
from tests.test_cli import *  # noqa
def test_x(cli, corpus, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = cli("ingest", str(corpus[0]))
    print(repr(err[:600]), file=sys.__stdout__)
