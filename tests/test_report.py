"""The HTML report (trnsched/report): content and escaping without a browser;
then the page opened in headless Chromium (Debian package `chromium`), driven
over its DevTools pipe: it loads, logs nothing at warning or error level,
throws nothing, asks the network for nothing, and a screenshot is written.

Without Chromium the browser tests skip, unless TRNSCHED_REQUIRE_BROWSER=1.
TRNSCHED_WRITE_DOCS_SCREENSHOT=1 also writes docs/report.png."""
from __future__ import annotations

import base64
import copy
import fcntl
import json
import os
import re
import select
import shutil
import signal
import time
from pathlib import Path

import pytest

from conftest import ROOT
from trnsched import load_jobs, solve
from trnsched.inputs.fleet import load_fleet
from trnsched.report import render_html, render_simulation_html
from trnsched.report.html import _busiest_instant, _placement_span, format_gap, job_colours

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1400, 1800)
BROWSER_TIMEOUT_S = 30.0


# ---------------------------------------------------------------- inputs

@pytest.fixture(scope="module")
def fleet():
    return load_fleet(None)


@pytest.fixture(scope="module")
def result(fleet):
    """examples/jobs.json on the default fleet, as `trnsched solve --json` writes it."""
    jobs = load_jobs(ROOT / "examples" / "jobs.json", chip_names=fleet.chip_types)
    return solve(jobs, fleet, time_limit=2.0, deterministic=True).to_dict()


@pytest.fixture(scope="module")
def timed_result(fleet):
    """examples/arrivals.json scheduled over a 72 h horizon (greedy: fast)."""
    jobs = load_jobs(ROOT / "examples" / "arrivals.json", chip_names=fleet.chip_types)
    return solve(jobs, fleet, policy="greedy", horizon_h=72.0).to_dict()


@pytest.fixture(scope="module")
def replay(fleet):
    """A replay of examples/arrivals.json with every run, as `simulate -o` writes it."""
    from trnsched.replay import load_trace, simulate
    trace = load_trace(str(ROOT / "examples" / "arrivals.json"), chip_names=fleet.chip_types)
    sim = simulate(trace.jobs, fleet, policy="greedy")
    runs = [{"job": r.job.id, "arrival_h": r.job.arrival_h, "start_h": r.start_h, "end_h": r.end_h,
             "chip_type": r.candidate.chip_type, "chips": r.candidate.chips,
             "allocations": [{"rack": fleet.racks[k].id, "chips": n} for k, n in sorted(r.racks.items())],
             "energy_kwh": r.candidate.energy_kwh, "cost_usd": r.candidate.cost_usd} for r in sim.runs]
    return {"trace": trace.describe(), "fleet": fleet.name, **sim.figures(), "runs": runs}


def hostile(result: dict) -> dict:
    """The result with a placed job and an unplaced reason that carry markup."""
    out = copy.deepcopy(result)
    out["placements"][0]["job"] = '<script>alert("p")</script>&'
    out["unplaced"].append({"job": "<img src=x onerror=alert(1)>", "kind": "memory",
                            "reason": 'needs <b>250 GB</b> & "more" <script>console.error(1)</script>'})
    return out


# ---------------------------------------------------------------- without a browser

def test_every_job_and_rack_appears_and_nothing_refers_to_the_network(result, fleet):
    page = render_html(result, fleet)
    for p in result["placements"]:
        assert p["job"] in page
    for u in result["unplaced"]:
        assert u["job"] in page
    for r in fleet.racks:
        assert f'data-rack="{r.id}"' in page
    assert not re.search(r"https?:|//[a-z]|<script|\bsrc=|url\(|@import", page, re.I)
    assert format_gap(result["gap"]) in page
    assert result["status"] in page


def test_markup_in_job_ids_and_reasons_is_escaped(result, fleet):
    page = render_html(hostile(result), fleet)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;p&quot;)&lt;/script&gt;&amp;" in page
    assert "needs &lt;b&gt;250 GB&lt;/b&gt; &amp; &quot;more&quot;" in page


def test_a_hybrid_rack_is_marked_with_both_chip_types(result, fleet):
    page = render_html(result, fleet)
    hybrids = [r for r in fleet.racks if r.hybrid]
    assert hybrids, "the default fleet has hybrid racks"
    for r in hybrids:
        types = "+".join(r.chips)
        assert f'data-rack="{r.id}" data-hybrid="{types}"' in page
    assert page.count('class="rack hybrid"') == len(hybrids)
    plain = next(r for r in fleet.racks if not r.hybrid)
    assert f'data-rack="{plain.id}">' in page


def test_the_page_is_the_same_for_the_same_input(result, fleet):
    assert render_html(result, fleet) == render_html(copy.deepcopy(result), fleet)


def test_a_timed_result_has_a_schedule_and_a_plain_one_has_none(result, timed_result, fleet):
    timed = render_html(timed_result, fleet)
    assert "<h2>Schedule</h2>" in timed and "horizon" in timed
    assert "the instant with the most chips placed" in timed
    assert "over capacity" not in timed         # one instant of a feasible schedule fits every rack
    assert "<h2>Schedule</h2>" not in render_html(result, fleet)


def test_the_timed_fleet_map_is_drawn_at_the_busiest_instant(timed_result):
    spans = [_placement_span(p) for p in timed_result["placements"]]

    def placed_at(at: float) -> int:
        return sum(s.chips for s in spans if s.start_h <= at < s.end_h)

    best = max(placed_at(s.start_h) for s in spans)
    at = _busiest_instant(spans)
    assert placed_at(at) == best
    assert at == min(s.start_h for s in spans if placed_at(s.start_h) == best)


def test_a_job_named_like_a_chip_state_is_drawn_as_a_job(result, fleet):
    named = copy.deepcopy(result)
    named["placements"][0]["job"], named["placements"][1]["job"] = "free", "busy"
    page = render_html(named, fleet)
    colours = job_colours(p["job"] for p in named["placements"])
    assert f'<g fill="{colours["free"]}"><title>' in page
    assert f'<g fill="{colours["busy"]}"><title>' in page


def test_a_result_from_another_fleet_is_refused(result, fleet):
    other = copy.deepcopy(result)
    other["placements"][0]["allocations"][0]["rack"] = "no-such-rack"
    with pytest.raises(ValueError, match="no-such-rack"):
        render_html(other, fleet)


def test_a_replay_report_has_its_runs_and_works_from_the_figures_alone(replay, fleet):
    page = render_simulation_html(replay, fleet)
    for r in replay["runs"]:
        assert r["job"] in page
    assert "Utilisation over time" in page and "<h2>Schedule</h2>" in page
    assert "over capacity" not in page
    figures = {k: v for k, v in replay.items() if k != "runs"}
    assert "figures only" in render_simulation_html(figures, fleet)


def test_300_jobs_get_300_colours():
    colours = job_colours(f"job-{i}" for i in range(300))
    assert len(set(colours.values())) == 300


def test_many_jobs_fold_the_legend(fleet, result):
    many = copy.deepcopy(result)
    template = many["placements"][-1]
    many["placements"] = [dict(template, job=f"j{i}", allocations=[]) for i in range(60)]
    page = render_html(many, fleet)
    assert "<details><summary>Jobs by colour (60)</summary>" in page


# ---------------------------------------------------------------- in a browser

def browser() -> str:
    """The Chromium to drive, or skip (fail where TRNSCHED_REQUIRE_BROWSER=1)."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium on PATH (Debian: apt-get install chromium)"
    if os.environ.get("TRNSCHED_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + ", and TRNSCHED_REQUIRE_BROWSER=1")
    pytest.skip(reason)


class DevTools:
    """Chromium headless, driven over --remote-debugging-pipe: the browser reads
    NUL-terminated JSON commands on fd 3 and answers on fd 4.  Every event is
    kept, so console messages, exceptions, log entries and requests can be read
    with their levels (--enable-logging prints every console level alike)."""

    def __init__(self, binary: str, profile: Path, window: tuple[int, int]) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.log = profile / "stderr.log"       # a file, not a pipe: a full pipe would stall the browser
        args = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
                "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND",   # no name ever resolves: no network
                f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}", "about:blank"]
        to_browser, self._to_browser = _pipe()
        self._from_browser, from_browser = _pipe()
        try:
            # posix_spawn, not Popen's preexec_fn (unsafe once threads run): its own
            # session, so stopping the group stops the renderer and GPU processes too.
            self.pid = os.posix_spawn(binary, args, os.environ, setsid=True, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, str(self.log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                (os.POSIX_SPAWN_DUP2, to_browser, 3),
                (os.POSIX_SPAWN_DUP2, from_browser, 4)])
        finally:
            os.close(to_browser)
            os.close(from_browser)
        self.returncode: int | None = None
        self._buffer, self._next_id, self.events = b"", 0, []
        self.session: str | None = None

    def wait(self, timeout: float) -> int:
        """The browser's exit status, once it has exited (TimeoutError if it does not)."""
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                raise TimeoutError("Chromium did not exit in time")
            else:
                time.sleep(0.02)
        return self.returncode

    def close(self) -> None:
        """Stop the browser and its children, whatever state it is in."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.returncode is None:
            self.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)

    def send(self, method: str, params: dict | None = None, *, session: bool = True,
             deadline: float | None = None) -> dict:
        self._next_id += 1
        ask = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            ask["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(ask).encode() + b"\0")
        while True:
            message = self._read(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, deadline: float) -> dict:
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message

    def _read(self, deadline: float | None) -> dict:
        deadline = deadline or time.monotonic() + BROWSER_TIMEOUT_S
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its pipe; its stderr ends: " + self._stderr_tail())
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _stderr_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


def _pipe() -> tuple[int, int]:
    """A pipe whose ends sit at fd 10 or above (close-on-exec), so that moving
    them onto the browser's fds 3 and 4 can never overwrite one with the other."""
    low = os.pipe()
    high = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in low)
    for fd in low:
        os.close(fd)
    return high


def open_page(binary: str, page: Path, profile: Path, window: tuple[int, int] = WINDOW) -> dict:
    """Load a page; answer its DOM, a PNG screenshot, and what it logged and asked for."""
    deadline = time.monotonic() + BROWSER_TIMEOUT_S
    tools = DevTools(binary, profile, window)
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"}, deadline=deadline)["targetId"]
        tools.session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                   session=False, deadline=deadline)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.send(f"{domain}.enable", deadline=deadline)
        tools.send("Emulation.setDeviceMetricsOverride", {"width": window[0], "height": window[1],
                                                         "deviceScaleFactor": 1, "mobile": False}, deadline=deadline)
        tools.send("Page.navigate", {"url": page.as_uri()}, deadline=deadline)
        tools.wait_for("Page.loadEventFired", deadline)
        dom = tools.send("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                              "returnByValue": True}, deadline=deadline)["result"]["value"]
        shot = tools.send("Page.captureScreenshot", {"format": "png"}, deadline=deadline)["data"]
        tools.send("Browser.close", session=False, deadline=deadline)
        returncode = tools.wait(timeout=max(1.0, deadline - time.monotonic()))
        return {"dom": dom, "png": base64.b64decode(shot), "returncode": returncode,
                "complaints": complaints(tools.events), "requests": requests(tools.events)}
    finally:
        tools.close()


def complaints(events: list[dict]) -> list[str]:
    """Console messages at warning or error level, uncaught exceptions, and
    browser log entries (failed loads, security) at warning or error level."""
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            out.append(f"console.{params['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                                  for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            out.append("exception: " + str(details.get("exception", {}).get("description", details.get("text"))))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            out.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
    return out


def requests(events: list[dict]) -> list[str]:
    """Every URL the page asked for beyond itself (the page's own file: URL excepted)."""
    urls = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    return [u for u in urls if not u.startswith("file:")]


def is_png(data: bytes, least: int = 20_000) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= least


def test_the_console_check_catches_errors_warnings_exceptions_and_requests(tmp_path):
    """The detector itself: a page that misbehaves every way is caught every way."""
    binary = browser()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><meta charset="utf-8"><title>bad</title><p>bad</p>'
                   '<img src="missing.png" alt=""><img src="https://example.invalid/x.png" alt="">'
                   '<script>console.error("boom-error"); console.warn("boom-warn"); console.log("quiet-log");'
                   'notDefined();</script>')
    seen = open_page(binary, bad, tmp_path / "profile", (400, 300))
    said = "\n".join(seen["complaints"])
    assert "console.error: boom-error" in said
    assert "console.warning: boom-warn" in said
    assert "exception: ReferenceError: notDefined" in said
    assert "log error: Failed to load resource: net::ERR_FILE_NOT_FOUND" in said
    assert "quiet-log" not in said
    assert seen["requests"] == ["https://example.invalid/x.png"]
    assert len(seen["complaints"]) == 5, said


@pytest.mark.parametrize("which", ["solve", "timed", "replay"])
def test_the_report_renders_in_chromium_without_complaint(which, result, timed_result, replay, fleet, tmp_path):
    binary = browser()
    data = {"solve": result, "timed": timed_result, "replay": replay}[which]
    page = tmp_path / "report.html"
    page.write_text(render_simulation_html(data, fleet) if which == "replay" else render_html(data, fleet))
    seen = open_page(binary, page, tmp_path / "profile")
    assert seen["returncode"] == 0
    assert seen["complaints"] == []
    assert seen["requests"] == []
    assert is_png(seen["png"])
    (tmp_path / "report.png").write_bytes(seen["png"])
    jobs = data["runs"] if which == "replay" else data["placements"] + data["unplaced"]
    for j in jobs:
        assert j["job"] in seen["dom"]
    if which != "replay":
        assert format_gap(data["gap"]) in seen["dom"]
    if which == "solve" and os.environ.get("TRNSCHED_WRITE_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs" / "report.png").write_bytes(seen["png"])


def test_hostile_ids_stay_text_in_the_browser(result, fleet, tmp_path):
    binary = browser()
    page = tmp_path / "hostile.html"
    page.write_text(render_html(hostile(result), fleet))
    seen = open_page(binary, page, tmp_path / "profile", (800, 600))
    assert seen["complaints"] == [] and seen["requests"] == []
    assert "<script>alert" not in seen["dom"]
    assert "&lt;script&gt;alert(\"p\")&lt;/script&gt;&amp;" in seen["dom"]


def test_report_command_and_html_option_write_the_same_page(tmp_path):
    import subprocess
    import sys
    result, page = tmp_path / "result.json", tmp_path / "solve.html"
    run = [sys.executable, "-m", "trnsched"]
    subprocess.run([*run, "solve", str(ROOT / "examples" / "jobs.json"), "--policy", "greedy", "-o", str(result),
                    "--html", str(page)], check=True, capture_output=True)
    again = subprocess.run([*run, "report", str(result)], check=True, capture_output=True, text=True)
    assert again.stdout == page.read_text() and "<svg" in again.stdout
    # Another fleet's result: one line, exit 2, nothing written.
    other = tmp_path / "fleet.json"
    other.write_text(json.dumps({"racks": [{"id": "r", "chips": {"h100": 8}}]}))
    bad = subprocess.run([*run, "report", str(result), "--fleet", str(other), "-o", str(tmp_path / "x.html")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.html").exists()


def test_a_fleet_too_big_to_draw_chip_by_chip_gets_its_figures_instead():
    from trnsched.inputs.fleet import parse_fleet
    from trnsched.report.html import MAP_CHIPS
    racks = [{"id": f"r{i}", "pod": f"p{i % 3}", "chips": {"trn3": 144}} for i in range(MAP_CHIPS // 144 + 1)]
    fleet = parse_fleet({"racks": racks})
    result = {"status": "FEASIBLE", "policy": "greedy", "objective": "energy", "placements": [
        {"job": "j", "chip_type": "trn3", "chips": 144, "allocations": [{"rack": "r0", "chips": 144}],
         "start_h": 0.0, "end_h": 1.0, "layout": {}, "metrics": {"energy_kwh": 1.0, "cost_usd": 1.0,
                                                                 "power_kw": 1.0, "duration_h": 1.0}}],
              "unplaced": [], "totals": {}, "racks": [], "notes": [], "stats": {}}
    page = render_html(result, fleet)
    assert "more than the 50,000 the chip map draws" in page and len(page) < 2_000_000
