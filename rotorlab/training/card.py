"""Model card of a trained material: ``card.json`` (machine-readable) and ``README.md``.

The card records the teacher and versions, data counts per source and iteration, the
training settings, energy and force RMSEs on training and held-out frames with the spread
over the ensemble (the study's Table 1 layout; keys ``energy_rmse_test_meV_atom``,
``force_rmse_test_meV_A``), errors against cross-check teachers, inference cost,
exploration statistics per iteration, and the physical sanity checks. Quantities not
measured yet are ``null`` with a reason in ``not_measured`` — never a made-up number.

:func:`write_products` copies the production model, its compressed copy and the ensemble
into ``datasets/models/<material>/`` together with the labelled data (one ``.tar.xz``) and
the card, in the layout ``rotorlab.potentials.registry`` reads (``models`` list: the first
entry drives, the others give the model deviation; ``compressed_from`` marks a faster copy).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

__all__ = ["build_card", "write_card", "write_products", "render_readme", "measure",
           "REQUIRED_KEYS"]

#: Keys every card has (values may be null when not measured; see ``not_measured``).
REQUIRED_KEYS = ("id", "material", "teacher", "type_map", "data", "training", "models",
                 "energy_rmse_test_meV_atom", "force_rmse_test_meV_A",
                 "energy_rmse_train_meV_atom", "force_rmse_train_meV_A", "ensemble",
                 "cross_check", "inference_ms_per_step", "exploration", "sanity",
                 "not_measured", "wall_time_s", "stop_reason")


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("rotorlab", "deepmd-kit", "dpdata", "sevenn", "chgnet", "torch", "ase"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def build_card(state: dict, extra: dict | None = None) -> dict:
    """The card dictionary from a loop's ``state.json`` (plus measured ``extra`` entries).

    Parameters
    ----------
    state : dict
        :attr:`rotorlab.training.loop.TrainingLoop.state`.
    extra : dict, optional
        Measurements made outside the loop (``inference_ms_per_step``, ``sanity``,
        ``cross_check``); they override the defaults.

    Returns
    -------
    dict
        With at least :data:`REQUIRED_KEYS`.
    """
    s = state["settings"]
    iters = state.get("iterations", [])
    prod = state.get("production") or {}
    data_rows = []
    for st in iters:
        lab = st.get("label", {})
        data_rows.append({"iteration": st["iteration"], "n_train": lab.get("n_train", 0),
                          "sources": lab.get("sources", {}),
                          "labelling_s_per_frame": lab.get("s_per_frame")})
    n_test = next((st["label"].get("n_test") for st in iters
                   if st.get("label", {}).get("n_test")), 0)
    exploration = []
    for st in iters:
        ex = st.get("explore")
        if ex:
            exploration.append({"iteration": st["iteration"],
                                **{k: ex.get(k) for k in ("frames", "fraction_accurate",
                                                          "fraction_candidate",
                                                          "fraction_failed", "n_candidates",
                                                          "steps", "temperatures", "modes")},
                                "runs": ex.get("runs")})
    last_test = next((st["test"] for st in reversed(iters) if st.get("test")), {})
    ptest = prod.get("test", {}).get("frozen", {})
    ptrain = prod.get("train_errors", {})
    summ = last_test.get("summary", {})
    card = {
        "id": s["material"],
        "material": s["material"],
        "purpose": f"production DeePMD model of {s['material']} trained on teacher labels "
                   f"({state['teacher']['id']}), not on DFT",
        "teacher": state["teacher"],
        "type_map": s["type_map"],
        "versions": _versions(),
        "data": {"per_iteration": data_rows,
                 "n_train": int(sum(r["n_train"] for r in data_rows)),
                 "n_test": int(n_test or 0),
                 "test_temperature_K": None if not iters else _test_T(state),
                 "test_supercell": s.get("test_supercell") or s.get("large_supercell"),
                 "train_supercells": s.get("train_supercells"),
                 "archive": "data.tar.xz"},
        "training": {"software": "deepmd-kit (TensorFlow backend)", "descriptor": "se_e2_a",
                     "rcut": s["rcut"], "rcut_smth": s["rcut_smth"], "neuron": s["neuron"],
                     "axis_neuron": s["axis_neuron"], "fitting": s["fitting"],
                     "members": s["members"], "first_steps": s["first_steps"],
                     "next_steps": s["next_steps"],
                     "member_schedule": _member_schedule(iters),
                     "production_steps": prod.get("steps"),
                     "production_shortened_to_fit_budget": prod.get("shortened_to_fit_budget"),
                     "production_steps_per_s": (prod.get("train") or {}).get("steps_per_s"),
                     "threads": s["threads"], "compress_step": s["compress_step"],
                     "loss": prod.get("loss"),
                     "energy_bias": _bias_record(prod.get("energy_bias")),
                     "refit": _refit_record(prod.get("refit")),
                     "production_network": _production_network(s, prod.get("refit")),
                     "input": "input.json"},
        "models": [],
        "energy_rmse_test_meV_atom": ptest.get("energy_rmse_meV_atom"),
        "energy_rmse_test_offset_removed_meV_atom": ptest.get("energy_rmse_offset_meV_atom"),
        "force_rmse_test_meV_A": ptest.get("force_rmse_meV_A"),
        "energy_rmse_train_meV_atom": ptrain.get("energy_rmse_meV_atom"),
        "force_rmse_train_meV_A": ptrain.get("force_rmse_meV_A"),
        "force_std_test_meV_A": ptest.get("force_std_meV_A"),
        "compressed_test": prod.get("test", {}).get("compressed"),
        "ensemble": {"members": s["members"], "iteration": prod.get("last_iteration"),
                     "test": summ.get("test"), "train": summ.get("train"),
                     "per_member": last_test.get("members")},
        "cross_check": {},
        "inference_ms_per_step": {},
        "exploration": exploration,
        "sanity": {},
        "not_measured": {},
        "wall_time_s": state.get("elapsed_s"),
        "stop_reason": state.get("stop_reason"),
        "iterations": len(iters),
        "sigma_low": s["sigma_low"], "sigma_high": s["sigma_high"],
    }
    if extra:
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(card.get(k), dict):
                card[k].update(v)
            else:
                card[k] = v
    for k in ("cross_check", "inference_ms_per_step", "sanity"):
        if not card[k]:
            card["not_measured"].setdefault(k, "not run yet (see docs/training.md)")
    for k in ("energy_rmse_test_meV_atom", "force_rmse_test_meV_A"):
        if card[k] is None:
            card["not_measured"].setdefault(k, "no production model yet")
    return card


def _bias_record(b):
    """The card's short form of the production step's energy-bias pin (or None)."""
    if not b:
        return None
    return {"pinned_on": "training data (least squares, per type)",
            "delta_eV": b.get("delta_eV"), "rank": b.get("rank"), "n_frames": b.get("n_frames"),
            "train_energy_rmse_before_meV_atom": b.get("energy_rmse_before_meV_atom"),
            "train_energy_rmse_after_meV_atom": b.get("energy_rmse_after_meV_atom")}


def _refit_record(r):
    if not r:
        return None
    rec = {k: r.get(k) for k in ("steps", "start_lr", "loss", "last_iteration", "requested")}
    rec["scratch"] = bool(r.get("scratch"))
    if r.get("after_reopen"):
        rec["after_reopen"] = True
    return rec


def _production_network(settings, refit):
    """The production model's network (``neuron``, ``axis_neuron``, ``fitting``): the
    ensemble's unless a retrain from scratch gave another."""
    net = {k: settings[k] for k in ("neuron", "axis_neuron", "fitting")}
    if refit and refit.get("scratch") and refit.get("network"):
        net.update(refit["network"])
    return net


def _test_T(state):
    s = state["settings"]
    if s.get("test_temperature") is not None:
        return float(s["test_temperature"])
    temps = sorted(s["temperatures"])
    mid = len(temps) // 2
    return 0.5 * (temps[mid - 1] + temps[mid]) if len(temps) > 1 else temps[0] + 25.0


def _fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def render_readme(card: dict) -> str:
    """Markdown for people (``README.md`` of the model directory)."""
    c = card
    t = c["teacher"]
    lines = [f"# {c['material']}: DeePMD model trained on {t['id']} labels", "",
             c["purpose"] + ".", "",
             f"* Teacher: `{t['id']}` ({t.get('package', '')} {t.get('version', '')}); "
             "energies of different teachers are never mixed.",
             f"* Data: {c['data']['n_train']} training frames, {c['data']['n_test']} held-out "
             f"frames (teacher MD at {_fmt(c['data']['test_temperature_K'], 0)} K in the "
             f"{c['data']['test_supercell']} cell, neither trained on); labelled set in "
             f"`{c['data']['archive']}`.",
             f"* Stop reason: **{c['stop_reason']}** after {c['iterations']} iteration(s); "
             f"wall time {_fmt((c['wall_time_s'] or 0) / 60, 0)} min on "
             f"{c['training']['threads']} thread(s).", "",
             "## Errors against the teacher (Table 1 layout)", "",
             "| model | E train (meV/atom) | E test (meV/atom) | F train (meV/Å) | F test (meV/Å) |",
             "|---|---|---|---|---|",
             f"| production | {_fmt(c['energy_rmse_train_meV_atom'], 2)} | "
             f"{_fmt(c['energy_rmse_test_meV_atom'], 2)} | {_fmt(c['force_rmse_train_meV_A'])} | "
             f"{_fmt(c['force_rmse_test_meV_A'])} |"]
    ens = c.get("ensemble") or {}
    if ens.get("test") and ens.get("train"):
        te, tr = ens["test"], ens["train"]
        lines.append(
            f"| ensemble (mean ± sd, {ens['members']}) | "
            f"{_fmt(tr['energy_rmse_meV_atom_mean'], 2)} ± {_fmt(tr['energy_rmse_meV_atom_std'], 2)} | "
            f"{_fmt(te['energy_rmse_meV_atom_mean'], 2)} ± {_fmt(te['energy_rmse_meV_atom_std'], 2)} | "
            f"{_fmt(tr['force_rmse_meV_A_mean'])} ± {_fmt(tr['force_rmse_meV_A_std'])} | "
            f"{_fmt(te['force_rmse_meV_A_mean'])} ± {_fmt(te['force_rmse_meV_A_std'])} |")
    lines += ["", f"Label force standard deviation on the test frames: "
              f"{_fmt(c.get('force_std_test_meV_A'))} meV/Å. Energy RMSE after removing a "
              f"constant offset: {_fmt(c.get('energy_rmse_test_offset_removed_meV_atom'), 2)} "
              "meV/atom.", "", "## Data per iteration", "",
              "| iteration | frames | sources | labelling s/frame |", "|---|---|---|---|"]
    for r in c["data"]["per_iteration"]:
        src = ", ".join(f"{k} {v}" for k, v in r["sources"].items())
        lines.append(f"| {r['iteration']} | {r['n_train']} | {src} | "
                     f"{_fmt(r['labelling_s_per_frame'], 2)} |")
    lines += ["", "## Exploration (model deviation ε_f, σ_low "
              f"{c['sigma_low']} / σ_high {c['sigma_high']} eV/Å)", "",
              "| iteration | steps | frames | accurate | candidate | failed | candidates labelled |",
              "|---|---|---|---|---|---|---|"]
    for e in c["exploration"]:
        lines.append(f"| {e['iteration']} | {e['steps']} | {e['frames']} | "
                     f"{_fmt(100 * e['fraction_accurate'])} % | "
                     f"{_fmt(100 * e['fraction_candidate'])} % | "
                     f"{_fmt(100 * e['fraction_failed'])} % | {e['n_candidates']} |")
    for key, title in (("cross_check", "Against cross-check teachers"),
                       ("inference_ms_per_step", "Inference cost"),
                       ("sanity", "Physical sanity")):
        lines += ["", f"## {title}", ""]
        if c.get(key):
            lines.append("```json\n" + json.dumps(c[key], indent=2) + "\n```")
        else:
            lines.append(f"Not measured: {c['not_measured'].get(key, '')}")
    for n, table in sorted((c.get("inference_ms_per_step_by_threads") or {}).items()):
        lines += ["", f"Inference cost with {n} threads:", "",
                  "```json\n" + json.dumps(table, indent=2) + "\n```"]
    from rotorlab.potentials.registry import BundledModel

    cav = BundledModel(id=str(c.get("id", "")), directory=Path("."), card=c).caveats()
    lines += ["", "## Caveats (targets missed, checks failed)", ""]
    lines += [f"* {x}" for x in cav] if cav else ["None recorded."]
    tr = c["training"]
    lines += ["", "## Training", "",
              f"se_e2_a, rcut {tr['rcut']} Å, embedding {tr['neuron']}, axis {tr['axis_neuron']}, "
              f"fitting {tr['fitting']}; ensemble of {tr['members']} "
              f"({_schedule_text(tr)}); production {tr['production_steps']} steps"
              + (" (shortened to fit the time budget)" if tr.get(
                  "production_shortened_to_fit_budget") else "")
              + f"; compressed with `dp compress -s {tr['compress_step']}`"
              + ("" if (c.get("compression") or {}).get("shipped", True) else
                 " on first use (not shipped: `" + c["compression"]["command"] + "`)")
              + ".", ""]
    pnet = tr.get("production_network")
    if pnet and any(pnet.get(k) != tr.get(k) for k in ("neuron", "axis_neuron", "fitting")):
        lines += [f"The production model has its own network: embedding {pnet['neuron']}, "
                  f"axis {pnet['axis_neuron']}, fitting {pnet['fitting']} (the ensemble "
                  "keeps the one above).", ""]
    if tr.get("refit") and tr["refit"].get("scratch"):
        rf = tr["refit"]
        lines += [f"The production model was retrained from scratch: {rf['steps']} steps "
                  f"(start lr {rf['start_lr']:g}) on all data with loss prefactors "
                  + ", ".join(f"{k} {v:g}" for k, v in rf["loss"].items()) + ".", ""]
    elif tr.get("refit"):
        rf = tr["refit"]
        lines += [f"The production model was refitted: {rf['steps']} more steps from the "
                  f"previous production model (start lr {rf['start_lr']:g}) with loss "
                  "prefactors " + ", ".join(f"{k} {v:g}" for k, v in rf["loss"].items())
                  + (" after further active-learning iterations" if rf.get("after_reopen")
                     else "") + ".", ""]
    elif tr.get("loss"):
        lines += ["Loss prefactors: " + ", ".join(
            f"{k} {v:g}" for k, v in tr["loss"].items() if k != "type") + ".", ""]
    if tr.get("energy_bias"):
        b = tr["energy_bias"]
        lines += ["Per-type atomic energies pinned by least squares on the training energies "
                  "after training (" + ", ".join(f"{k} {1e3 * v:+.2f} meV"
                                                  for k, v in b["delta_eV"].items())
                  + f"): training energy RMSE {_fmt(b['train_energy_rmse_before_meV_atom'], 2)}"
                  f" -> {_fmt(b['train_energy_rmse_after_meV_atom'], 2)} meV/atom; forces "
                  "unchanged.", ""]
    lines += ["Files: " + ", ".join(f"`{m['file']}`" for m in c["models"]) + ".", "",
              "Retrain or extend: see `docs/training.md` (`rotorlab train "
              f"{c['material']} --resume`).", ""]
    return "\n".join(lines)


def _member_schedule(iters) -> list:
    """What each iteration's ensemble members were actually trained for.

    The settings' ``first_steps``/``next_steps`` may have changed between resumed sessions
    and a member reused from an earlier, shorter schedule keeps its own step count, so the
    card records the members' own numbers.
    """
    rows = []
    for st in iters:
        t = st.get("train") or {}
        if not t:
            continue
        steps = [int(m["steps"]) for m in t.get("members", []) if m.get("steps") is not None]
        rows.append({"iteration": st["iteration"], "steps": steps or [t.get("steps")],
                     "start_lr": t.get("start_lr"), "init": t.get("init")})
    return rows


def _schedule_text(tr) -> str:
    rows = tr.get("member_schedule")
    if not rows:  # cards written before the schedule was recorded
        return (f"first iteration {tr['first_steps']} steps, later {tr['next_steps']} steps "
                f"from the previous members")
    parts = []
    for r in rows:
        st = [s for s in r["steps"] if s is not None]
        n = str(st[0]) if st and len(set(st)) == 1 else "/".join(map(str, st))
        parts.append(f"{r['iteration']}: {n} ({r.get('init') or 'scratch'})")
    return "member steps per iteration " + "; ".join(parts)


def write_card(directory, card: dict) -> None:
    """Write ``card.json`` and ``README.md`` into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "card.json").write_text(json.dumps(card, indent=2, default=_default) + "\n")
    (d / "README.md").write_text(render_readme(card))


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def write_products(loop, directory, extra=None, ship_compressed=False) -> dict:
    """Copy a finished loop's models and data into a model directory and write its card.

    Files: ``model.pb`` (production, drives), ``ensemble-K.pb`` (the last iteration's
    members, for the model deviation), ``input.json``, ``data.tar.xz`` (all labelled
    sets), ``card.json``, ``README.md``; with ``ship_compressed`` also
    ``model-compressed.pb`` (``compressed_from`` model.pb). By default the compressed model
    is *not* shipped (≈ 8 MB with ``-s 0.05``, against the 20 MB per material limit): the
    card's ``compression`` entry gives the command to make it on first use and its measured
    errors and speed. Files this function did not write are left alone; existing model
    files of the same names are replaced only when the card says this loop made them.

    Returns
    -------
    dict
        ``files`` (name → bytes), ``total_bytes``.
    """
    from rotorlab.training import data as D

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    old = d / "card.json"
    if old.is_file():
        prev = json.loads(old.read_text())
        if prev.get("teacher", {}).get("id") not in (None, loop.state["teacher"]["id"]) or \
                "ensemble" not in prev:
            raise FileExistsError(f"{d} holds a model this loop did not make; not replacing it")
    wd = loop.workdir
    prod = loop.state["production"]
    last = prod["last_iteration"]
    files = []
    shutil.copy2(wd / prod["model"], d / "model.pb")
    files.append({"file": "model.pb", "role": "production"})
    for k, m in enumerate(loop.member_models(last)):
        name = f"ensemble-{k}.pb"
        shutil.copy2(m, d / name)
        files.append({"file": name, "role": f"ensemble member {k} (iteration {last})"})
    comp_src = wd / prod["compressed"]
    if ship_compressed:
        shutil.copy2(comp_src, d / "model-compressed.pb")
        files.append({"file": "model-compressed.pb", "compressed_from": "model.pb",
                      "role": "compressed production model"})
    elif (d / "model-compressed.pb").is_file():
        (d / "model-compressed.pb").unlink()  # written by an earlier call of this function
    shutil.copy2(wd / "production" / "train" / "input.json", d / "input.json")
    # all labelled data in one archive
    import tarfile
    import os

    tmp = d / "data.tar.xz.tmp"
    with tarfile.open(tmp, "w:xz", preset=9) as tar:
        for p in sorted((wd / "data").rglob("*")):
            if p.is_file():
                tar.add(p, arcname=str(Path("data") / p.relative_to(wd / "data")))
    os.replace(tmp, d / "data.tar.xz")
    D.check_teacher([p.parent for p in (wd / "data").rglob(D.META)], loop.state["teacher"]["id"])
    if extra is None and getattr(loop.settings, "measure_card", True):  # noqa: SIM102
        extra = measure(loop, d, compressed=comp_src)
    card = build_card(loop.state, extra)
    step = loop.settings.compress_step
    card["compression"] = {
        "from": "model.pb", "step": step, "shipped": bool(ship_compressed),
        "size_bytes": comp_src.stat().st_size, "test": prod.get("test", {}).get("compressed"),
        "seconds": prod.get("compress_seconds"),
        "command": f"dp --tf compress -i model.pb -o model-compressed.pb -s {step}",
        "note": "same accuracy as model.pb (test errors above); make it once on first use"}
    ptest = prod.get("test", {})
    for f in files:
        if f["file"] == "model.pb" and ptest.get("frozen"):
            f.update(_row(ptest["frozen"], prod.get("train_errors")))
        if f["file"] == "model-compressed.pb" and ptest.get("compressed"):
            f.update(_row(ptest["compressed"], None))
    for row in (card["ensemble"].get("per_member") or []):
        k = row["member"]
        files[1 + k].update(_row(row.get("test", {}), row.get("train")))
    for f in files:
        f["size_bytes"] = (d / f["file"]).stat().st_size
    card["models"] = files
    write_card(d, card)
    sizes = {p.name: p.stat().st_size for p in d.iterdir() if p.is_file()}
    return {"files": sizes, "total_bytes": int(sum(sizes.values()))}


def _row(test, train):
    out = {}
    if test:
        out["rmse_energy_test_meV_per_atom"] = test.get("energy_rmse_meV_atom")
        out["rmse_force_test_meV_per_A"] = test.get("force_rmse_meV_A")
    if train:
        out["rmse_energy_train_meV_per_atom"] = train.get("energy_rmse_meV_atom")
        out["rmse_force_train_meV_per_A"] = train.get("force_rmse_meV_A")
    return out


def _default_cross_teachers(main_id: str) -> list:
    import importlib.util

    if not (main_id.startswith("sevenn") or main_id.startswith("chgnet")):
        return []
    out = []
    if importlib.util.find_spec("sevenn"):
        out += [t for t in ("7net-l3i5", "7net-0") if f"sevenn:{t}" != main_id]
    if importlib.util.find_spec("chgnet") and not main_id.startswith("chgnet"):
        out.append("chgnet")
    return out[:2]


def catalog_cells(material) -> dict:
    """The catalog's quick and paper cells of ``material`` (``catalog_quick``,
    ``catalog_paper``; empty for a material the catalog does not know)."""
    from rotorlab import materials

    try:
        return {f"catalog_{size}": materials.get(material, size) for size in ("quick", "paper")}
    except (KeyError, ValueError):
        return {}


def inference_cells(loop) -> dict:
    """Cells a card times the model on: the loop's exploration and test cells and the
    catalog's quick and paper cells."""
    return {"quick": loop._cell("explore"), "test": loop._cell("test"),
            **catalog_cells(loop.settings.material)}


def check_cell(loop):
    """The cell a card's MD checks run in: the exploration cell when its g(r) reaches past
    the first cation–anion shell (nearest pair + 0.5 Å), else the first of the test and
    large cells that does, else the widest of them."""
    from rotorlab.training import checks

    cells = []
    for kind in ("explore", "test", "large"):
        try:
            cells.append(loop._cell(kind))
        except KeyError:
            continue
    reach = [checks.gr_reach(c) for c in cells]
    for c, (r_max, nearest) in zip(cells, reach):
        if r_max >= nearest + 0.5:
            return c
    return cells[int(np.argmax([r for r, _ in reach]))]


def inference_table(cells, frozen, compressed, threads) -> dict:
    """``{NAME_N_atoms_frozen|compressed: ms}`` for every cell, plus ``engine`` (rotorlab's
    DeePMD engine that ran them), ``threads`` (asked)
    and ``threads_effective`` (TensorFlow's intra-op pool; 0 means TensorFlow's default,
    one thread per core, when no thread count was set before the first model loaded),
    ``load_average_1min`` (before, after) and ``cpus``: timings taken on a busy machine
    are upper bounds."""
    import os

    from rotorlab.training import checks

    out = {}
    engines = set()
    load0 = os.getloadavg()[0]
    for name, atoms in cells.items():
        for kind, f in (("frozen", frozen), ("compressed", compressed)):
            ms, engine = checks.inference_timing(f, atoms)
            out[f"{name}_{len(atoms)}_atoms_{kind}"] = round(ms, 2)
            engines.add(engine)
    # "c": DeePMD-kit's C API with a Verlet list; "python": its Python DeepPot
    out["engine"] = "+".join(sorted(engines))
    out["threads"] = threads
    # what TensorFlow really ran with (it fixes its thread pools when the first model loads)
    from rotorlab.potentials.deepmd import thread_settings

    out["threads_effective"] = thread_settings()["intra"]
    # how busy the machine was (1-minute load average before and after, and its CPUs):
    # timings taken beside other jobs are upper bounds
    out["load_average_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    out["cpus"] = os.cpu_count()
    return out


def measure(loop, directory, compressed=None) -> dict:
    """Card measurements of a finished loop's products in ``directory``: inference cost
    (quick and paper cells, compressed and not), UC MD sanity at the highest study
    temperature, errors against cross-check teachers. A failed measurement is recorded in
    ``not_measured`` with its error, never replaced by a number."""
    import time

    from rotorlab.training import checks

    s = loop.settings
    d = Path(directory)
    comp = Path(compressed) if compressed else d / "model-compressed.pb"
    res = {"inference_ms_per_step": {}, "sanity": {}, "cross_check": {}, "not_measured": {}}
    try:
        res["inference_ms_per_step"] = inference_table(inference_cells(loop), d / "model.pb",
                                                       comp, s.threads)
    except Exception as exc:  # recorded, not hidden
        res["not_measured"]["inference_ms_per_step"] = f"failed: {exc}"
    try:
        t0 = time.time()
        res["sanity"]["uc_md"] = checks.md_sanity(
            comp, check_cell(loop), max(s.temperatures),
            int(getattr(s, "sanity_steps", 10000)), loop.workdir / "production" / "sanity", timestep=s.timestep)
        res["sanity"]["seconds"] = round(time.time() - t0, 1)
    except Exception as exc:
        res["not_measured"]["sanity"] = f"failed: {exc}"
    n_teacher = int(getattr(s, "sanity_teacher_steps", 0) or 0)
    if n_teacher > 0:
        try:
            res["sanity"]["vs_teacher"] = checks.student_vs_teacher(
                comp, check_cell(loop), loop.teacher, max(s.temperatures), n_teacher,
                loop.workdir / "production" / "vs_teacher", timestep=s.timestep,
                equilibration_steps=min(1000, int(getattr(s, "sanity_steps", 1000))))
        except Exception as exc:
            res["not_measured"]["sanity.vs_teacher"] = f"failed: {exc}"
    else:
        res["not_measured"]["sanity.vs_teacher"] = "skipped (sanity_teacher_steps = 0)"
    specs = getattr(s, "cross_check_teachers", None)
    if not specs:  # None or empty: the other built-in teachers (none for DFT/reference)
        specs = _default_cross_teachers(loop.state["teacher"]["id"])
    tdir = loop.workdir / "data" / "test"
    for spec in specs:
        try:
            from rotorlab.training.teachers import make_teacher

            t = make_teacher(spec, threads=s.threads, material=s.material)
            res["cross_check"][t.id] = checks.cross_check(d / "model.pb", tdir, t, s.material)
        except Exception as exc:
            res["not_measured"][f"cross_check.{spec}"] = f"failed: {exc}"
    return res
