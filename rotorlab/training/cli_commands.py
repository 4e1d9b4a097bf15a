"""``rotorlab train MATERIAL`` (register with ``add_parsers`` in :mod:`rotorlab.cli`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["add_parsers", "cmd_train", "cmd_check"]


def _one_thread_env(threads: int) -> None:
    t = str(int(threads))
    for k in ("OMP_NUM_THREADS", "DP_INTRA_OP_PARALLELISM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, t)
    os.environ.setdefault("DP_INTER_OP_PARALLELISM_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


def cmd_train(args) -> int:
    """Run or continue the training loop of one material."""
    _one_thread_env(args.threads)
    from rotorlab._paths import datasets_dir
    from rotorlab.training.loop import STATE_FILE, StateError, TrainingLoop
    from rotorlab.training.presets import settings_for

    material = args.material
    wd = Path(args.workdir) if args.workdir else datasets_dir() / "training" / material
    out = Path(args.output) if args.output else datasets_dir() / "models" / material
    if (wd / STATE_FILE).is_file():
        if not args.resume:
            raise StateError(f"{wd} holds a training loop; continue it with --resume (or "
                             "choose another --workdir)")
        loop = TrainingLoop.open(wd, teacher=args.teacher)
        loss, network = _loss_args(args), _network_args(args)
        scratch = bool(getattr(args, "retrain_production", False) or network)
        refit = bool(getattr(args, "refit_production", False) or scratch)
        if not refit and (loss or args.refit_steps or args.refit_lr):
            raise StateError("loss prefactors, --refit-steps and --refit-lr change a resumed "
                             "loop only with --refit-production or --retrain-production (the "
                             "members already trained keep theirs)")
        if refit:
            # prepared first, on the finished loop; a reopen below keeps it, so that more
            # iterations end in this refit instead of a production model from scratch
            steps = args.refit_steps or (args.production_steps if scratch else None)
            loop.refit_production(steps=steps, start_lr=args.refit_lr, scratch=scratch,
                                  network=network, **loss)
        if args.budget_hours is not None:
            old = loop.settings.budget_hours
            loop.state["settings"]["budget_hours"] = float(args.budget_hours)
            loop.settings.budget_hours = float(args.budget_hours)
            if float(args.budget_hours) > old and loop.state.get("stop_reason") == "budget":
                # more time: continue the active learning; the production model and the
                # card are redone at the end
                loop.reopen_iterations(keep_refit=refit)
            loop.save()
        _apply_resume_settings(loop, args, keep_refit=refit)
        if getattr(args, "add_frames", None):
            import ase.io

            frames = []
            for f in args.add_frames:
                if not Path(f).is_file():
                    raise StateError(f"--add-frames: no such file {f}")
                try:
                    got = ase.io.read(f, index=":")
                except Exception as exc:
                    raise StateError(f"--add-frames: cannot read {f}: {exc}") from None
                for a in got:
                    a.info.setdefault("added_from", Path(f).name)
                frames += got
            res = loop.add_frames(frames, keep_refit=refit)
            print(f"rotorlab train {material}: {res['n_frames']} frames queued for iteration "
                  f"{res['iteration']} ({res['n_labelled']} keep the labels of "
                  f"{loop.state['teacher']['id']})")
    else:
        if getattr(args, "refit_production", False) or getattr(args, "retrain_production",
                                                                 False):
            raise StateError(f"--refit-production/--retrain-production: no training loop "
                             f"in {wd}")
        if args.resume:
            raise StateError(f"--resume: no training loop in {wd}")
        if getattr(args, "add_frames", None):
            raise StateError("--add-frames adds to an existing loop: give --resume")
        import ase.io

        if args.structure:
            atoms = ase.io.read(args.structure)
        else:
            from rotorlab.materials import unit_cell

            atoms = unit_cell(material)
        atoms.info["material"] = material
        over = {"budget_hours": args.budget_hours, "members": args.members,
                "first_steps": args.first_steps, "next_steps": args.next_steps,
                "production_steps": args.production_steps, "jobs": args.jobs,
                "threads": args.threads, "max_iterations": args.max_iterations,
                "explore_supercell": getattr(args, "explore_supercell", None),
                "output_dir": str(out), **_loss_args(args), **_explore_args(args),
                **_network_args(args)}
        if args.settings:
            over.update(json.loads(Path(args.settings).read_text()))
        settings = settings_for(material, **over)
        loop = TrainingLoop.create(wd, atoms, teacher=args.teacher or "7net-0",
                                   settings=settings)
    state = loop.run()
    print(f"rotorlab train {material}: {state['status']}, stop reason "
          f"{state['stop_reason']}, {len(state['iterations'])} iteration(s), "
          f"{state['elapsed_s'] / 60:.1f} min; work directory {wd}")
    return 0


def _loss_args(args) -> dict:
    """The loss prefactors given on the command line (``--limit-pref-e`` ...)."""
    from rotorlab.training.loop import LOSS_KEYS

    return {k: float(getattr(args, k)) for k in LOSS_KEYS
            if getattr(args, k, None) is not None}


def _network_args(args) -> dict:
    """``--production-neuron/--production-axis-neuron/--production-fitting`` given (a new
    loop: the whole loop's network; a resumed one: the production model's only)."""
    out = {}
    for k in ("neuron", "axis_neuron", "fitting"):
        v = getattr(args, "production_" + k, None)
        if v is not None:
            out[k] = v
    return out


def _explore_args(args) -> dict:
    """``--explore-steps/--explore-modes/--explore-temperatures`` given, validated."""
    from rotorlab.training.loop import check_exploration

    return check_exploration(**{k: getattr(args, k, None) for k in
                                ("explore_steps", "explore_modes", "explore_temperatures")})


#: settings a resumed loop takes from the command line (the others fix what the loop's
#: data and models are and cannot change part-way)
_RESUMABLE = ("max_iterations", "production_steps", "next_steps", "jobs")


def _apply_resume_settings(loop, args, keep_refit: bool = False) -> None:
    """Apply ``--max-iterations/--production-steps/--next-steps/--jobs``,
    ``--explore-supercell`` and ``--explore-steps/--explore-modes/--explore-temperatures``
    to a resumed loop (recorded in its notes); refuse ``--members/--first-steps`` changes.
    A reopen (more ``--max-iterations``) keeps a prepared refit when ``keep_refit``."""
    import time

    from rotorlab.training.loop import StateError

    for name in ("members", "first_steps"):
        val = getattr(args, name, None)
        if val is not None and int(val) != int(getattr(loop.settings, name)):
            raise StateError(f"--{name.replace('_', '-')} cannot change when a loop is "
                             f"resumed (it has {getattr(loop.settings, name)}); start a new "
                             "--workdir for another ensemble")
    changed = []
    for name in _RESUMABLE:
        val = getattr(args, name, None)
        if val is not None and int(val) != int(getattr(loop.settings, name)):
            changed.append(f"{name} {getattr(loop.settings, name)} -> {int(val)}")
            setattr(loop.settings, name, int(val))
            loop.state["settings"][name] = int(val)
    sc = getattr(args, "explore_supercell", None)
    if sc is not None:
        sc = [int(x) for x in sc]
        if min(sc) < 1:
            raise StateError(f"--explore-supercell needs three positive integers, got {sc}")
        if sc != list(loop.settings.explore_supercell or loop.settings.train_supercells[0]):
            old = loop.settings.explore_supercell or loop.settings.train_supercells[0]
            changed.append(f"explore_supercell {list(old)} -> {sc}")
            loop.settings.explore_supercell = sc
            loop.state["settings"]["explore_supercell"] = sc
    for name, val in _explore_args(args).items():   # steer later explorations only
        if val != getattr(loop.settings, name):
            changed.append(f"{name} {getattr(loop.settings, name)} -> {val}")
            setattr(loop.settings, name, val)
            loop.state["settings"][name] = val
    if changed:
        loop.state.setdefault("notes", []).append(
            time.strftime("%Y-%m-%d %H:%M") + " resumed with " + ", ".join(changed))
        if loop.state.get("stop_reason") == "max_iterations" and any(
                c.startswith("max_iterations ") for c in changed):
            if keep_refit:
                loop.reopen_iterations(keep_refit=True)
            else:
                loop.reopen_iterations()
        loop.save()


def cmd_check(args) -> int:
    """Re-measure a finished model's physical checks and update its card (``card.json`` and
    ``README.md``): a longer UC sanity run and/or student vs teacher MD."""
    _one_thread_env(args.threads)
    import time
    import warnings

    from rotorlab._paths import datasets_dir
    from rotorlab.potentials.deepmd import set_threads
    from rotorlab.training import checks
    from rotorlab.training.card import check_cell

    with warnings.catch_warnings():  # an in-process call after TF started keeps its threads
        warnings.simplefilter("ignore", RuntimeWarning)
        set_threads(int(args.threads))
    from rotorlab.training.card import write_card
    from rotorlab.training.loop import STATE_FILE, StateError, TrainingLoop

    material = args.material
    wd = Path(args.workdir) if args.workdir else datasets_dir() / "training" / material
    out = Path(args.output) if args.output else datasets_dir() / "models" / material
    if not (wd / STATE_FILE).is_file():
        raise StateError(f"no training loop in {wd} (give --workdir)")
    if not (out / "card.json").is_file():
        raise StateError(f"no model card in {out} (give --output: the model directory)")
    if args.uc_temperatures and not args.uc_ps:
        raise StateError("--uc-temperatures needs --uc-ps (the length of each run)")
    if not args.uc_ps and not args.teacher_steps and not args.inference:
        raise StateError("nothing to check: give --uc-ps, --teacher-steps and/or --inference")
    loop = TrainingLoop.open(wd, teacher=args.teacher)
    card = json.loads((out / "card.json").read_text())
    if card.get("material") != loop.state["material"] or \
            card.get("teacher", {}).get("id") != loop.state["teacher"]["id"]:
        raise StateError(f"the card in {out} ({card.get('material')}, teacher "
                         f"{card.get('teacher', {}).get('id')}) is not this loop's "
                         f"({loop.state['material']}, {loop.state['teacher']['id']})")
    s = loop.settings
    comp = wd / "production" / "model-compressed.pb"
    model = comp if comp.is_file() else out / "model.pb"
    sanity = card.setdefault("sanity", {})
    nm = card.setdefault("not_measured", {})
    done = []
    if args.uc_ps:
        steps = int(round(float(args.uc_ps) * 1000.0 / s.timestep))
        top = max(s.temperatures)
        seed = int(args.seed)
        temps = [float(t) for t in (args.uc_temperatures or [top])]
        bad = [t for t in temps if not t > 0]
        if bad:  # before any run: nothing half-done
            raise StateError(f"--uc-temperatures: {bad} K are not temperatures")
        for T in temps:
            main = T == top and seed == 0  # the card's own run: highest T, seed 0
            t0 = time.time()
            run = checks.md_sanity(
                model, check_cell(loop), T, steps,
                wd / "production" / ("sanity" if main else f"sanity-{T:g}K-seed{seed}"),
                timestep=s.timestep, seed=seed)
            if main:
                sanity["uc_md"] = run
                sanity["seconds"] = round(time.time() - t0, 1)
                nm.pop("sanity", None)
            else:  # beside the main run; a rerun of the same (T, seed) replaces its record
                run["seed"] = seed
                run["seconds"] = round(time.time() - t0, 1)
                runs = [r for r in sanity.get("uc_md_runs", [])
                        if (r.get("temperature_K"), r.get("seed")) != (T, seed)]
                sanity["uc_md_runs"] = sorted(runs + [run], key=lambda r: (
                    r.get("temperature_K"), r.get("seed")))
            done.append(f"UC {args.uc_ps} ps at {T:g} K (seed {seed}): "
                        + (f"exploded ({run['exploded']})" if run.get("exploded") else
                           f"anions bonded {run['anions_bonded']}, MSD slope "
                           f"{(run.get('msd') or {}).get('slope')}"))
    if args.inference:
        import tempfile

        from rotorlab.training.card import inference_cells, inference_table

        with tempfile.TemporaryDirectory(prefix="rotorlab-check-") as tmp:
            timed = comp if comp.is_file() else out / "model-compressed.pb"
            if not timed.is_file():  # a clone ships the frozen model only: compress it here
                from rotorlab.training import dp

                step = float((card.get("compression") or {}).get("step", s.compress_step))
                timed = dp.compress(out / "model.pb", Path(tmp) / "model-compressed.pb",
                                    step=step, threads=int(args.threads))
            table = inference_table(inference_cells(loop), out / "model.pb", timed,
                                    int(args.threads))
        if int(args.threads) == int(s.threads):
            card["inference_ms_per_step"] = table
            nm.pop("inference_ms_per_step", None)
        else:  # another thread count is kept beside the loop's, never in its place
            card.setdefault("inference_ms_per_step_by_threads", {})[str(args.threads)] = table
        done.append(f"inference ({args.threads} thread(s)) " + ", ".join(
            f"{k} {v} ms" for k, v in table.items() if k.endswith("compressed")))
    if args.teacher_steps:
        r = checks.student_vs_teacher(
            model, check_cell(loop), loop.teacher, max(s.temperatures),
            int(args.teacher_steps), wd / "production" / "vs_teacher", timestep=s.timestep,
            equilibration_steps=int(args.equilibration_steps))
        sanity["vs_teacher"] = r
        for k in ("sanity.vs_teacher", "sanity.rdf_vacf_vs_teacher"):
            nm.pop(k, None)
        if r["exploded"]:
            done.append(f"student vs teacher: exploded ({r['exploded']})")
        else:
            done.append(f"student vs teacher ({r['length_ps']:.2f} ps): g(r) {r['rdf']['pair']} "
                        f"{r['rdf']['teacher_vs_student']:.3f} (noise "
                        f"{r['rdf']['student_vs_student']:.3f}), VACF "
                        f"{r['vacf']['teacher_vs_student']:.3f} (noise "
                        f"{r['vacf']['student_vs_student']:.3f})")
    write_card(out, card)
    loop.state.setdefault("notes", []).append(
        time.strftime("%Y-%m-%d %H:%M") + " check: " + "; ".join(done))
    loop.save()
    print(f"rotorlab train check {material}: " + "; ".join(done) + f"; card updated in {out}")
    return 0


def add_parsers(sub) -> None:
    """Add the ``train`` sub-command to an ``argparse`` sub-parser collection."""
    t = sub.add_parser("train", help="teacher -> student DeePMD training loop of a material "
                                     "(DP-GEN style, resumable)")
    t.add_argument("material", help="catalog material, e.g. Li3PS4")
    t.add_argument("--teacher", default=None,
                   help="labeller: 7net-0 (default), 7net-l3i5, 7net-mf-0, chgnet, "
                        "ase:module:factory (any ASE calculator, e.g. DFT)")
    t.add_argument("--workdir", default=None,
                   help="loop state directory (default datasets/training/MATERIAL)")
    t.add_argument("--output", default=None,
                   help="final model directory (default datasets/models/MATERIAL)")
    t.add_argument("--structure", default=None,
                   help="structure file (any ASE format, e.g. the study's POSCAR); default: "
                        "the catalog's unit cell")
    t.add_argument("--budget-hours", type=float, default=None,
                   help="wall-time budget of the whole pipeline (default 2)")
    t.add_argument("--resume", action="store_true",
                   help="continue the loop in --workdir from its last completed step")
    t.add_argument("--members", type=int, default=None, help="ensemble size (default 4)")
    t.add_argument("--first-steps", type=int, default=None)
    t.add_argument("--next-steps", type=int, default=None)
    t.add_argument("--production-steps", type=int, default=None)
    t.add_argument("--max-iterations", type=int, default=None)
    t.add_argument("--explore-supercell", type=int, nargs=3, default=None,
                   metavar=("NX", "NY", "NZ"),
                   help="cell the exploration MD runs in (supercell of the structure); may "
                        "change when a loop is resumed, e.g. to explore a larger cell")
    t.add_argument("--explore-steps", type=int, nargs="+", default=None, metavar="N",
                   help="MD steps of each exploration run, per iteration (the last value "
                        "repeats); may change on resume, e.g. longer runs that reach the "
                        "configurations a model fails in after a few ps")
    t.add_argument("--explore-modes", nargs="+", default=None, metavar="MODE",
                   help="constraint modes explored (default UC RC RTC RTVC); may change on "
                        "resume")
    t.add_argument("--explore-temperatures", type=float, nargs="+", default=None,
                   metavar="T", help="exploration temperatures [K] (default: the lowest and "
                                     "highest study temperature); may change on resume")
    t.add_argument("--add-frames", nargs="+", default=None, metavar="FILE",
                   help="with --resume: configurations of your own (any ASE-readable file, "
                        "every frame) for the next iteration, labelled by the loop's teacher "
                        "(frames labelled by this teacher keep their labels); a finished "
                        "loop runs one more iteration")
    t.add_argument("--jobs", type=int, default=None,
                   help="ensemble members trained concurrently (one process each)")
    t.add_argument("--threads", type=int, default=1, help="threads per process (default 1)")
    t.add_argument("--settings", default=None, help="JSON file of further Settings overrides")
    for k in ("start_pref_e", "limit_pref_e", "start_pref_f", "limit_pref_f", "start_pref_v",
              "limit_pref_v"):
        t.add_argument("--" + k.replace("_", "-"), type=float, default=None,
                       help=f"DeePMD loss prefactor {k} (new loop, or with --refit-production)")
    t.add_argument("--refit-production", action="store_true",
                   help="with --resume: train the finished production model further from "
                        "itself (e.g. with a larger --limit-pref-e), pin its energies, "
                        "recompress it and rewrite the card; the old model is kept")
    t.add_argument("--retrain-production", action="store_true",
                   help="with --resume: train a new production model from scratch on all "
                        "data (--production-steps; with --production-fitting ... another "
                        "network than the ensemble's), pin, compress, rewrite the card; "
                        "the old model is kept")
    t.add_argument("--production-neuron", type=int, nargs="+", default=None, metavar="W",
                   help="embedding widths (a new loop: every model; with --resume: the "
                        "production model only, implies --retrain-production)")
    t.add_argument("--production-axis-neuron", type=int, default=None, metavar="N",
                   help="embedding axis neurons (as --production-neuron)")
    t.add_argument("--production-fitting", type=int, nargs="+", default=None, metavar="W",
                   help="fitting-net widths, e.g. 240 240 240 (as --production-neuron)")
    t.add_argument("--refit-steps", type=int, default=None,
                   help="steps of the refit (default: the loop's next_steps, >= 1000; "
                        "--retrain-production: --production-steps or production_steps)")
    t.add_argument("--refit-lr", type=float, default=None,
                   help="start learning rate of the refit (default: next_start_lr; "
                        "--retrain-production: start_lr)")
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("train-check", help="re-measure a trained model's physical checks "
                                           "(long UC run, student vs teacher MD) into its card")
    c.add_argument("material")
    c.add_argument("--workdir", default=None, help="the loop's directory (default "
                                                   "datasets/training/MATERIAL)")
    c.add_argument("--output", default=None, help="the model directory holding card.json "
                                                  "(default datasets/models/MATERIAL)")
    c.add_argument("--teacher", default=None, help="must match the loop's teacher")
    c.add_argument("--uc-ps", type=float, default=None,
                   help="UC MD of this length [ps] at the highest study temperature")
    c.add_argument("--uc-temperatures", type=float, nargs="+", default=None, metavar="T",
                   help="run the --uc-ps check at these temperatures [K] instead of the "
                        "highest study one; runs other than (highest T, seed 0) are kept "
                        "beside it in sanity.uc_md_runs, and their failures are caveats")
    c.add_argument("--seed", type=int, default=0,
                   help="velocity/thermostat seed of the --uc-ps runs (default 0)")
    c.add_argument("--teacher-steps", type=int, default=None,
                   help="student vs teacher MD of this many steps (g(r), VACF)")
    c.add_argument("--inference", action="store_true",
                   help="re-measure ms per call on the loop's cells and the catalog's quick "
                        "and paper cells")
    c.add_argument("--equilibration-steps", type=int, default=1000)
    c.add_argument("--threads", type=int, default=1,
                   help="threads per process; an --inference timing with a count other than "
                        "the loop's is stored beside its table (inference_ms_per_step_by_threads)")
    c.set_defaults(func=cmd_check)
