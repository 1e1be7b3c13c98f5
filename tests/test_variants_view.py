"""The Generate screen's variants table (F3) shows what a full read of the store gives, also right after new candidates."""

from __future__ import annotations

from test_variants_summary import A, B, groups_of
from tui_helpers import make_app, settle, static_text

from engine.store import CandidateStore
from engine.variant_cache import SUMMARY, TABLE
from engine.variants import compare_variants, variant_table
from engine.workspace import Workspace


def workspace_with(tmp_path, *batches, reviewer: str | None = None) -> Workspace:
    """A workspace whose store holds these (groups, variant) batches, the store closed."""
    ws = Workspace(tmp_path / "ws")
    s = CandidateStore(ws) if reviewer is None else CandidateStore(ws, reviewer=reviewer)
    for groups, variant in batches:
        s.add_group_results(groups, variant=variant)
    s.close()
    return ws


def full_rows(ws: Workspace) -> list[dict]:
    return variant_table(CandidateStore(ws), summary=False)


async def shown(pilot, view, want: list[dict]) -> None:
    await pilot.press("f3")
    for _ in range(200):
        if view.rows == want:
            break
        await pilot.pause(0.02)
    await settle(pilot)
    assert view.rows == want


async def test_f3_shows_the_full_reads_figures_after_new_groups_and_decisions(tmp_path):
    ws = workspace_with(tmp_path, (groups_of(A, 3), A), (groups_of(B, 2, seed=1), B), reviewer="ann")
    app = make_app(None, tmp_path / "ws", screen="generate", load=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#gen-variants")
        await shown(pilot, view, full_rows(ws))
        assert (ws.candidates_dir / SUMMARY).is_file() and (ws.candidates_dir / TABLE).is_file()
        assert [r["groups_done"] for r in view.rows] == [3, 2]
        writer = CandidateStore(ws, reviewer="ann").load()  # a job and a reviewer meanwhile
        writer.add_group_results(groups_of(B, 1, start=2, seed=1), variant=B)
        writer.decide(writer.rows[0].id, "accept")
        writer.close()
        await shown(pilot, view, full_rows(ws))
        assert [(r["groups_done"], r["accepted"]) for r in view.rows] == [(3, 1), (3, 0)]
        await settle(pilot)
        pairs = compare_variants(CandidateStore(ws), "base", "hot", summary=False)
        assert len(pairs) == 15  # all three groups are now covered by both
        assert view._shown_comparison == ("base", "hot", pairs)  # compared again: hot grew
        assert static_text(view.compare).count("Where") == 2 * len(pairs)


async def test_a_failed_read_is_tried_again_by_the_next_f3(tmp_path, monkeypatch):
    import engine.variants

    ws = workspace_with(tmp_path, (groups_of(A, 2), A))
    real = engine.variants.variant_table

    def unreadable(store, **kw):  # the disk gives an I/O error on this read
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(engine.variants, "variant_table", unreadable)
    app = make_app(None, tmp_path / "ws", screen="generate", load=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#gen-variants")
        await pilot.press("f3")
        await settle(pilot)
        assert view.rows == [] and view._reading is None  # the error was shown; no read counts as under way
        monkeypatch.setattr(engine.variants, "variant_table", real)
        await shown(pilot, view, full_rows(ws))
        assert view.rows[0]["groups_done"] == 2


async def test_at_100_columns_the_table_keeps_its_headers_on_one_line_and_scrolls_sideways(tmp_path):
    ws = workspace_with(tmp_path, (groups_of(A, 2), A))
    app = make_app(None, tmp_path / "ws", screen="generate", load=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#gen-variants")
        await shown(pilot, view, full_rows(ws))
        scroll = view.query_one("#variants-scroll")
        table = view.query_one("#variants-table")
        assert table.size.width > scroll.scrollable_content_region.width  # its natural width, not squeezed
        header = table.render_lines(table.region.reset_offset)[0].text
        assert "accept rate (95%)" in header and "kappa" in header  # every header whole, on one line
        scroll.focus()
        await pilot.press("right", "right", "right")
        assert scroll.scroll_x > 0  # the keyboard reaches the columns off screen
