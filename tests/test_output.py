"""`-o`: checked before any work, written atomically, never replacing a device,
a fifo or a symlink, with the umask's mode; write errors on one line."""
import json
import os
import stat
import subprocess
import sys
import threading

import pytest

from conftest import ROOT

JOBS = str(ROOT / "examples" / "jobs.json")


def run(*args, umask=None):
    def child():
        if umask is not None:
            os.umask(umask)
    return subprocess.run([sys.executable, "-m", "trnsched", "solve", JOBS, "--time-limit", "2", *args],
                          capture_output=True, text=True, cwd=ROOT, preexec_fn=child)


@pytest.mark.parametrize("where, says", [("", "is empty"), ("{tmp}/missing/out.json", "does not exist")])
def test_a_bad_output_path_is_refused_before_any_work(tmp_path, where, says):
    r = run("-o", where.format(tmp=tmp_path), "--json")
    assert r.returncode == 2 and r.stdout == "", "refused before the solve printed anything"
    assert r.stderr.count("\n") == 1 and says in r.stderr and "field 'output'" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own(tmp_path):
    out = tmp_path / "out.json"
    assert run("-o", str(out), umask=0o022).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    out.chmod(0o600)
    assert run("-o", str(out), umask=0o022).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["placements"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"], "no temporary file left beside it"


def test_a_symlink_stays_a_link_and_its_target_is_written(tmp_path):
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    target.write_text("old\n")
    link.symlink_to(target)
    assert run("-o", str(link)).returncode == 0
    assert link.is_symlink() and json.loads(target.read_text())["placements"]


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    r = run("-o", str(fifo))
    reader.join(timeout=60)
    assert r.returncode == 0 and stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(got[0])["placements"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_write_error_names_the_path_on_one_line_and_the_device_survives():
    r = run("-o", "/dev/full")
    assert r.returncode == 1 and r.stderr == "error: /dev/full: cannot write: No space left on device\n"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
