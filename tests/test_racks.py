"""Rack use, recorded once: Room.fill and allocate (Fit or Shortfall), the
RackLedger's commit, release, holders and the fleet it leaves, and the Timeline."""
import pytest

from trnsched.candidates import generate
from trnsched.inputs.fleet import parse_fleet
from trnsched.inputs.jobs import parse_jobs
from trnsched.objective import IntegerScale
from trnsched.racks import Fit, RackLedger, Room, Shortfall, Timeline, headroom_watts, watts_per_chip

TRAIN = {"kind": "train", "model": "llama2-7b", "tokens": 1e8, "seq_len": 2048, "batch_seqs": 64}


def setup(jobs_data, fleet_data):
    fleet = parse_fleet(fleet_data)
    jobs = parse_jobs(jobs_data, chip_names=fleet.chip_types)
    return jobs, fleet, generate(jobs, fleet).candidates


def only(cands, job, chips=None):
    (c,) = [c for c in cands if c.job == job and (chips is None or c.chips == chips)]
    return c


def test_fit_commit_shortfall_holders_and_release():
    fleet_data = {"racks": [{"id": "a", "chips": {"h100": 8}}, {"id": "b", "chips": {"h100": 8}, "used": {"h100": 4}}]}
    jobs, fleet, cands = setup([{"id": "six", "chips": 6, **TRAIN}, {"id": "eight", "chips": 8, **TRAIN},
                                {"id": "two", "chips": 2, **TRAIN}], fleet_data)
    six, eight, two = only(cands, 0), only(cands, 1), only(cands, 2)
    ledger = RackLedger(fleet)
    fit = ledger.allocate(six)
    assert isinstance(fit, Fit) and fit.racks == {0: 6}          # the first rack (fleet order) with room
    ledger.commit(six, fit.racks)
    assert ledger.placed(0, "h100") == 6 and ledger.drawn[0] == 6 * watts_per_chip(six, fleet)
    short = ledger.allocate(eight)
    assert isinstance(short, Shortfall)
    assert (short.short, short.reason, short.holders) == (6, "chips", [0])   # 8 wanted, 2 left on rack a
    assert ledger.allocate(two).racks == {0: 2}
    ledger.release(0)
    assert isinstance(ledger.allocate(eight), Fit)
    assert ledger.room.free == Room.of(fleet).free and ledger.drawn == [0, 0] and not ledger.held


def test_a_shortfall_refuses_to_speak_for_a_ledger_that_changed():
    jobs, fleet, cands = setup([{"id": "six", "chips": 6, **TRAIN}, {"id": "eight", "chips": 8, **TRAIN}],
                               {"racks": [{"id": "a", "chips": {"h100": 8}}]})
    ledger = RackLedger(fleet)
    ledger.commit(only(cands, 0), {0: 6})
    short = ledger.allocate(only(cands, 1))
    ledger.release(0)
    assert short.short == 6                  # the count is kept as it was
    with pytest.raises(RuntimeError, match="allocate again"):
        short.holders
    ledger.commit(only(cands, 0), {0: 6})
    with pytest.raises(ValueError, match="already holds"):
        ledger.commit(only(cands, 0), {0: 2})


def test_power_is_what_blocks_when_the_chips_are_there():
    probe = parse_fleet({"racks": [{"id": "p", "chips": {"h100": 8}}]})
    idle_kw = probe.baseline_kw(probe.racks[0])
    jobs, fleet, cands = setup([{"id": "four", "chips": 4, **TRAIN}],
                               {"racks": [{"id": "p", "chips": {"h100": 8}, "power_cap_kw": idle_kw + 0.1}]})
    short = RackLedger(fleet).allocate(only(cands, 0))
    assert isinstance(short, Shortfall) and short.reason == "power" and short.short <= 0


def test_ledger_leaves_a_fleet_with_the_same_room():
    jobs, fleet, cands = setup([{"id": "six", "chips": 6, **TRAIN}],
                               {"racks": [{"id": "a", "chips": {"h100": 8}, "power_cap_kw": 9.0}]})
    ledger = RackLedger(fleet)
    c = only(cands, 0)
    ledger.commit(c, ledger.allocate(c).racks)
    after = ledger.as_fleet()
    assert after.racks[0].free("h100") == 2
    assert headroom_watts(after)[0] == pytest.approx(ledger.room.watts[0], abs=1)
    assert RackLedger(fleet).as_fleet() is fleet            # nothing held: the fleet itself


def test_fill_takes_the_roomiest_racks_first_within_the_rack_limit():
    fleet = parse_fleet({"racks": [{"id": f"r{n}", "chips": {"h100": 8}, "used": {"h100": 8 - n}} for n in (2, 8, 5)]})
    room = Room.of(fleet)
    assert room.fill([0, 1, 2], "h100", 10, 2, 0) == ({1: 8, 2: 2}, 0)
    assert room.fill([0, 1, 2], "h100", 10, 1, 0) == ({1: 8}, 2)
    assert room.fill([0, 2], "h100", 4, 1, 0, whole=True) == ({2: 4}, 0)
    assert room.fill([0, 2], "h100", 6, 1, 0, whole=True) == ({}, 6)


def test_multi_rack_candidates_fill_one_pod():
    fleet_data = {"racks": [{"id": f"a{i}", "pod": "A", "chips": {"h100": 8}} for i in range(2)]
                  + [{"id": f"b{i}", "pod": "B", "chips": {"h100": 8}} for i in range(3)]}
    jobs, fleet, cands = setup([{"id": "wide", "chips": 24, **TRAIN}], fleet_data)
    c = only(cands, 0)
    assert c.multi and c.pods == ("B",)
    assert RackLedger(fleet).allocate(c).racks == {2: 8, 3: 8, 4: 8}


def test_timeline_room_is_the_free_room_less_the_peak_in_the_window():
    jobs, fleet, cands = setup([{"id": "six", "chips": 6, **TRAIN}, {"id": "four", "chips": 4, **TRAIN}],
                               {"racks": [{"id": "a", "chips": {"h100": 8}}]})
    six, four = only(cands, 0), only(cands, 1)
    line = Timeline(fleet)
    line.commit(six, {0: 6}, 0.0)
    assert line.room(0.0, 0.5 * six.duration_h).free[0]["h100"] == 2
    assert line.room(six.duration_h, six.duration_h + 1).free[0]["h100"] == 8
    start, racks = line.earliest(four, 0.0, 100.0)
    assert start == pytest.approx(six.duration_h) and racks == {0: 4}
    assert line.earliest(four, 0.0, 0.5 * six.duration_h) is None      # no room before the span ends
    assert line.base.free[0]["h100"] == 8                                # windows never change the base
    assert line.peak() == [{"h100": 6}]


def test_identical_racks_group_whatever_their_zero_busy_entries():
    fleet = parse_fleet({"racks": [{"id": "a", "chips": {"h100": 8}, "used": {"h100": 0}},
                                   {"id": "b", "chips": {"h100": 8}}]})
    assert fleet.groups() == [[0, 1]]


def test_integer_scale():
    scale = IntegerScale.fitting(2.0)
    assert scale(2.0) == 1_000_000 and scale(1e-12) == 1 and scale(0.0) == 0
    assert abs(scale(1.2345678) * scale.step - 1.2345678) <= scale.step / 2
    assert IntegerScale.fitting(0.0).step == 1.0


def test_indexed_fit_places_exactly_where_the_scan_does():
    # A ledger's room finds racks through its FreeIndex and per-pod sums; a window
    # scans.  Over a filling, part-released fleet they must agree on every
    # candidate, and the index must track every take and give-back.
    import random
    from trnsched.inputs.generate import generate_workload
    jobs_data, fleet_data = generate_workload(300, 60, seed=5)
    jobs, fleet, cands = setup(jobs_data, fleet_data)
    rng = random.Random(5)
    ledger = RackLedger(fleet)
    order = list(cands)
    rng.shuffle(order)
    checked = 0
    for step, c in enumerate(order):
        scan = Room(fleet, [dict(f) for f in ledger.room.free], list(ledger.room.watts))
        assert not scan.indexed and ledger.room.indexed
        found = ledger.fit(c)
        assert found == scan.fit(c)
        checked += 1
        if found is not None and c.job not in ledger.held:
            ledger.commit(c, found)
        if step % 7 == 0 and ledger.held:
            ledger.release(rng.choice(sorted(ledger.held)))
    for t in fleet.types_present():
        index = ledger.room.index(t)       # built during the fills, kept up to date since
        assert [ledger.room.free[r][t] for r in index.racks] == index.tree[index.size:index.size + len(index.racks)]
    assert checked == len(order) and len(ledger.held) > 10


def test_free_index_finds_the_first_rack_with_room_and_nothing_past_the_last():
    from trnsched.racks import FreeIndex
    index = FreeIndex([10, 11, 12], [3, 0, 5])
    assert index.first(1) == 0 and index.first(4) == 2 and index.first(1, 1) == 2
    assert index.first(6) is None and index.first(1, 3) is None and index.first(0, 3) is None
    index.set(12, 1)
    assert index.first(2) == 0 and index.first(2, 1) is None
