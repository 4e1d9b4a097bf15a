"""Choose the descriptor and network sizes by measurement.

For each candidate network, train on the same labelled data for the same number of steps
and record training steps/s, inference ms per call on a cell (frozen and compressed) and
the held-out errors. The rows go to a JSON file so the choice is documented.

>>> rows = sweep(loop_workdir / "data", test_dir, cell, candidates=CANDIDATES, steps=5000,
...              workdir="sweep", type_map=["Li", "P", "S"])
"""

from __future__ import annotations

import json
import time
from pathlib import Path

__all__ = ["CANDIDATES", "sweep"]

#: Network sizes tried by default (the pilot's first).
CANDIDATES = [
    {"name": "pilot", "rcut": 5.5, "neuron": [16, 32, 64], "axis_neuron": 8,
     "fitting": [120, 120, 120]},
    {"name": "small", "rcut": 5.0, "neuron": [8, 16, 32], "axis_neuron": 4,
     "fitting": [64, 64, 64]},
    {"name": "wide-fit", "rcut": 5.5, "neuron": [16, 32, 64], "axis_neuron": 8,
     "fitting": [240, 240, 240]},
    {"name": "rcut6", "rcut": 6.0, "neuron": [25, 50, 100], "axis_neuron": 12,
     "fitting": [240, 240, 240]},
]


def sweep(train_sets, test_dir, cell, *, candidates=CANDIDATES, steps=5000, workdir="sweep",
          type_map, threads=1, seed=1, compress_step=0.05, output=None) -> list:
    """Train each candidate network and measure speed and accuracy.

    Parameters
    ----------
    train_sets : sequence of path
        Data sets (DeePMD systems below them) to train on.
    test_dir : path
        Held-out data set.
    cell : ase.Atoms
        Cell for the inference timing (the material's quick cell).
    candidates : sequence of dict
        ``name``, ``rcut`` [Å], ``neuron``, ``axis_neuron``, ``fitting``.
    steps : int
        Training steps per candidate.
    output : path, optional
        JSON file for the rows (default ``workdir/sweep.json``).

    Returns
    -------
    list of dict
        Per candidate: the sizes, ``steps_per_s``, ``train_seconds``,
        ``inference_ms_frozen``, ``inference_ms_compressed``, ``test`` (see
        :func:`rotorlab.training.dp.test`), ``size_bytes`` (frozen, compressed).
    """
    from rotorlab.training import dp
    from rotorlab.training.checks import inference_ms
    from rotorlab.training.data import systems

    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    train_sys = [p.resolve() for st in train_sets for p in systems(st)]
    rows = []
    for c in candidates:
        d = wd / c["name"]
        cfg = dp.input_json(type_map, train_sys, None, numb_steps=steps, seed=seed,
                            rcut=c["rcut"], neuron=c["neuron"], axis_neuron=c["axis_neuron"],
                            fitting=c["fitting"])
        t0 = time.time()
        res = dp.train(cfg, d, threads=threads)
        comp = d / "model-compressed.pb"
        if not comp.is_file():
            dp.compress(res["model"], comp, step=compress_step, threads=threads)
        row = dict(c, steps=int(steps), steps_per_s=res.get("steps_per_s"),
                   train_seconds=res.get("seconds"), wall_seconds=round(time.time() - t0, 1),
                   inference_ms_frozen=round(inference_ms(res["model"], cell), 3),
                   inference_ms_compressed=round(inference_ms(comp, cell), 3),
                   n_atoms=len(cell), test=dp.test(res["model"], test_dir),
                   size_bytes={"frozen": Path(res["model"]).stat().st_size,
                               "compressed": comp.stat().st_size}, threads=threads)
        rows.append(row)
        out = Path(output) if output else wd / "sweep.json"
        out.write_text(json.dumps(rows, indent=2) + "\n")
    return rows
