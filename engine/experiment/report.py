"""An experiment's table and report (docs/ARCHITECTURE.md, "Experiments").

`experiment_table(ws, plan)` is the live table (one row per job: arm, seed, run, state, best
val figures), read from the runs themselves, for the Train screen and `--status`.
`write_report(ws, plan)` writes WS/experiments/<id>/:

    report.md     per arm: mean ± sd over seeds and each seed's figures; each finetune's gain
                  over the baseline with a paired 95% t interval across seeds; the provenance of
                  every pretraining file (variant, backend, model, prompt version, accept rate,
                  query count, sha256)
    results.csv   one row per job
    val_r1.png, train_loss.png   curves per arm, a band across seeds (only with matplotlib)

A run's figures are those of its best val evaluation by R1@0.3, the checkpoint training keeps.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from pathlib import Path

from engine.experiment.plan import Plan, Source, experiment_dir
from engine.experiment.runner import load_state
from engine.experiment.stats import mean_sd, paired_interval
from engine.runs import Run, best_eval, is_eval_row
from engine.workspace import Workspace, atomic_write_bytes

REPORT_KEYS = ("R1@0.3", "R1@0.5", "R5@0.3", "R5@0.5", "mIoU")
CURVE_KEY = "R1@0.3"


def _run(ws: Workspace, state: dict, key: str) -> Run | None:
    rid = (state["jobs"].get(key) or {}).get("run_id")
    if not isinstance(rid, str) or not rid or "/" in rid:
        return None
    run = Run(ws.runs_dir / rid)
    return run if run.exists() else None


def experiment_table(ws: Workspace, plan: Plan) -> list[dict]:
    """One dict per job: key, arm, stage, seed, run_id, state, step, total_steps, best (figures)."""
    state = load_state(experiment_dir(ws, plan.id))
    failed: dict = state["failed"] if isinstance(state.get("failed"), dict) else {}
    rows = []
    for job in plan.jobs():
        run = _run(ws, state, job.key)
        summary = run.summary() if run is not None else {}
        best = summary.get("best") if isinstance(summary.get("best"), dict) else None
        st = summary.get("state", "pending")
        rows.append(
            {
                "key": job.key,
                "arm": job.arm,
                "stage": job.stage,
                "seed": job.seed,
                "run_id": run.id if run is not None else None,
                "state": "failed" if job.key in failed else st,
                "error": failed.get(job.key) or summary.get("error"),
                "step": summary.get("step"),
                "total_steps": summary.get("total_steps"),
                "elapsed_s": summary.get("elapsed_s"),
                "best": {k: best[k] for k in (*REPORT_KEYS, "step", "queries", "queries_total") if k in best}
                if best
                else None,
            }
        )
    return rows


def add_query_counts(ws: Workspace, rows: list[dict]) -> None:
    """Each done row's best gets "queries" / "queries_total" from its best val evaluation row."""
    for r in rows:
        if r["state"] != "done" or not r["best"] or not r["run_id"]:
            continue
        row = best_eval(Run(ws.runs_dir / r["run_id"]).metrics())
        if row:
            r["best"].update({k: row[k] for k in ("queries", "queries_total") if k in row})


def arm_summary(rows: list[dict], plan: Plan) -> dict[str, dict]:
    """arm -> {seed: figures} of the done jobs, and mean/sd per figure over those seeds."""
    out: dict[str, dict] = {}
    for arm in plan.arms():
        per_seed = {r["seed"]: r["best"] for r in rows if r["arm"] == arm and r["state"] == "done" and r["best"]}
        stats = {k: mean_sd([f[k] for f in per_seed.values() if k in f]) for k in REPORT_KEYS}
        out[arm] = {"per_seed": per_seed, "stats": stats}
    return out


def gains(arms: dict[str, dict], plan: Plan) -> dict[str, dict]:
    """finetune arm -> figure -> paired interval of finetune - baseline over the seeds both finished."""
    base = arms["baseline"]["per_seed"]
    out = {}
    for s in plan.sources:
        fine = arms[f"finetune:{s.label}"]["per_seed"]
        seeds = [seed for seed in plan.seeds if seed in base and seed in fine]
        out[f"finetune:{s.label}"] = {
            "seeds": seeds,
            **{k: paired_interval([base[x][k] for x in seeds], [fine[x][k] for x in seeds]) for k in REPORT_KEYS},
        }
    return out


def source_provenance(source: Source) -> dict:
    """What the report says about a pretraining file: from its export manifest, when it has one.

    Backend, model and prompt version come from the manifest's variant records (one per variant
    in the file); a manifest without them (an older export) is read with its query list."""
    from engine.training.provenance import manifest_head

    path = Path(source.file + ".manifest.json")
    manifest = manifest_head(path) or {}
    records = [v for v in manifest.get("variants") or [] if isinstance(v, dict)]
    if not records:
        full = manifest_head(path, skip=()) or {}
        records = [q for q in full.get("queries") or [] if isinstance(q, dict)]

    def most(key: str) -> str:
        counts: Counter[str] = Counter()
        for r in records:
            if r.get(key) is not None:
                counts[str(r[key])] += int(r.get("exported") or 1)
        return ", ".join(f"{k} ({n})" if len(counts) > 1 else k for k, n in counts.most_common(3)) or "-"

    variant = source.variant or manifest.get("variant") or most("name" if manifest.get("variants") else "variant")
    figures = variant_figures(manifest.get("workspace"), variant)
    if figures is not None:
        ok, reviewed = figures
    else:  # no variant to look up: the workspace's decisions as the manifest counted them
        counts: dict = manifest["counts_by_status"] if isinstance(manifest.get("counts_by_status"), dict) else {}
        ok = int(counts.get("accepted") or 0) + int(counts.get("edited") or 0)
        reviewed = ok + int(counts.get("rejected") or 0)
    return {
        "label": source.label,
        "file": source.file,
        "sha256": source.sha256,
        "variant": variant if variant != "-" else None,
        "backend": most("backend"),
        "model": most("model"),
        "prompt_version": most("prompt_version"),
        "accept_rate": round(ok / reviewed, 4) if reviewed else None,
        "reviewed": reviewed,
        "queries": manifest.get("exported"),
        "manifest": bool(manifest),
    }


def variant_figures(workspace: object, variant: object) -> tuple[int, int] | None:
    """(accepted + edited, reviewed) of one variant in the workspace the file was exported from."""
    if not isinstance(workspace, str) or not isinstance(variant, str) or "," in variant:
        return None
    try:
        from engine.store import CandidateStore
        from engine.variants import variant_table

        store = CandidateStore(Workspace.existing(workspace))
        try:
            row = next((r for r in variant_table(store) if r["name"] == variant), None)
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - a moved or older workspace: the report falls back to the manifest
        return None
    if row is None:
        return None
    return int(row["accepted"]) + int(row["edited"]), int(row["reviewed"])


def _cell(x: object) -> str:
    """Text from outside (model names, paths, errors) as one visible markdown table cell."""
    from engine.textsafe import one_line

    return one_line("-" if x is None else x, 200).replace("|", "\\|")


def _fmt(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.2f}" if sign else f"{x:.2f}"


def _pm(stat: tuple[float | None, float | None]) -> str:
    mean, sd = stat
    return "-" if mean is None else f"{mean:.2f} ± {sd:.2f}" if sd is not None else f"{mean:.2f}"


def report_markdown(plan: Plan, rows: list[dict], arms: dict, gain: dict, provenance: list[dict]) -> str:
    done = sum(1 for r in rows if r["state"] == "done")
    counts = {(b.get("queries"), b.get("queries_total")) for r in rows if (b := r["best"]) and b.get("queries")}
    lines = [
        f"# Experiment {plan.id}",
        "",
        f"Data {_cell(plan.data_root)}; seeds {', '.join(map(str, plan.seeds))}; {done} of {len(rows)} runs done; "
        f"written {time.strftime('%Y-%m-%d %H:%M:%S')}.",
        "Figures: percent on val"
        + "".join(f" over {n} of {total or '?'} queries" for n, total in sorted(counts, key=str))
        + ", at each run's best val evaluation by R1@0.3 (the checkpoint training keeps as best.pt).",
        "Settings: "
        + (
            _cell(", ".join(f"{k}={v}" for k, v in sorted(plan.settings.items())))
            if plan.settings
            else "the stages' defaults"
        ),
        "",
        "## Arms (mean ± sd over seeds)",
        "",
        "| arm | seeds | " + " | ".join(REPORT_KEYS) + " |",
        "|---|---|" + "---|" * len(REPORT_KEYS),
    ]
    for arm, a in arms.items():
        lines.append(f"| {arm} | {len(a['per_seed'])} | " + " | ".join(_pm(a["stats"][k]) for k in REPORT_KEYS) + " |")
    lines += ["", "## Gain over the baseline (paired by seed, 95% t interval)", ""]
    lines += ["| arm | figure | mean gain | 95% interval | per seed |", "|---|---|---|---|---|"]
    for arm, g in gain.items():
        for k in REPORT_KEYS:
            p = g[k]
            interval = f"[{_fmt(p['lo'], True)}, {_fmt(p['hi'], True)}]" if p["lo"] is not None else "- (one seed)"
            per = ", ".join(f"s{s} {_fmt(x, True)}" for s, x in zip(g["seeds"], p["gains"])) or "-"
            lines.append(f"| {arm} | {k} | {_fmt(p['mean'], True)} | {interval} | {per} |")
    lines += ["", "## Per seed", "", "| arm | seed | run | state | " + " | ".join(REPORT_KEYS) + " |"]
    lines.append("|---|---|---|---|" + "---|" * len(REPORT_KEYS))
    for r in rows:
        figs = r["best"] or {}
        lines.append(
            f"| {r['arm']} | {r['seed']} | {r['run_id'] or '-'} | {r['state']} | "
            + " | ".join(_fmt(figs.get(k)) for k in REPORT_KEYS)
            + " |"
        )
    lines += ["", "## Pretraining files", ""]
    lines += ["| label | variant | backend | model | prompt | accept rate | queries | sha256 |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    for p in provenance:
        rate = f"{100 * p['accept_rate']:.1f}% of {p['reviewed']}" if p["accept_rate"] is not None else "none reviewed"
        lines.append(
            f"| {p['label']} | {_cell(p['variant'])} | {_cell(p['backend'])} | {_cell(p['model'])} | "
            f"{_cell(p['prompt_version'])} | {rate} | {_cell(p['queries'])} | `{p['sha256']}` |"
        )
    lines += ["", "Files: " + "; ".join(f"{p['label']}: {_cell(p['file'])}" for p in provenance)]
    lines += ["Every run's config.json records its files' sha256, versions, device and resolved config."]
    return "\n".join(lines) + "\n"


def results_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["arm", "seed", "stage", "run_id", "state", "best_step", *REPORT_KEYS, "elapsed_s"])
    for r in rows:
        figs = r["best"] or {}
        w.writerow(
            [r["arm"], r["seed"], r["stage"], r["run_id"] or "", r["state"], figs.get("step", "")]
            + [figs.get(k, "") for k in REPORT_KEYS]
            + [round(r["elapsed_s"], 1) if r["elapsed_s"] is not None else ""]
        )
    return buf.getvalue()


def write_report(ws: Workspace, plan: Plan) -> dict:
    """report.md, results.csv and (with matplotlib) the plots; returns paths and the figures."""
    folder = experiment_dir(ws, plan.id)
    rows = experiment_table(ws, plan)
    add_query_counts(ws, rows)
    arms = arm_summary(rows, plan)
    gain = gains(arms, plan)
    provenance = [source_provenance(s) for s in plan.sources]
    atomic_write_bytes(folder / "report.md", report_markdown(plan, rows, arms, gain, provenance).encode())
    atomic_write_bytes(folder / "results.csv", results_csv(rows).encode())
    from engine.experiment.plots import write_plots

    plots = write_plots(ws, plan, folder)
    return {
        "id": plan.id,
        "dir": str(folder),
        "report": str(folder / "report.md"),
        "results": str(folder / "results.csv"),
        "plots": [str(p) for p in plots],
        "arms": {a: {k: v["stats"][k][0] for k in REPORT_KEYS} for a, v in arms.items()},
        "gain": {
            a: {k: {x: g[k][x] for x in ("mean", "lo", "hi", "gains")} for k in REPORT_KEYS} for a, g in gain.items()
        },
        "runs_done": sum(1 for r in rows if r["state"] == "done"),
        "runs": len(rows),
    }


def curves(ws: Workspace, plan: Plan, arm: str) -> dict[int, tuple[list[tuple[int, float]], list[tuple[int, float]]]]:
    """seed -> (val R1@0.3 by step, training loss by step) of the arm's runs."""
    state = load_state(experiment_dir(ws, plan.id))
    out = {}
    for job in plan.jobs():
        if job.arm != arm:
            continue
        run = _run(ws, state, job.key)
        if run is None:
            continue
        rows = run.metrics()
        val = [(int(r["step"]), float(r[CURVE_KEY])) for r in rows if is_eval_row(r) and r.get("split") == "val"]
        loss = [(int(r["step"]), float(r["loss"])) for r in rows if "loss" in r and "split" not in r]
        out[job.seed] = (val, loss)
    return out
