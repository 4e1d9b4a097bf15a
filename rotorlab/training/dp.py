"""DeePMD-kit training as subprocesses (``input.json``, ``dp train``, ``freeze``, ``compress``)
and model errors on labelled data (:func:`test`, in-process).

Every DeePMD-kit command runs in its own process with explicit thread settings
(:func:`thread_env`), so TensorFlow's global state never touches the caller (the teacher's
torch, rotorlab's numba) and each ensemble member can run on one thread while others run
beside it (:func:`train_members`, ``jobs``).

>>> cfg = input_json(["Li", "P", "S"], ["data/a"], ["data/test"], numb_steps=20000, seed=1)
>>> model = train(cfg, "train/member.0", threads=1)       # -> train/member.0/model.pb
>>> compress(model, "model-compressed.pb", step=0.05)
>>> test(model, "data/test")          # RMSEs (meV/atom, meV/Å), evaluated in this process
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["input_json", "thread_env", "dp_executable", "train", "freeze", "compress", "test",
           "train_members", "DPError", "PILOT", "read_lcurve", "energy_bias_shift",
           "set_energy_bias", "read_energy_bias", "pin_energy_bias", "BIAS_NODE"]

#: The measured pilot's network (ENVIRONMENT.md "Teacher → student"): se_e2_a, rcut 5.5,
#: embedding [16, 32, 64], axis 8, fitting [120, 120, 120].
PILOT = {"rcut": 5.5, "rcut_smth": 0.5, "neuron": [16, 32, 64], "axis_neuron": 8,
         "fitting": [120, 120, 120]}


class DPError(RuntimeError):
    """A DeePMD-kit command failed (the message ends with its log tail)."""


def dp_executable() -> str:
    """Path of the ``dp`` command of this Python environment (else the one on PATH)."""
    here = Path(sys.executable).parent / "dp"
    if here.is_file():
        return str(here)
    found = shutil.which("dp")
    if not found:
        raise DPError("DeePMD-kit's 'dp' command was not found (pip install deepmd-kit)")
    return found


def thread_env(threads: int = 1, base=None) -> dict:
    """Environment with every thread pool (TensorFlow, OpenMP, BLAS, numba) set to ``threads``."""
    env = dict(os.environ if base is None else base)
    t = str(int(threads))
    for k in ("OMP_NUM_THREADS", "DP_INTRA_OP_PARALLELISM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[k] = t
    env["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "")
    return env


def input_json(type_map, train_systems, valid_systems=None, *, numb_steps=20000, seed=1,
               rcut=PILOT["rcut"], rcut_smth=PILOT["rcut_smth"], neuron=PILOT["neuron"],
               axis_neuron=PILOT["axis_neuron"], fitting=PILOT["fitting"], sel="auto",
               start_lr=2e-3, stop_lr=3.5e-5, decay_steps=None, batch_size=1,
               start_pref_e=0.02, limit_pref_e=1.0, start_pref_f=1000.0, limit_pref_f=1.0,
               start_pref_v=0.0, limit_pref_v=0.0, disp_freq=None, save_freq=None) -> dict:
    """A DeePMD-kit (TensorFlow) ``input.json`` for an se_e2_a energy model.

    Parameters
    ----------
    type_map : sequence of str
        Fixed element order.
    train_systems, valid_systems : sequence of path
        DeePMD npy systems (directories with ``type.raw``).
    numb_steps : int
        Training steps (batches).
    seed : int
        Seeds of descriptor, fitting net and training (ensemble members differ by it).
    rcut, rcut_smth : float
        [Å].
    neuron, axis_neuron, fitting : network sizes (default: the pilot's).
    sel : "auto" or list of int
        Neighbour counts per type.
    start_lr, stop_lr : float
        Exponential learning-rate schedule; ``decay_steps`` default ``max(numb_steps//200, 10)``.
    batch_size : int or "auto"

    Returns
    -------
    dict
    """
    numb_steps = int(numb_steps)
    decay = int(decay_steps) if decay_steps else max(numb_steps // 200, 10)
    disp = int(disp_freq) if disp_freq else max(numb_steps // 20, 1)
    save = int(save_freq) if save_freq else max(numb_steps // 4, 1)
    cfg = {
        "model": {
            "type_map": [str(t) for t in type_map],
            "descriptor": {"type": "se_e2_a", "sel": sel, "rcut_smth": float(rcut_smth),
                           "rcut": float(rcut), "neuron": list(neuron), "resnet_dt": False,
                           "axis_neuron": int(axis_neuron), "type_one_side": False,
                           "seed": int(seed)},
            "fitting_net": {"neuron": list(fitting), "resnet_dt": True, "seed": int(seed)},
        },
        "learning_rate": {"type": "exp", "start_lr": float(start_lr), "stop_lr": float(stop_lr),
                          "decay_steps": decay},
        "loss": {"type": "ener", "start_pref_e": start_pref_e, "limit_pref_e": limit_pref_e,
                 "start_pref_f": start_pref_f, "limit_pref_f": limit_pref_f,
                 "start_pref_v": start_pref_v, "limit_pref_v": limit_pref_v},
        "training": {
            "training_data": {"systems": [str(s) for s in train_systems],
                              "batch_size": batch_size},
            "numb_steps": numb_steps, "seed": int(seed), "disp_file": "lcurve.out",
            "disp_freq": disp, "save_freq": save, "save_ckpt": "model.ckpt",
        },
    }
    if valid_systems:
        cfg["training"]["validation_data"] = {"systems": [str(s) for s in valid_systems],
                                              "batch_size": 1, "numb_btch": 1}
    return cfg


def _run(args, cwd, threads, log_name):
    cwd = Path(cwd)
    log = cwd / log_name
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(map(str, args))}\n".encode())
        fh.flush()
        proc = subprocess.run([str(a) for a in args], cwd=cwd, env=thread_env(threads),
                              stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise DPError(f"{' '.join(map(str, args))} failed (exit {proc.returncode}) in {cwd}; "
                      f"log {log}:\n{tail}")


def train(config: dict, directory, *, threads: int = 1, init_frz_model=None, init_model=None,
          restart: bool = True, output="model.pb", skip_neighbor_stat=False) -> dict:
    """Train one model with ``dp train`` and freeze it to ``directory/output``.

    Parameters
    ----------
    config : dict
        From :func:`input_json` (written to ``directory/input.json``).
    directory : path
        Work directory (created). A finished ``output`` there is reused when it was trained
        for at least ``numb_steps``; one trained on a shorter schedule (the step count grew
        when a loop was resumed) continues from its checkpoint to ``numb_steps``, the
        shorter model kept as ``model.<N>-steps.pb``. A training killed part-way restarts
        from its last checkpoint (``restart=True``).
    init_frz_model : path, optional
        Start from a frozen model (``dp train --init-frz-model``: later iterations continue
        from the previous iteration's members with a short schedule).
    init_model : path, optional
        Checkpoint prefix (``--init-model``).
    threads : int

    Returns
    -------
    dict
        ``model`` (path), ``seconds`` (train wall time), ``steps``, ``steps_per_s``,
        ``reused`` (bool); ``extended`` (``from_steps``, ``kept``) when a shorter finished
        model was continued; ``shorter_than_asked`` when one was reused because it has no
        checkpoint to continue from.

    Raises
    ------
    DPError
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = d / output
    info_path = d / "train_info.json"
    ckpt = d / "checkpoint"
    has_ckpt = ckpt.is_file() and (d / "model.ckpt.index").is_file()
    want = int(config["training"]["numb_steps"])
    extended = None
    if out.is_file() and info_path.is_file():
        info = json.loads(info_path.read_text())
        done = int(info.get("steps", want))
        if done >= want or not (restart and has_ckpt):
            info["reused"] = True
            if done < want:
                info["shorter_than_asked"] = {"asked": want, "checkpoint": False}
            return info
        # finished on a shorter schedule (the step count grew on resume, e.g. a larger
        # --next-steps): continue from its checkpoint; the shorter model is kept aside
        kept = _free_name(out.with_name(f"{out.stem}.{done}-steps{out.suffix}"))
        out.rename(kept)
        info_path.rename(_free_name(d / f"train_info.{done}-steps.json"))
        extended = {"from_steps": done, "kept": kept.name}
    (d / "input.json").write_text(json.dumps(config, indent=2) + "\n")
    args = [dp_executable(), "--tf", "train", "input.json"]
    resumed = False
    if restart and has_ckpt:
        args += ["--restart", "model.ckpt"]
        resumed = True
    elif init_frz_model is not None:
        args += ["--init-frz-model", str(Path(init_frz_model).resolve())]
    elif init_model is not None:
        args += ["--init-model", str(init_model)]
    if skip_neighbor_stat:
        args.append("--skip-neighbor-stat")
    t0 = time.perf_counter()
    _run(args, d, threads, "train.log")
    seconds = time.perf_counter() - t0
    freeze(d, out.name, threads=threads)
    steps = int(config["training"]["numb_steps"])
    info = {"model": str(out), "seconds": round(seconds, 2), "steps": steps,
            "steps_per_s": round(steps / seconds, 3) if seconds > 0 and not resumed else None,
            "resumed_from_checkpoint": resumed, "threads": int(threads),
            "init_frz_model": str(init_frz_model) if init_frz_model else None,
            "size_bytes": out.stat().st_size, "reused": False}
    if extended:
        info["extended"] = extended
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return info


def _free_name(path: Path) -> Path:
    """``path``, or ``path`` with ``-2``, ``-3`` ... before its suffix when it exists."""
    path = Path(path)
    k, cand = 1, path
    while cand.exists():
        k += 1
        cand = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return cand


def freeze(directory, output="model.pb", *, threads: int = 1) -> Path:
    """``dp freeze`` the checkpoint in ``directory`` to ``directory/output``."""
    d = Path(directory)
    _run([dp_executable(), "--tf", "freeze", "-o", output], d, threads, "freeze.log")
    return d / output


def compress(model, output, *, step: float = 0.05, threads: int = 1) -> Path:
    """``dp compress`` a frozen model (tabulated embedding nets, ``-s step``).

    ``step`` 0.05 gives a ~4× smaller file than the default 0.01 at the same accuracy
    (ENVIRONMENT.md pilot: 7.8 vs 29.6 MB).
    """
    model = Path(model).resolve()
    out = Path(output).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([dp_executable(), "--tf", "compress", "-i", str(model), "-o", str(out), "-s",
          str(step)], out.parent, threads, "compress.log")
    return out


_DEEPPOT_CACHE: dict = {}


def _deeppot(model):
    """A cached ``deepmd.infer.DeepPot`` (TensorFlow is initialised in this process)."""
    from rotorlab.potentials.deepmd import set_threads, thread_settings

    key = (str(Path(model).resolve()), Path(model).stat().st_mtime_ns)
    if key not in _DEEPPOT_CACHE:
        if not thread_settings()["initialised"] and not os.environ.get(
                "DP_INTRA_OP_PARALLELISM_THREADS"):
            set_threads(1)
        from deepmd.infer import DeepPot

        _DEEPPOT_CACHE.clear()
        _DEEPPOT_CACHE[key] = DeepPot(str(Path(model).resolve()))
    return _DEEPPOT_CACHE[key]


def _predictions(model, data, batch_atoms: int = 4096):
    """Yield ``(counts, arrays, energy, force, virial)`` per system of ``data``.

    ``counts`` (n_types,) is the number of atoms of each of the model's types; energies
    (F,) eV, forces (F, N, 3) eV/Å, virials (F, 3, 3) eV are the model's predictions on the
    system's frames (``arrays``: :func:`rotorlab.training.data.load_arrays`).
    """
    from rotorlab.training.data import load_arrays

    dp = _deeppot(model)
    tmap = list(dp.get_type_map())
    dirs = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    for d in dirs:
        for name, arr in load_arrays(d).items():
            names = arr["type_map"]
            missing = sorted(set(names[t] for t in arr["type"]) - set(tmap))
            if missing:
                raise ValueError(f"{d}/{name}: elements {missing} are not in the model's "
                                 f"type map {tmap}")
            atype = np.array([tmap.index(names[t]) for t in arr["type"]], dtype=int)
            n = atype.size
            nf = arr["energy"].shape[0]
            step = max(1, batch_atoms // n)
            es, fs, vs = [], [], []
            for a in range(0, nf, step):
                sl = slice(a, min(nf, a + step))
                e, f, v = dp.eval(arr["coord"][sl].reshape(-1, n * 3),
                                  arr["box"][sl].reshape(-1, 9), atype)[:3]
                es.append(np.asarray(e).reshape(-1))
                fs.append(np.asarray(f).reshape(-1, n, 3))
                vs.append(np.asarray(v).reshape(-1, 3, 3))
            counts = np.bincount(atype, minlength=len(tmap))
            yield counts, arr, np.concatenate(es), np.concatenate(fs), np.concatenate(vs)


def test(model, data, *, batch_atoms: int = 4096) -> dict:
    """Errors of a model on labelled data, like Table 1 of the study (evaluated in-process).

    Parameters
    ----------
    model : path
        Frozen model (``.pb``).
    data : path or sequence of path
        Data sets (directories containing DeePMD npy systems).

    Returns
    -------
    dict
        ``energy_rmse_meV_atom``, ``energy_rmse_offset_meV_atom`` (after removing the mean
        per-atom energy offset), ``energy_offset_meV_atom`` (mean prediction − label),
        ``force_rmse_meV_A`` (over all force components), ``virial_rmse_meV_atom`` (when the
        data have virials), ``force_std_meV_A`` (of the labels), ``n_frames``, ``n_atoms``.
    """
    de, df, flab, dv, natoms = [], [], [], [], set()
    for counts, arr, e, f, v in _predictions(model, data, batch_atoms):
        n = int(counts.sum())
        natoms.add(n)
        de.append((e - arr["energy"]) / n)
        df.append((f - arr["force"]).ravel())
        flab.append(arr["force"].ravel())
        if "virial" in arr:
            dv.append(((v - arr["virial"]) / n).ravel())
    if not de:
        raise ValueError(f"no DeePMD systems in {data}")
    de, df, flab = np.concatenate(de), np.concatenate(df), np.concatenate(flab)
    res = {"n_frames": int(de.size), "n_atoms": sorted(natoms),
           "energy_rmse_meV_atom": float(1e3 * np.sqrt(np.mean(de ** 2))),
           "energy_offset_meV_atom": float(1e3 * de.mean()),
           "energy_rmse_offset_meV_atom": float(1e3 * np.std(de)),
           "force_rmse_meV_A": float(1e3 * np.sqrt(np.mean(df ** 2))),
           "force_std_meV_A": float(1e3 * np.std(flab))}
    if dv:
        dv = np.concatenate(dv)
        res["virial_rmse_meV_atom"] = float(1e3 * np.sqrt(np.mean(dv ** 2)))
    return res


#: Name of the per-type atomic energy bias in a frozen DeePMD (TensorFlow) energy model.
BIAS_NODE = "fitting_attr/t_bias_atom_e"


def energy_bias_shift(model, data, *, batch_atoms: int = 4096) -> dict:
    """The least-squares change of a model's per-type atomic energies that best matches
    the labelled energies of ``data``.

    Solves ``min_δ Σ_frames (E_label − E_model − Σ_t n_t δ_t)²`` (``n_t``: atoms of type
    ``t`` in the frame) with the minimum-norm solution: when every frame has the same
    composition (one material) the matrix has rank 1 and only the shift per formula unit
    is determined; the minimum-norm δ is proportional to the composition. Types absent
    from every frame get δ = 0. This is what DeePMD-kit's ``dp change-bias -m change`` does
    for a checkpoint; it is not available there for frozen models.

    Parameters
    ----------
    model : path
        Frozen model (``.pb``).
    data : path or sequence of path
        Labelled data sets (the training data: never the held-out test frames).

    Returns
    -------
    dict
        ``delta_eV`` (dict type → eV per atom, in the model's type order), ``rank``,
        ``n_frames``, ``energy_rmse_before_meV_atom``, ``energy_rmse_after_meV_atom``,
        ``energy_offset_before_meV_atom`` (mean prediction − label per atom).
    """
    tmap = list(_deeppot(model).get_type_map())
    rows, resid, nat = [], [], []
    for counts, arr, e, _f, _v in _predictions(model, data, batch_atoms):
        rows.append(np.tile(counts, (e.size, 1)))
        resid.append(arr["energy"] - e)
        nat.append(np.full(e.size, counts.sum()))
    if not rows:
        raise ValueError(f"no DeePMD systems in {data}")
    a, b, nat = np.concatenate(rows).astype(float), np.concatenate(resid), np.concatenate(nat)
    delta, *_ , rank, _sv = np.linalg.lstsq(a, b, rcond=None)
    after = (b - a @ delta) / nat
    return {"delta_eV": {t: float(x) for t, x in zip(tmap, delta)}, "rank": int(rank),
            "n_frames": int(b.size),
            "energy_rmse_before_meV_atom": float(1e3 * np.sqrt(np.mean((b / nat) ** 2))),
            "energy_rmse_after_meV_atom": float(1e3 * np.sqrt(np.mean(after ** 2))),
            "energy_offset_before_meV_atom": float(-1e3 * np.mean(b / nat))}


def read_energy_bias(model) -> dict:
    """The per-type atomic energy bias (eV) stored in a frozen model."""
    from deepmd.tf.env import tf  # noqa: F401  (TensorFlow's protobuf types)
    from tensorflow.python.framework import tensor_util

    gd = _graph_def(model)
    node = _bias_node(gd, model)
    vals = tensor_util.MakeNdarray(node.attr["value"].tensor).reshape(-1)
    tmap = _graph_type_map(gd)
    return {t: float(v) for t, v in zip(tmap, vals)}


def frozen_sel(model) -> list | None:
    """The descriptor's neighbour-list sizes (``sel``, one per type) of a frozen model,
    read from its graph (``descrpt_attr/sel``); None if the graph has none."""
    from tensorflow.python.framework import tensor_util

    for node in _graph_def(model).node:
        if node.name == "descrpt_attr/sel" and node.op == "Const":
            return [int(x) for x in tensor_util.MakeNdarray(node.attr["value"].tensor).ravel()]
    return None


def _graph_def(model):
    from deepmd.tf.env import tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(Path(model).read_bytes())
    return gd


def _bias_node(gd, model):
    for node in gd.node:
        if node.name == BIAS_NODE and node.op == "Const":
            return node
    raise ValueError(f"{model}: no {BIAS_NODE!r} constant (not a DeePMD-kit TensorFlow "
                     "energy model?)")


def _graph_type_map(gd) -> list:
    from tensorflow.python.framework import tensor_util

    for node in gd.node:
        if node.name == "model_attr/tmap" and node.op == "Const":
            return tensor_util.MakeNdarray(node.attr["value"].tensor).item().decode().split()
    raise ValueError("no model_attr/tmap in the graph")


def set_energy_bias(model, output, delta_eV: dict) -> Path:
    """Write a copy of a frozen model whose per-type atomic energies are shifted.

    Only the constant :data:`BIAS_NODE` changes: energies move by ``Σ_t n_t δ_t`` and
    forces, virials and the rest of the graph stay bit-identical. Works for compressed
    models too.

    Parameters
    ----------
    model : path
        Frozen model (``.pb``).
    output : path
        New file (an existing file is refused, and so is ``model`` itself).
    delta_eV : dict
        Element → shift in eV per atom (elements not named are unchanged).

    Returns
    -------
    Path
    """
    from tensorflow.python.framework import tensor_util

    model, output = Path(model), Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists; set_energy_bias writes a new file")
    gd = _graph_def(model)
    node = _bias_node(gd, model)
    tmap = _graph_type_map(gd)
    unknown = sorted(set(delta_eV) - set(tmap))
    if unknown:
        raise ValueError(f"elements {unknown} are not in the model's type map {tmap}")
    old = tensor_util.MakeNdarray(node.attr["value"].tensor)
    new = old.astype(np.float64).reshape(-1).copy()
    for k, t in enumerate(tmap):
        new[k] += float(delta_eV.get(t, 0.0))
    node.attr["value"].tensor.CopyFrom(
        tensor_util.make_tensor_proto(new.reshape(old.shape).astype(old.dtype)))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    tmp.write_bytes(gd.SerializeToString())
    tmp.rename(output)
    return output


def pin_energy_bias(model, data, output, *, batch_atoms: int = 4096) -> dict:
    """:func:`energy_bias_shift` on ``data`` then :func:`set_energy_bias` into ``output``.

    Returns the shift's record plus ``model`` (the new path) and ``bias_before_eV`` /
    ``bias_after_eV`` (per type).
    """
    info = energy_bias_shift(model, data, batch_atoms=batch_atoms)
    info["bias_before_eV"] = read_energy_bias(model)
    set_energy_bias(model, output, info["delta_eV"])
    info["bias_after_eV"] = read_energy_bias(output)
    info["model"] = str(output)
    return info


def read_lcurve(directory) -> np.ndarray:
    """The learning curve ``lcurve.out`` of a training directory (structured array)."""
    return np.genfromtxt(Path(directory) / "lcurve.out", names=True)


def train_members(configs, directories, *, jobs: int = 1, threads: int = 1,
                  init_frz_models=None) -> list:
    """Train several ensemble members, ``jobs`` at a time, each with ``threads`` threads.

    Parameters
    ----------
    configs : sequence of dict
        One ``input.json`` per member (different seeds).
    directories : sequence of path
    jobs : int
        Members trained concurrently (separate processes).
    init_frz_models : sequence of path or None

    Returns
    -------
    list of dict
        :func:`train` results in member order.
    """
    configs = [copy.deepcopy(c) for c in configs]
    inits = list(init_frz_models) if init_frz_models else [None] * len(configs)
    if not (len(configs) == len(directories) == len(inits)):
        raise ValueError("configs, directories and init_frz_models must have the same length")

    def one(k):
        return train(configs[k], directories[k], threads=threads, init_frz_model=inits[k])

    if int(jobs) <= 1:
        return [one(k) for k in range(len(configs))]
    with ThreadPoolExecutor(max_workers=int(jobs)) as ex:
        return list(ex.map(one, range(len(configs))))
