"""rotorlab Explorer: set up, run, watch, analyse and compare constrained MD runs.

Served:   ``rotorlab app`` (or ``panel serve apps/explorer.py --static-dirs ngl=DIR``)
Notebook: ``from rotorlab.viz.app_cli import load_explorer; load_explorer().Explorer()``

Runs go to the session's folder under the work directory (``ROTORLAB_APP_WORKDIR``), or to a
shared results folder when the server sets ``ROTORLAB_APP_SHARED``; the potentials offered
are the server's list (reference force field, bundled/installed models, ``ROTORLAB_APP_MODELS``)
and the models this session uploaded — never a path typed in the browser. URL arguments
(``?material=LiBH4&temperature=600&steps=2000&mode=RC&size=1x1x1&potential=LABEL``) prefill
the form; bad values give a message in the page.
"""

from __future__ import annotations

import threading
import traceback
import uuid
import warnings

import numpy as np
import panel as pn
import param
from bokeh.models import BoxAnnotation, Span
from bokeh.plotting import figure

from rotorlab.app.runs import InputError, RunManager, build_spec, config_from_env
from rotorlab.viz.ngl import (CATION_COLOUR, MODE_COLOURS, StoreFrames, cube_text, iso_level,
                              ngl_view_class)

pn.extension(sizing_mode="fixed")

MODES = ("UC", "TC", "RC", "RTC", "RTVC", "RVC")
SIZES = {"1x1x1 (unit cell)": (1, 1, 1), "quick": "quick", "2x2x2": (2, 2, 2),
         "paper": "paper"}
TICK_MS = 500
#: Colour of the mobile-ion density isosurface (distinct from every atom colour).
ISO_COLOUR = "#e377c2"
#: The isosurface encloses the densest voxels holding this share of the mobile-ion density.
ISO_FRACTION = 0.8


def _materials():
    from rotorlab import materials

    out = {}
    for n in materials.names():
        mat = materials.catalog(n)
        if mat.has_structure:
            out[n] = mat
    return out


def _ngl_src() -> str:
    """URL of ngl.js relative to the page, so the app also works under a prefix/proxy."""
    rel = pn.state.rel_path
    return f"{rel}/ngl/ngl.js" if rel else "ngl/ngl.js"


def _session_id() -> str:
    ctx = getattr(pn.state.curdoc, "session_context", None)
    sid = getattr(ctx, "id", None)
    return str(sid) if sid else uuid.uuid4().hex


def _msg(alert, text="", kind="danger"):
    alert.object = text
    alert.alert_type = kind
    alert.visible = bool(text)


def _fig(title, x, y, **kw):
    f = figure(title=title, x_axis_label=x, y_axis_label=y, width=kw.pop("width", 460),
               height=kw.pop("height", 300), toolbar_location="right", **kw)
    return f


def _plot(fig, cls):
    """A Bokeh figure in a container with the CSS class ``cls`` (for tests and styling)."""
    return pn.Column(pn.pane.Bokeh(fig), css_classes=[cls])


class _Worker:
    """One background computation whose result the session's tick picks up (Bokeh models
    are only touched on the server's event loop)."""

    def __init__(self, fn, done):
        self.result = None
        self.error = None
        self.done = done
        self.thread = threading.Thread(target=self._go, args=(fn,), daemon=True)
        self.thread.start()

    def _go(self, fn):
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                res = fn()
            self.result = (res, [str(x.message) for x in w])
        except Exception as exc:  # shown in the page
            self.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

    @property
    def finished(self):
        return not self.thread.is_alive()


class SetupPanel(pn.viewable.Viewer):
    """Material, size, mode, temperature, length and potential of a new run."""

    material = param.Selector()
    size = param.Selector(objects=list(SIZES), default="1x1x1 (unit cell)")
    mode = param.Selector(objects=list(MODES), default="UC")
    per_species = param.String(default="", doc="e.g. 'PS4:RC, SnS4:UC' (overrides mode)")
    temperature = param.Number(default=600.0)
    steps = param.Integer(default=400)
    frame_interval = param.Integer(default=5)
    seed = param.Integer(default=1)
    potential = param.String(default="")

    def __init__(self, app, **params):
        self._mats = _materials()
        self.param.material.objects = list(self._mats)
        params.setdefault("material", "LiBH4" if "LiBH4" in self._mats else list(self._mats)[0])
        super().__init__(**params)
        self.app = app
        self.message = pn.pane.Alert("", alert_type="danger", visible=False,
                                     css_classes=["rl-message"], width=640)
        self.info = pn.pane.Markdown("", css_classes=["rl-info"], width=640)
        self.study_T = pn.widgets.Select(name="Study temperatures (K)", options=[],
                                         css_classes=["rl-study-t"], width=200)
        self.pot_select = pn.widgets.Select(name="Potential", options=[], width=420,
                                            css_classes=["rl-potential"])
        self.pot_info = pn.pane.Markdown("", css_classes=["rl-potential-info"], width=640)
        self.upload = pn.widgets.FileInput(accept=".pb", multiple=False, css_classes=["rl-upload"])
        self.start_button = pn.widgets.Button(name="Start run", button_type="primary",
                                              css_classes=["rl-start"])
        self.start_button.on_click(self._start)
        self.upload.param.watch(self._on_upload, "value")
        self.study_T.param.watch(lambda e: e.new and setattr(self, "temperature", float(e.new)),
                                 "value")
        self.pot_select.param.watch(lambda e: setattr(self, "potential", e.new or ""), "value")
        self.param.watch(lambda e: self._refresh_pot_info(), "potential")
        self._refresh_material()
        self._apply_query()

    # ------------------------------------------------------------- form state
    @param.depends("material", "size", watch=True)
    def _refresh_material(self):
        mat = self._mats[self.material]
        self.study_T.options = [""] + [f"{t:g}" for t in mat.temperatures]
        self._refresh_potentials()
        try:
            from rotorlab.app.runs import _atoms_of

            n = _atoms_of(mat.name, SIZES[self.size])
            natoms = f"{n} atoms"
        except Exception as exc:
            natoms = f"size unavailable: {exc}"
        rot = ", ".join(mat.default_rotors) or "none"
        self.info.object = (
            f"**{mat.name}** — {mat.phase}. Structure trust **{mat.trust}**, {natoms} "
            f"({self.size}); rotors: {rot}; mobile ion {mat.mobile}; timestep "
            f"{mat.timestep:g} fs; study temperatures "
            f"{', '.join(f'{t:g}' for t in mat.temperatures)} K.")

    def _refresh_potentials(self, select=None):
        choices = self.app.runs.choices(self.material)
        labels = list(choices)
        keep = select or (self.pot_select.value if self.pot_select.value in labels else None)
        self.pot_select.options = labels
        self.pot_select.value = keep or labels[0]
        self.potential = self.pot_select.value
        self._refresh_pot_info()  # the material may have changed under the same label

    def _refresh_pot_info(self):
        from rotorlab.app.runs import potential_note

        spec = self.app.runs.choices(self.material).get(self.potential, "")
        self.pot_info.object = potential_note(self.material, spec)

    def _apply_query(self):
        args = getattr(pn.state, "session_args", None) or {}
        if not args:
            return
        errors = []

        def arg(k):
            v = args.get(k)
            return v[0].decode("utf-8", "replace") if v else None

        try:
            if arg("material"):
                if arg("material") not in self._mats:
                    errors.append(f"unknown material {arg('material')!r}")
                else:
                    self.material = arg("material")
            if arg("size"):
                if arg("size") not in SIZES:
                    errors.append(f"unknown size {arg('size')!r}; choose one of {list(SIZES)}")
                else:
                    self.size = arg("size")
            if arg("mode"):
                if arg("mode").upper() not in MODES:
                    errors.append(f"unknown mode {arg('mode')!r}")
                else:
                    self.mode = arg("mode").upper()
            for k, conv in (("temperature", float), ("steps", int), ("frame_interval", int),
                            ("seed", int)):
                if arg(k) is not None:
                    try:
                        setattr(self, k, conv(arg(k)))
                    except (ValueError, TypeError):
                        errors.append(f"{k} must be a number, got {arg(k)!r}")
            if arg("potential") is not None:
                choices = self.app.runs.choices(self.material)
                want = arg("potential")
                label = want if want in choices else next(
                    (lab for lab, v in choices.items() if v == want), None)
                if label is None:
                    errors.append(f"unknown model {want!r}: the server offers "
                                  f"{', '.join(choices)}")
                else:
                    self.pot_select.value = label
        except Exception as exc:
            errors.append(str(exc))
        if errors:
            _msg(self.message, "; ".join(errors))

    def _on_upload(self, event):
        if not event.new:
            return
        try:
            path = self.app.runs.add_upload(self.upload.filename or "", event.new)
        except InputError as exc:
            _msg(self.message, str(exc))
            return
        self._refresh_potentials(select=f"uploaded {path.name}")
        _msg(self.message, f"model {path.name} uploaded; it is selected as the potential",
             "success")

    def _mode_value(self):
        text = self.per_species.strip()
        if not text:
            return self.mode
        out = {}
        for part in text.split(","):
            if not part.strip():
                continue
            if ":" not in part:
                raise InputError(f"per-species modes: write 'KIND:MODE, ...', got {part!r}")
            k, m = (s.strip() for s in part.split(":", 1))
            out[k] = m
        return out

    def spec(self):
        """The :class:`~rotorlab.spec.RunSpec` of the form (raises :class:`InputError`)."""
        return build_spec(material=self.material, size=SIZES[self.size], mode=self._mode_value(),
                          temperature=self.temperature, steps=self.steps,
                          frame_interval=self.frame_interval, potential_label=self.potential,
                          choices=self.app.runs.choices(self.material), config=self.app.config,
                          seed=self.seed)

    def _start(self, event=None):
        try:
            rec = self.app.runs.start(self.spec())
        except InputError as exc:
            _msg(self.message, str(exc))
            return
        except Exception as exc:  # never a traceback in the page
            _msg(self.message, f"could not start: {type(exc).__name__}: {exc}")
            return
        _msg(self.message, f"started {rec.name}; follow it on the Run tab", "success")
        self.app.refresh_runs(select=rec.name)

    def __panel__(self):
        w = pn.Param(self.param, parameters=["material", "size", "mode", "per_species"],
                     widgets={"material": {"css_classes": ["rl-material"]},
                              "size": {"css_classes": ["rl-size"]},
                              "mode": {"css_classes": ["rl-mode"]},
                              "per_species": {"css_classes": ["rl-per-species"],
                                              "name": "Per-species modes (optional)"}},
                     show_name=False)
        nums = pn.Param(self.param, parameters=["temperature", "steps", "frame_interval", "seed"],
                        widgets={"temperature": {"type": pn.widgets.FloatInput,
                                                 "css_classes": ["rl-temperature"],
                                                 "name": "Temperature (K)"},
                                 "steps": {"type": pn.widgets.IntInput,
                                           "css_classes": ["rl-steps"],
                                           "name": "Production steps"},
                                 "frame_interval": {"type": pn.widgets.IntInput,
                                                    "css_classes": ["rl-frame-interval"],
                                                    "name": "Steps between frames"},
                                 "seed": {"type": pn.widgets.IntInput,
                                          "css_classes": ["rl-seed"]}},
                        show_name=False)
        return pn.Column(
            "## Set up a run", self.info,
            pn.Row(w, pn.Column(nums, self.study_T)),
            pn.Row(self.pot_select, pn.Column("Upload a DeePMD model (.pb)", self.upload)),
            self.pot_info,
            self.start_button, self.message)


class RunPanel(pn.viewable.Viewer):
    """The session's runs: live progress, Cancel (resumable) and Resume."""

    def __init__(self, app):
        super().__init__()
        self.app = app
        self.table = pn.pane.HTML("", css_classes=["rl-runs"], width=900)
        self.select = pn.widgets.Select(name="Run", options=[], width=560,
                                        css_classes=["rl-run-select"])
        self.cancel = pn.widgets.Button(name="Cancel", button_type="danger",
                                        css_classes=["rl-cancel"])
        self.resume = pn.widgets.Button(name="Resume", button_type="success",
                                        css_classes=["rl-resume"])
        self.progress = pn.indicators.Progress(value=0, max=100, width=560,
                                               css_classes=["rl-progress-bar"])
        self.status = pn.pane.Markdown("", css_classes=["rl-progress"], width=900)
        self.message = pn.pane.Alert("", visible=False, css_classes=["rl-run-message"], width=900)
        self.tplot = _fig("Temperature", "step", "T (K)", width=560, height=240)
        self.tline = self.tplot.line([], [], line_width=2)
        self.plot_pane = pn.pane.Bokeh(self.tplot)
        self.cancel.on_click(self._cancel)
        self.resume.on_click(self._resume)

    def _cancel(self, event=None):
        name = self.select.value
        if not name:
            return _msg(self.message, "choose a run")
        try:
            self.app.runs.cancel(name)
        except InputError as exc:
            return _msg(self.message, str(exc))
        _msg(self.message, f"cancel requested for {name}; it stops at the next step with a "
                           "checkpoint (resumable)", "warning")

    def _resume(self, event=None):
        name = self.select.value
        if not name:
            return _msg(self.message, "choose a run")
        try:
            self.app.runs.resume(name)
        except InputError as exc:
            return _msg(self.message, str(exc))
        _msg(self.message, f"resuming {name}", "success")

    def tick(self):
        rows = self.app.runs.list()
        names = [r["name"] for r in rows]
        if names != list(self.select.options):
            keep = self.select.value if self.select.value in names else (names[-1] if names else None)
            self.select.options = names
            self.select.value = keep
        head = ("<table class='rl-run-table'><tr><th>run</th><th>material</th><th>mode</th>"
                "<th>T (K)</th><th>steps</th><th>status</th></tr>")
        body = "".join(
            f"<tr data-run='{r['name']}' data-status='{r['status']}'><td>{r['name']}</td>"
            f"<td>{r['material']}</td><td>{r['mode']}</td><td>{r['temperature']:g}</td>"
            f"<td>{r['steps']}</td><td>{r['status']}</td></tr>" for r in rows)
        self.table.object = head + body + "</table>" if rows else "<p>No runs yet.</p>"
        name = self.select.value
        if not name:
            self.status.object = ""
            return
        rec = self.app.runs.get(name)
        p = rec.progress()
        if "step" in p:
            self.progress.value = int(round(100 * p["fraction"]))
            dev = p["model_deviation"]
            eta = p["eta_s"]
            self.status.object = (
                f"**{rec.status}** — step {p['step']} / {p['total_steps']}, frames {p['frames']}, "
                f"T = {p['temperature']:.1f} K, E_pot = {p['potential_energy']:.4f} eV, "
                f"E_cons = {p['conserved_energy']:.4f} eV"
                + (f", ε_f = {dev:.3f} eV/Å" if np.isfinite(dev) else "")
                + f", {p['steps_per_second']:.0f} steps/s"
                + (f", ETA {eta:.0f} s" if np.isfinite(eta) and rec.alive else "")
                + (f" — {rec.message}" if rec.message else ""))
            hist = rec.monitor.history() if rec.monitor is not None else []
            if hist:
                self.tline.data_source.data = {"x": [h["step"] for h in hist],
                                               "y": [h["temperature"] for h in hist]}
        else:
            self.progress.value = 100 if rec.status == "completed" else 0
            self.status.object = f"**{rec.status}**" + (f" — {rec.message}" if rec.message else "")

    def __panel__(self):
        return pn.Column("## Runs", self.table,
                         pn.Row(self.select, self.cancel, self.resume),
                         self.progress, self.status, self.message, self.plot_pane)


def _legend():
    items = "".join(f"<span style='color:{c};font-weight:bold'>&#9632; {m}</span> &nbsp;"
                    for m, c in MODE_COLOURS.items())
    return pn.pane.HTML(f"<div>rotors: {items} &nbsp; <span style='color:{CATION_COLOUR};"
                        "font-weight:bold'>&#9679; mobile cation</span></div>", width=700)


class WatchPanel(pn.viewable.Viewer):
    """3D trajectory player; frames are read from the store one at a time."""

    def __init__(self, app):
        super().__init__()
        self.app = app
        self.select = pn.widgets.Select(name="Run", options=[], width=560,
                                        css_classes=["rl-watch-select"])
        self.load = pn.widgets.Button(name="Show", button_type="primary",
                                      css_classes=["rl-watch-load"])
        self.player = pn.widgets.Player(start=0, end=1, value=0, interval=200, loop_policy="loop",
                                        width=560, css_classes=["rl-player"], visible=False)
        self.frame_input = pn.widgets.IntInput(name="Frame", value=0, start=0, width=120,
                                               css_classes=["rl-frame"], visible=False)
        self.view = ngl_view_class()(css_classes=["rl-ngl-watch"], width=640, height=420,
                                      ngl_src=_ngl_src())
        self.message = pn.pane.Alert("", visible=False, css_classes=["rl-watch-message"])
        self.frames = None
        self.load.on_click(self._load)
        self.player.param.watch(self._frame, "value")
        self.frame_input.param.watch(self._frame, "value")

    def _load(self, event=None):
        name = self.select.value
        if not name:
            return _msg(self.message, "choose a run (runs appear once they have frames)")
        try:
            rec = self.app.runs.get(name)
            self.frames = StoreFrames(rec.path)
            n = self.frames.n_frames
            if n < 1:
                return _msg(self.message, f"{name} has no frames yet")
            self.view.show_frames(self.frames, 0)
            self.player.param.update(end=max(1, n - 1), value=0, visible=True)
            self.frame_input.param.update(end=n - 1, value=0, visible=True)
            _msg(self.message, f"{name}: {n} frames", "info")
        except Exception as exc:
            _msg(self.message, f"cannot show {name}: {type(exc).__name__}: {exc}")

    def _frame(self, event):
        if self.frames is None:
            return
        i = max(0, min(int(event.new), self.frames.n_frames - 1))
        for w in (self.player, self.frame_input):
            if w.value != i:
                w.value = i
        try:
            self.view.set_frame(self.frames, i)
        except Exception as exc:
            _msg(self.message, f"frame {i}: {exc}")

    def __panel__(self):
        return pn.Column("## Watch", pn.Row(self.select, self.load), _legend(), self.view,
                         pn.Row(self.player, self.frame_input), self.message)


def _analyse(path):
    """All analyses of one store (run in a worker thread); returns plain data."""
    from rotorlab.analysis import (AnionFreeEnergy, MobileIonDensity, PhononDOS,
                                   RotorOrientation, Transport, density_profile)
    from rotorlab.store import open_store

    ds = open_store(path)
    out = {"frames": int(ds.sizes["frame"]), "errors": []}
    mobile = ds.attrs.get("mobile_species")
    out["mobile"] = mobile

    def attempt(key, fn):
        try:
            out[key] = fn()
        except Exception as exc:
            out["errors"].append(f"{key}: {exc}")

    def transport():
        tr = Transport().compute(ds)
        r = tr.result
        return {"lag": tr.msd["lag_time"].values, "msd": tr.msd.values,
                "window": tuple(r.attrs["fit_window"]),
                "block_len": int(tr.block_msd.sizes["block_lag_time"]),
                "D": float(r["D_tr"]), "D_err": float(r["D_tr_err"]),
                "D_bound": float(r["D_tr_bound"]), "sigma": float(r["sigma"]),
                "sigma_err": float(r["sigma_err"]), "sigma_bound": float(r["sigma_bound"]),
                "below": bool(r["below_measurable"]), "diffusive": bool(r["diffusive"]),
                "beta": float(r["msd_exponent"]), "T": float(r["temperature"])}

    def rdf():
        af = AnionFreeEnergy().compute(ds)
        g, F = af.rdf, af.free_energy
        return {"r": g["r"].values, "g": g.values, "F": F.values,
                "F_units": F.attrs.get("units", "eV"), "label": g.attrs.get("long_name", "g(r)")}

    def density():
        d = MobileIonDensity(spacing=0.35).compute(ds)
        prob = d.probability
        cell = np.asarray(d.density.attrs["cell"])
        fr = StoreFrames(ds)
        pos = fr.positions(0)
        keep = [i for i, s in enumerate(fr.symbols) if s != mobile]
        cube = cube_text(prob.values, cell, [fr.symbols[i] for i in keep], pos[keep])
        prof = {ax: density_profile(ds, axis=ax, nbins=60) for ax in "abc"}
        return {"cube": cube, "level": iso_level(prob.values, ISO_FRACTION),
                "profiles": {ax: (p["position"].values, p.values) for ax, p in prof.items()}}

    def angles():
        th = RotorOrientation().compute(ds).theta
        return {ax: np.histogram(th.sel(axis=ax).values.ravel(), bins=36, range=(0, 180))[0]
                for ax in "abc"}

    def dos():
        t = np.asarray(ds["time"].values)
        span = float(t[-1] - t[0]) if t.size > 1 else 0.0
        pd_ = PhononDOS(max_lag_ps=max(0.05, span / 2)).compute(ds)
        bc = pd_.band_centres
        return {"E": pd_.dos["energy"].values, "dos": pd_.dos.values / U_THZ_TO_MEV(),
                "pdos": {str(s): pd_.pdos.sel(species=s).values / U_THZ_TO_MEV()
                         for s in pd_.pdos["species"].values},
                "centres": {str(s): float(v) for s, v in
                            zip(bc["species"].values, bc["band_centre_meV"].values)}}

    attempt("transport", transport)
    attempt("rdf", rdf)
    attempt("density", density)
    if ds.sizes.get("rotor", 0):
        attempt("angles", angles)
    if "velocities" in ds:
        attempt("dos", dos)
    out["spec"] = ds.attrs.get("run_spec") or {}
    return out


def U_THZ_TO_MEV():
    from rotorlab import units

    return units.THZ_TO_MEV


class AnalysePanel(pn.viewable.Viewer):
    """MSD and D ± error, σ, g(r)/F(r), density isosurface and profiles, angle projections,
    phonon DOS with band centres, for one run."""

    def __init__(self, app):
        super().__init__()
        self.app = app
        self.select = pn.widgets.Select(name="Run", options=[], width=560,
                                        css_classes=["rl-analyse-select"])
        self.go = pn.widgets.Button(name="Analyse", button_type="primary",
                                    css_classes=["rl-analyse"])
        self.go.on_click(self._go)
        self.message = pn.pane.Alert("", visible=False, css_classes=["rl-analyse-message"],
                                     width=900)
        self.summary = pn.pane.Markdown("", css_classes=["rl-analyse-summary"], width=900)
        self.view = ngl_view_class()(css_classes=["rl-ngl-density"], width=460, height=340,
                                     view_width=460, view_height=340, ngl_src=_ngl_src())
        self.plots = pn.Column()
        self.worker = None
        self.run_name = None

    def _go(self, event=None):
        name = self.select.value
        if not name:
            return _msg(self.message, "choose a finished or stopped run")
        if self.worker is not None and not self.worker.finished:
            return _msg(self.message, "an analysis is running", "warning")
        try:
            rec = self.app.runs.get(name)
        except InputError as exc:
            return _msg(self.message, str(exc))
        if rec.alive:
            return _msg(self.message, f"{name} is still running; analyse it when it has ended")
        self.run_name = name
        _msg(self.message, f"analysing {name} …", "info")
        self.worker = _Worker(lambda: _analyse(rec.path), None)

    def tick(self):
        w = self.worker
        if w is None or not w.finished:
            return
        self.worker = None
        if w.error:
            return _msg(self.message, f"analysis failed: {w.error}")
        res, warns = w.result
        self.app.results[self.run_name] = res
        self.show(res, self.app.runs.get(self.run_name).path)
        notes = res["errors"] + [x for x in warns if "diffusive" in x or "frames" in x]
        _msg(self.message, "; ".join(notes) if notes else f"{self.run_name}: analysis done",
             "warning" if notes else "success")

    def show(self, res, path):
        plots = []
        lines = []
        tr = res.get("transport")
        if tr:
            f = _fig("MSD of the mobile ions", "lag time (ps)", "MSD (Å²)")
            f.line(tr["lag"], tr["msd"], line_width=2, legend_label="all origins")
            lag_b = tr["lag"][:tr["block_len"]]
            lo, hi = lag_b[-1] * tr["window"][0], lag_b[-1] * tr["window"][1]
            f.add_layout(BoxAnnotation(left=lo, right=hi, fill_alpha=0.12, fill_color="orange"))
            if np.isfinite(tr["D"]):
                sel = (tr["lag"] >= lo) & (tr["lag"] <= hi)
                slope = 6 * tr["D"] * 1e4  # cm²/s → Å²/ps
                x = tr["lag"][sel]
                if x.size:
                    icpt = np.mean(tr["msd"][sel] - slope * x)
                    f.line(x, slope * x + icpt, color="red", line_dash="dashed",
                           legend_label="fit")
            f.legend.location = "top_left"
            plots.append(_plot(f, "rl-msd-plot"))
            if tr["below"]:
                lines.append(f"D_tr < {tr['D_bound']:.1e} cm²/s (below measurable); "
                             f"σ < {tr['sigma_bound']:.2e} mS/cm")
            else:
                lines.append(f"D_tr = {tr['D']:.3e} ± {tr['D_err']:.1e} cm²/s, σ = "
                             f"{tr['sigma']:.3e} ± {tr['sigma_err']:.1e} mS/cm at "
                             f"{tr['T']:.0f} K (fit window {tr['window'][0]:g}–"
                             f"{tr['window'][1]:g} of the block, MSD slope β = {tr['beta']:.2f}"
                             + ("" if tr["diffusive"] else ", **not diffusive: run longer**")
                             + ")")
        rd = res.get("rdf")
        if rd:
            f = _fig(rd["label"], "r (Å)", "g(r)")
            f.line(rd["r"], rd["g"], line_width=2)
            f2 = _fig("F(r) = −kT ln g(r)", "r (Å)", f"F ({rd['F_units']})")
            ok = np.isfinite(rd["F"])
            f2.line(rd["r"][ok], rd["F"][ok], line_width=2, color="purple")
            plots += [_plot(f, "rl-rdf-plot"),
                      _plot(f2, "rl-free-energy-plot")]
        de = res.get("density")
        if de:
            fr = StoreFrames(path)
            # cations as small balls: the isosurface is where they spend their time
            reps = [[r[0], r[1], "ball+stick", 0.6] if r[2] == "spacefill" else r
                    for r in fr.styles()]
            self.view.param.update(pdb=fr.pdb(0), reps=reps, coords=[], cube=de["cube"],
                                   iso_level=de["level"], iso_colour=ISO_COLOUR)
            f = _fig(f"{res.get('mobile')} density profiles", "position (Å)", "n (1/Å³)")
            for ax, colour in zip("abc", ("#1f77b4", "#ff7f0e", "#2ca02c")):
                x, y = de["profiles"][ax]
                f.line(x, y, color=colour, legend_label=f"along {ax}", line_width=2)
            plots.append(_plot(f, "rl-profile-plot"))
        an = res.get("angles")
        if an:
            f = _fig("Rotor angle projections (Fig. 2 style)", "θ (degree)", "count")
            centres = np.arange(36) * 5 + 2.5
            for ax, colour in zip("abc", ("#1f77b4", "#ff7f0e", "#2ca02c")):
                f.line(centres, an[ax], color=colour, legend_label=f"θ_{ax}", line_width=2)
            plots.append(_plot(f, "rl-angle-plot"))
        do = res.get("dos")
        if do:
            f = _fig("Phonon DOS", "energy (meV)", "DOS (1/meV)")
            f.line(do["E"], do["dos"], line_width=2, color="black", legend_label="total")
            palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
            for (s, y), colour in zip(do["pdos"].items(), palette):
                f.line(do["E"], y, color=colour, legend_label=s)
                c = do["centres"].get(s)
                if c is not None and np.isfinite(c):
                    f.add_layout(Span(location=c, dimension="height", line_color=colour,
                                      line_dash="dotted"))
            plots.append(_plot(f, "rl-dos-plot"))
            lines.append("band centres: " + ", ".join(f"{s} {c:.1f} meV"
                                                      for s, c in do["centres"].items()))
        self.summary.object = "\n\n".join(lines)
        rows = [pn.Row(*plots[i:i + 2]) for i in range(0, len(plots), 2)]
        self.plots.objects = rows

    def __panel__(self):
        return pn.Column("## Analyse", pn.Row(self.select, self.go), self.message, self.summary,
                         pn.Row(pn.Column(f"Mobile-ion density isosurface (densest voxels holding "
                                          f"{ISO_FRACTION:.0%} of it)",
                                          self.view)),
                         self.plots)


class ComparePanel(pn.viewable.Viewer):
    """Several analysed runs: σ bars, Arrhenius, Δ and r_mode with bound kinds, DOS and
    density overlays."""

    def __init__(self, app):
        super().__init__()
        self.app = app
        self.select = pn.widgets.MultiSelect(name="Runs (analysed first on the Analyse tab, "
                                                  "or here)", options=[], size=6, width=700,
                                             css_classes=["rl-compare-select"])
        self.go = pn.widgets.Button(name="Compare", button_type="primary",
                                    css_classes=["rl-compare"])
        self.go.on_click(self._go)
        self.message = pn.pane.Alert("", visible=False, css_classes=["rl-compare-message"],
                                     width=900)
        self.table = pn.pane.HTML("", css_classes=["rl-compare-table"], width=900)
        self.plots = pn.Column()
        self.worker = None

    def _go(self, event=None):
        names = list(self.select.value)
        if len(names) < 1:
            return _msg(self.message, "choose at least one run")
        if self.worker is not None and not self.worker.finished:
            return _msg(self.message, "a comparison is running", "warning")
        todo = {}
        for n in names:
            try:
                rec = self.app.runs.get(n)
            except InputError as exc:
                return _msg(self.message, str(exc))
            if rec.alive:
                return _msg(self.message, f"{n} is still running")
            if n not in self.app.results:
                todo[n] = rec.path
        _msg(self.message, f"comparing {len(names)} runs …", "info")
        results = self.app.results

        def work():
            for n, p in todo.items():
                results[n] = _analyse(p)
            return names

        self.worker = _Worker(work, None)

    def tick(self):
        w = self.worker
        if w is None or not w.finished:
            return
        self.worker = None
        if w.error:
            return _msg(self.message, f"comparison failed: {w.error}")
        names, _ = w.result
        self.show(names)

    def show(self, names):
        import xarray as xr

        from rotorlab.analysis import mode_contributions

        res = {n: self.app.results[n] for n in names}

        def label(n):
            s = res[n]["spec"]
            mode = s.get("mode")
            if isinstance(mode, list):
                mode = "+".join(f"{k}:{m}" for k, m in mode)
            return f"{s.get('material')} {mode} {s.get('temperature'):g} K"

        labels = [label(n) for n in names]
        sig = []
        rows = []
        for n, lab in zip(names, labels):
            tr = res[n].get("transport")
            if not tr:
                rows.append(f"<tr><td>{lab}</td><td colspan=2>no transport result</td></tr>")
                sig.append((lab, np.nan, np.nan, False))
                continue
            val = tr["sigma_bound"] if tr["below"] else tr["sigma"]
            sig.append((lab, val, tr["sigma_err"], tr["below"]))
            err = "" if tr["below"] else f"{tr['sigma_err']:.1e}"
            note = "" if tr["below"] or tr["diffusive"] else " (not diffusive: run longer)"
            rows.append(f"<tr><td>{lab}</td><td>{'< ' if tr['below'] else ''}{val:.3e}{note}"
                        f"</td><td>{err}</td><td>{tr['D']:.3e}</td></tr>")
        html = ("<table><tr><th>run</th><th>σ (mS/cm)</th><th>± </th><th>D_tr (cm²/s)</th></tr>"
                + "".join(rows) + "</table>")
        plots = []
        f = _fig("Conductivity (open: upper bound, below measurable)", "run", "log10 σ (mS/cm)",
                 x_range=labels, width=700)
        for lab, v, e, below in sig:
            if np.isfinite(v) and v > 0:
                f.vbar(x=[lab], top=[np.log10(v)], width=0.7,
                       fill_alpha=0.2 if below else 0.8, line_color="black")
        f.xaxis.major_label_orientation = 0.6
        plots.append(_plot(f, "rl-sigma-bars"))
        # Arrhenius: log10 σT? keep σ vs 1000/T per mode
        by_mode: dict = {}
        for n, (lab, v, e, below) in zip(names, sig):
            s = res[n]["spec"]
            if np.isfinite(v) and v > 0:
                by_mode.setdefault(str(s.get("mode")), []).append((1000 / s["temperature"],
                                                                   np.log10(v), below))
        if any(len(v) for v in by_mode.values()):
            fa = _fig("Arrhenius", "1000/T (1/K)", "log10 σ (mS/cm)")
            for m, pts in by_mode.items():
                pts.sort()
                colour = MODE_COLOURS.get(m, "#7f7f7f")
                fa.line([p[0] for p in pts], [p[1] for p in pts], color=colour, legend_label=m)
                fa.scatter([p[0] for p in pts], [p[1] for p in pts], color=colour, size=8)
            plots.append(_plot(fa, "rl-arrhenius"))
        # mode contributions at each temperature with UC, RC, RTC, RTVC
        by_T: dict = {}
        for n in names:
            s, tr = res[n]["spec"], res[n].get("transport")
            if tr and isinstance(s.get("mode"), str):
                by_T.setdefault(float(s["temperature"]), {})[s["mode"]] = tr
        for T, modes in sorted(by_T.items()):
            if not all(m in modes for m in ("UC", "RC", "RTC", "RTVC")):
                continue
            order = ["UC", "RC", "RTC", "RTVC"]
            sg = xr.DataArray([np.nan if modes[m]["below"] else modes[m]["sigma"] for m in order],
                              dims="mode", coords={"mode": order})
            sb = xr.DataArray([modes[m]["sigma_bound"] for m in order], dims="mode",
                              coords={"mode": order})
            mc = mode_contributions(sg, sb)
            cells = "".join(
                f"<tr><td>{c}</td><td>{float(mc['delta'].sel(contribution=c)):.2f} "
                f"({mc['delta_kind'].sel(contribution=c).item()})</td>"
                f"<td>{float(mc['r'].sel(contribution=c)):.2f} [{float(mc['r_lo'].sel(contribution=c)):.2f}, "
                f"{float(mc['r_hi'].sel(contribution=c)):.2f}] ({mc['r_kind'].sel(contribution=c).item()})</td></tr>"
                for c in mc["contribution"].values)
            html += (f"<h4>Mode contributions at {T:g} K</h4><table><tr><th>mode</th>"
                     f"<th>Δ (decades)</th><th>r_mode [range] (kind)</th></tr>{cells}</table>")
        dos_runs = [(lab, res[n]["dos"]) for n, lab in zip(names, labels) if res[n].get("dos")]
        if dos_runs:
            fd = _fig("Phonon DOS", "energy (meV)", "DOS (1/meV)", width=700)
            palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
            for (lab, d), colour in zip(dos_runs, palette * 4):
                fd.line(d["E"], d["dos"], color=colour, legend_label=lab, line_width=2)
            plots.append(_plot(fd, "rl-dos-compare"))
        dens = [(lab, res[n]) for n, lab in zip(names, labels) if res[n].get("density")]
        if dens:
            figs = []
            for lab, r in dens:
                fp = _fig(f"{r.get('mobile')} density: {lab}", "position (Å)", "n (1/Å³)",
                          width=340, height=260)
                for ax, colour in zip("abc", ("#1f77b4", "#ff7f0e", "#2ca02c")):
                    x, y = r["density"]["profiles"][ax]
                    fp.line(x, y, color=colour, legend_label=ax)
                figs.append(pn.pane.Bokeh(fp))
            plots.append(pn.Row(*figs, css_classes=["rl-density-compare"]))
        self.table.object = html
        self.plots.objects = plots
        _msg(self.message, f"compared {len(names)} runs", "success")

    def __panel__(self):
        return pn.Column("## Compare", self.select, self.go, self.message, self.table, self.plots)


class Explorer(pn.viewable.Viewer):
    """The whole app: Set up / Run / Watch / Analyse / Compare tabs of one session."""

    def __init__(self, config=None, session_id=None, **params):
        super().__init__(**params)
        self.config = config or config_from_env()
        self.runs = RunManager(self.config, session_id or _session_id())
        self.results: dict = {}
        self.setup = SetupPanel(self)
        self.run_panel = RunPanel(self)
        self.watch = WatchPanel(self)
        self.analyse = AnalysePanel(self)
        self.compare = ComparePanel(self)
        self.tabs = pn.Tabs(("Set up", self.setup), ("Run", self.run_panel),
                            ("Watch", self.watch), ("Analyse", self.analyse),
                            ("Compare", self.compare), dynamic=False, css_classes=["rl-tabs"])
        self._cb = None
        self.refresh_runs()

    def refresh_runs(self, select=None):
        self.run_panel.tick()
        if select is not None and select in self.run_panel.select.options:
            self.run_panel.select.value = select
        names = [r["name"] for r in self.runs.list()]
        done = self.runs.completed()
        for sel in (self.watch.select,):
            if names != list(sel.options):
                keep = sel.value if sel.value in names else (names[-1] if names else None)
                sel.options = names
                sel.value = keep
        for sel in (self.analyse.select,):
            if done != list(sel.options):
                keep = sel.value if sel.value in done else (done[-1] if done else None)
                sel.options = done
                sel.value = keep
        if done != list(self.compare.select.options):
            self.compare.select.options = done

    def _tick(self):
        try:
            self.refresh_runs()
            self.analyse.tick()
            self.compare.tick()
        except Exception as exc:  # never let the periodic update die silently
            _msg(self.setup.message, f"update failed: {type(exc).__name__}: {exc}")

    def _on_destroyed(self, session_context):
        for r in self.runs.list():
            try:
                rec = self.runs.get(r["name"])
                if rec.alive:
                    self.runs.cancel(r["name"])
            except InputError:
                pass

    def __panel__(self):
        if self._cb is None:
            self._cb = pn.state.add_periodic_callback(self._tick, period=TICK_MS)
            if pn.state.curdoc is not None and getattr(pn.state.curdoc, "session_context", None):
                pn.state.on_session_destroyed(self._on_destroyed)
        where = (f"shared results folder {self.config.shared_results}"
                 if self.config.shared_results else "this browser session's folder")
        return pn.Column(
            pn.pane.Markdown(f"# rotorlab Explorer\nRuns are kept in {where}. The reference "
                             "force field is for trying the machinery, not for physics.",
                             width=900),
            self.tabs)


if pn.state.served:
    Explorer().servable(title="rotorlab Explorer")
