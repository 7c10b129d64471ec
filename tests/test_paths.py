"""The path chooser: a quick page's successors go in its result unless the update's hop is
clearly shorter for that batch, as this worker measures it."""

from __future__ import annotations

from batch_orchestra._worker.paths import PathChooser
from tests.helpers import ManualClock


def run_chain(chooser: PathChooser, clock: ManualClock, pages: int, hop: dict[bool, float]) -> int:
    """One chain of quick pages: each hands over its successor by the chosen path, which starts
    after that path's hop. Returns how many pages went by update."""
    by_update = 0
    for n in range(pages):
        chooser.started("wf", f"c{n}")
        by_result = chooser.by_result("wf")
        by_update += not by_result
        chooser.handed("wf", f"c{n + 1}", by_result)
        clock.advance(hop[by_result])
    return by_update


def test_a_stock_server_batch_goes_by_update_once_measured() -> None:
    # The result waits for the transfer queue's next read (50 ms), the update does not (8 ms).
    clock = ManualClock()
    chooser = PathChooser(clock)
    by_update = run_chain(chooser, clock, 320, {True: 0.050, False: 0.008})
    result_hop, update_hop, update_chosen = chooser.learned("wf") or (None, None, False)
    assert update_chosen
    assert result_hop is not None and abs(result_hop - 0.050) < 1e-6
    assert update_hop is not None and abs(update_hop - 0.008) < 1e-6
    # All but the first measurements and one page in 32 (which keeps the result measured).
    assert 320 - 3 - 320 // 32 - 1 <= by_update <= 320 - 320 // 32


def test_equal_hops_keep_the_result_which_costs_one_action_less() -> None:
    # A cap-bound batch (or a tuned server): both paths wait about as long.
    clock = ManualClock()
    chooser = PathChooser(clock)
    by_update = run_chain(chooser, clock, 320, {True: 0.030, False: 0.025})
    learned = chooser.learned("wf")
    assert learned is not None and learned[2] is False
    assert by_update <= 3 + 320 // 32 + 1  # the first samples and the periodic check only


def test_the_choice_follows_a_change_of_server() -> None:
    clock = ManualClock()
    chooser = PathChooser(clock)
    run_chain(chooser, clock, 200, {True: 0.050, False: 0.008})
    assert chooser.learned("wf")[2]  # type: ignore[index]
    # The server got tuned: the result is as quick; the periodic result pages notice it.
    run_chain(chooser, clock, 400, {True: 0.008, False: 0.008})
    assert not chooser.learned("wf")[2]  # type: ignore[index]


def test_successors_started_elsewhere_leave_the_result_in_place() -> None:
    # Another worker starts every successor: nothing is measured here, so after the first pages
    # this worker stops paying for updates (bar the periodic one).
    chooser = PathChooser(ManualClock())
    choices = [chooser.by_result("wf") for _ in range(320)]
    assert choices[16:].count(False) <= 320 // 32
    assert chooser.learned("wf") == (None, None, False)


def test_what_it_keeps_is_bounded() -> None:
    chooser = PathChooser(ManualClock())
    for n in range(20_000):
        chooser.by_result(f"wf{n}")
        chooser.handed(f"wf{n}", "c", True)
    assert len(chooser._hops) <= 1_000
    assert len(chooser._waiting) <= 4_096
