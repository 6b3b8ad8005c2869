"""edge.progress outside a Prefect run (the bar only; the artifacts: tests/test_flows.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from edge.progress import progress


def test_workers_advancing_at_once_count_every_item():
    with progress("points", 1000, "points", "test") as bar:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: [bar.advance() for _ in range(250)], range(4)))
    assert bar.done == 1000 and bar.percent() == 100.0


def test_a_revised_total_and_an_empty_task():
    with progress("chains", 10, "points", "test") as bar:
        bar.advance(3)
        assert bar.percent() == 30.0
        bar.advance(1, total=4)  # the chains ended early: 4 points in all
    assert bar.percent() == 100.0
    with progress("nothing", 0, "points", "test") as empty:
        pass
    assert empty.percent() == 100.0


def test_off_a_terminal_the_bar_is_whole_lines_between_log_records(capsys, monkeypatch):
    """stderr is captured here (not a terminal): the bar writes a start line, at most one
    line per PLAIN_EVERY_S and an end line, each whole, so a log record written between two
    updates stands on its own line."""
    import logging
    import sys

    import edge.progress as module

    monkeypatch.setattr(module, "PLAIN_EVERY_S", 0.0)  # a line at every update
    logger = logging.getLogger("test-progress")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "propagate", False)  # only this handler: other tests' root
    # handlers may hold streams that pytest has closed since
    try:
        with progress("epochs", 4, "epochs", "test") as bar:
            for _ in range(4):
                bar.advance()
                logger.warning("a record")
    finally:
        logger.removeHandler(handler)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "epochs: 0/4 epochs (0 %)"
    assert lines[1].startswith("epochs: 1/4 epochs (25 %), ") and "s left" in lines[1]
    assert lines[2] == "a record"
    assert lines[-2] == "a record" and lines[-1].startswith("epochs: 4/4 epochs (100 %) in ")
    assert all("\r" not in line for line in lines)


def test_on_a_terminal_log_records_are_written_above_the_bar():
    """A real pseudo-terminal: the bar redraws in place, and each record written while it
    runs starts its own line (tqdm clears the bar's line first): the text after a line's
    last carriage return is the record alone, never the bar followed by it."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    script = (
        "import logging, time\n"
        "from edge.progress import progress\n"
        "logging.basicConfig(format='RECORD %(message)s')\n"
        "log = logging.getLogger('x')\n"
        "with progress('steps', 5, 'steps', 'test') as bar:\n"
        "    for i in range(5):\n"
        "        bar.advance(); time.sleep(0.05); log.warning('number %d', i)\n"
    )
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=secondary, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert process.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    records = [line for line in text.split("\n") if "RECORD number" in line]
    assert len(records) == 5
    for line in records:
        visible = line.rstrip("\r").split("\r")[-1]
        assert visible.startswith("RECORD number"), repr(line)
    assert "%|" in text  # the bar was drawn
