"""Make the tiny DeePMD-kit test models of LiBH4 (``model.pb``, ``model-seed2.pb``, ``model-seed3.pb``).

These are **test fixtures**, not physics: small se_e2_a networks trained for about a
minute each on LiBH4-like configurations labelled by the analytic "teacher" below.
They let the test-suite and the benchmarks exercise the real DeePMD-kit code path
(TensorFlow ``.pb`` through ``deepmd.infer.DeepPot``) without a production model.

Teacher (plain NumPy, energies in eV, lengths in Å)
---------------------------------------------------
* inside each BH4 unit: harmonic B–H bonds ``k_b/2 (r - r_0)^2`` (k_b = 20 eV/Å²,
  r_0 = 1.22 Å) and H–B–H angles ``k_a/2 (cos θ - cos θ_0)^2`` (k_a = 4 eV,
  θ_0 = 109.47°);
* between atoms not in the same BH4 unit: Born–Mayer repulsion ``A exp(-r/ρ)`` plus a
  screened (Yukawa) Coulomb term ``14.3996 q_i q_j exp(-r/λ)/r`` (λ = 2 Å; charges
  Li +0.8, B +0.4, H −0.3 e, so BH4 is −0.8 e), both in shifted-force form at the
  cut-off r_c = 4.5 Å (energy and force go to zero continuously at r_c).

Data
----
The 2×2×2 supercell of ``rotorlab.materials.get("LiBH4", (2, 2, 2))`` (96 atoms) is
relaxed under the teacher, then Langevin MD with the teacher (ASE, dt = 0.5 fs) at 300,
600 and 900 K gives frames every 20 steps; a further set is made of MD frames with
extra random displacements (σ = 0.06 Å) and ±2 % random cell strains. Frames are
shuffled with a fixed seed and split 80/20 into train/test systems (DeePMD ``npy``
format, type_map ``["Li", "B", "H"]``).

Training
--------
``dp --tf train input.json`` with three seeds (the first model is ``model.pb``, the
others make a small ensemble for model-deviation tests), then ``dp --tf freeze`` and,
where it works, ``dp --tf compress -s 0.05`` of the first model (``model-compressed.pb``;
the coarser table step keeps the file at ~2.5 MB instead of ~12 MB).
RMSEs of energy (per atom) and forces on the train and test sets are written to
``card.json`` and ``CARD.md``.

Run from anywhere (takes ~4–6 min on 2 cores)::

    python datasets/models/tiny-LiBH4/make_model.py [--steps 6000] [--threads 2] [--keep-data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TYPE_MAP = ["Li", "B", "H"]
COULOMB = 14.399645  # e^2 / (4 pi eps0) in eV Å

# ---------------------------------------------------------------- teacher potential
K_BOND, R0_BOND = 20.0, 1.22
K_ANGLE, COS0 = 4.0, -1.0 / 3.0
RC, LAMBDA = 4.5, 2.0
CHARGE = {"Li": 0.8, "B": 0.4, "H": -0.3}
# Born–Mayer (A [eV], rho [Å]) per unordered element pair
BORN_MAYER = {
    ("Li", "Li"): (300.0, 0.30),
    ("Li", "B"): (400.0, 0.30),
    ("Li", "H"): (300.0, 0.28),
    ("B", "B"): (300.0, 0.35),
    ("B", "H"): (200.0, 0.30),
    ("H", "H"): (100.0, 0.30),
}


def _pair_terms(r, A, rho, qq):
    """Pair energy and dE/dr (not yet shifted) for arrays of distances r [Å]."""
    rep = A * np.exp(-r / rho)
    drep = -rep / rho
    ex = np.exp(-r / LAMBDA)
    coul = COULOMB * qq * ex / r
    dcoul = -coul * (1.0 / r + 1.0 / LAMBDA)
    return rep + coul, drep + dcoul


class Teacher:
    """Analytic LiBH4-like force field (see module docstring).

    Parameters
    ----------
    symbols : list of str
        Chemical symbols (Li, B, H only).
    groups : ndarray of int, shape (n_units, 5)
        Atom indices of each BH4 unit, B first.
    """

    def __init__(self, symbols, groups):
        self.symbols = np.asarray(symbols)
        self.groups = np.asarray(groups, dtype=int)
        n = len(symbols)
        self.unit = np.full(n, -1)
        for u, g in enumerate(self.groups):
            self.unit[g] = u
        self.q = np.array([CHARGE[s] for s in symbols])
        self.kind = np.array([TYPE_MAP.index(s) for s in symbols])
        nt = len(TYPE_MAP)
        self.A = np.zeros((nt, nt))
        self.rho = np.ones((nt, nt))
        for (a, b), (A, rho) in BORN_MAYER.items():
            ia, ib = TYPE_MAP.index(a), TYPE_MAP.index(b)
            self.A[ia, ib] = self.A[ib, ia] = A
            self.rho[ia, ib] = self.rho[ib, ia] = rho

    @staticmethod
    def _mic(d, cell):
        frac = d @ np.linalg.inv(cell)
        frac -= np.round(frac)
        return frac @ cell

    @staticmethod
    def _pairs(positions, cell):
        """All ordered pairs (i, j, image) closer than RC: indices, distances, r_j - r_i."""
        inv = np.linalg.inv(cell)
        frac = positions @ inv
        wrapped = (frac - np.floor(frac)) @ cell
        heights = 1.0 / np.linalg.norm(inv, axis=0)
        nmax = np.ceil(RC / heights).astype(int)
        rng = [np.arange(-m, m + 1) for m in nmax]
        shifts = np.stack(np.meshgrid(*rng, indexing="ij"), -1).reshape(-1, 3) @ cell
        D = wrapped[None, :, None, :] + shifts[None, None, :, :] - wrapped[:, None, None, :]
        d = np.linalg.norm(D, axis=-1)
        i, j, s = np.nonzero((d < RC) & (d > 1e-8))
        return i, j, d[i, j, s], D[i, j, s]

    def compute(self, positions, cell):
        """Energy [eV], forces (N, 3) [eV/Å] and virial (3, 3) [eV] (DeePMD convention, W = Σ_i r_i⊗F_i = -dE/dε)."""
        positions = np.asarray(positions, float)
        cell = np.asarray(cell, float)
        n = len(positions)
        forces = np.zeros((n, 3))
        virial = np.zeros((3, 3))
        energy = 0.0

        # intermolecular pairs (shifted force); brute-force neighbour search over images
        i, j, d, D = self._pairs(positions, cell)
        same = (self.unit[i] == self.unit[j]) & (self.unit[i] >= 0) & (d < 2.6)
        keep = ~same & (d > 1e-8)
        i, j, d, D = i[keep], j[keep], d[keep], D[keep]
        ti, tj = self.kind[i], self.kind[j]
        A, rho, qq = self.A[ti, tj], self.rho[ti, tj], self.q[i] * self.q[j]
        e, de = _pair_terms(d, A, rho, qq)
        ec, dec = _pair_terms(np.full_like(d, RC), A, rho, qq)
        e = e - ec - (d - RC) * dec
        de = de - dec
        energy += 0.5 * e.sum()
        fvec = (de / d)[:, None] * D  # force on i from j (ordered pair, full)
        np.add.at(forces, i, fvec)
        # virial W = sum_i r_i (x) F_i = sum_unordered (r_i - r_j) (x) f_i = -0.5 sum_ordered D (x) f
        virial -= 0.5 * np.einsum("pa,pb->ab", D, fvec)

        # intramolecular bonds and angles (vectorised over units)
        g = self.groups
        v = self._mic(positions[g[:, 1:]] - positions[g[:, :1]], cell)  # (U, 4, 3)
        r = np.linalg.norm(v, axis=2)  # (U, 4)
        energy += 0.5 * K_BOND * np.sum((r - R0_BOND) ** 2)
        dEdv = (K_BOND * (r - R0_BOND) / r)[..., None] * v  # gradient wrt v_h
        u = v / r[..., None]
        pa, pc = np.triu_indices(4, 1)
        cos = np.einsum("upk,upk->up", u[:, pa], u[:, pc])  # (U, 6)
        dc = cos - COS0
        energy += 0.5 * K_ANGLE * np.sum(dc**2)
        g_a = (u[:, pc] - cos[..., None] * u[:, pa]) / r[:, pa, None]
        g_c = (u[:, pa] - cos[..., None] * u[:, pc]) / r[:, pc, None]
        for k in range(len(pa)):
            dEdv[:, pa[k]] += K_ANGLE * dc[:, k, None] * g_a[:, k]
            dEdv[:, pc[k]] += K_ANGLE * dc[:, k, None] * g_c[:, k]
        np.add.at(forces, g[:, 1:].reshape(-1), -dEdv.reshape(-1, 3))
        np.add.at(forces, g[:, 0], dEdv.sum(axis=1))
        virial -= np.einsum("uha,uhb->ab", v, dEdv)
        return energy, forces, virial


def find_bh4(atoms):
    """BH4 units (B first) by assigning each H to its nearest B under the minimum image."""
    sym = np.array(atoms.get_chemical_symbols())
    pos = atoms.get_positions()
    cell = atoms.cell.array
    b_idx = np.flatnonzero(sym == "B")
    h_idx = np.flatnonzero(sym == "H")
    d = Teacher._mic(pos[h_idx][:, None, :] - pos[b_idx][None, :, :], cell)
    near = np.argmin(np.linalg.norm(d, axis=2), axis=1)
    groups = []
    for k, b in enumerate(b_idx):
        hs = h_idx[near == k]
        if len(hs) != 4:
            raise RuntimeError(f"B {b} has {len(hs)} H atoms")
        groups.append([b, *hs])
    return np.array(groups)


class TeacherCalculator:
    """Minimal ASE calculator wrapper around :class:`Teacher` (for ASE MD/relaxation)."""

    def __new__(cls, teacher):
        from ase.calculators.calculator import Calculator, all_changes

        class _Calc(Calculator):
            implemented_properties = ["energy", "forces", "free_energy"]

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                e, f, _ = teacher.compute(self.atoms.get_positions(), self.atoms.cell.array)
                self.results = {"energy": e, "free_energy": e, "forces": f}

        return _Calc()


# ---------------------------------------------------------------- data generation
def generate_frames(seed=20250, verbose=True):
    """Return (frames, symbols) with frames a list of (coord, box, energy, force, virial)."""
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.optimize import FIRE
    from ase import units

    sys.path.insert(0, str(HERE.parents[2]))
    from rotorlab import materials

    rng = np.random.default_rng(seed)
    atoms0 = materials.get("LiBH4", (2, 2, 2))
    teacher = Teacher(atoms0.get_chemical_symbols(), find_bh4(atoms0))
    atoms0.calc = TeacherCalculator(teacher)
    FIRE(atoms0, logfile=None).run(fmax=0.05, steps=400)
    t0 = time.time()
    frames = []

    def label(a):
        e, f, v = teacher.compute(a.get_positions(), a.cell.array)
        frames.append((a.get_positions().copy(), a.cell.array.copy(), e, f, v))

    label(atoms0)
    for temp, nsteps in ((300, 1200), (600, 1600), (900, 1600)):
        a = atoms0.copy()
        a.calc = TeacherCalculator(teacher)
        MaxwellBoltzmannDistribution(a, temperature_K=temp, rng=rng)
        md = Langevin(a, 0.5 * units.fs, temperature_K=temp, friction=0.02, rng=rng)
        for k in range(nsteps // 20):
            md.run(20)
            if k >= 5:  # skip the first 100 steps
                label(a)
                # a perturbed copy: random displacements and a small random strain
                b = a.copy()
                strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3)) * (1 - np.eye(3) * 0)
                strain = 0.5 * (strain + strain.T)
                b.set_cell(a.cell.array @ strain, scale_atoms=True)
                b.positions += rng.normal(0.0, 0.06, b.positions.shape)
                label(b)
        if verbose:
            print(f"  teacher MD at {temp} K done ({len(frames)} frames, {time.time() - t0:.0f} s)",
                  flush=True)
    return frames, atoms0.get_chemical_symbols()


def write_system(path, frames, symbols):
    """Write frames in DeePMD npy format (one set)."""
    path = Path(path)
    (path / "set.000").mkdir(parents=True, exist_ok=True)
    types = [TYPE_MAP.index(s) for s in symbols]
    (path / "type.raw").write_text("\n".join(map(str, types)) + "\n")
    (path / "type_map.raw").write_text("\n".join(TYPE_MAP) + "\n")
    nat = len(symbols)
    np.save(path / "set.000/coord.npy", np.array([f[0].reshape(3 * nat) for f in frames]))
    np.save(path / "set.000/box.npy", np.array([f[1].reshape(9) for f in frames]))
    np.save(path / "set.000/energy.npy", np.array([f[2] for f in frames]))
    np.save(path / "set.000/force.npy", np.array([f[3].reshape(3 * nat) for f in frames]))
    np.save(path / "set.000/virial.npy", np.array([f[4].reshape(9) for f in frames]))


# ---------------------------------------------------------------- training
def run(cmd, cwd, env):
    print("  $", " ".join(cmd), flush=True)
    t0 = time.time()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stdout[-4000:], res.stderr[-4000:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {res.returncode})")
    return time.time() - t0


def rmse(model_file, frames, symbols):
    """Energy-per-atom RMSE [meV/atom] and force-component RMSE [meV/Å] of a model."""
    from deepmd.infer import DeepPot

    dp = DeepPot(str(model_file))
    tm = dp.get_type_map()
    types = np.array([tm.index(s) for s in symbols])
    coords = np.array([f[0].reshape(-1) for f in frames])
    boxes = np.array([f[1].reshape(-1) for f in frames])
    e, f, _ = dp.eval(coords, boxes, types)
    e_ref = np.array([fr[2] for fr in frames])
    f_ref = np.array([fr[3] for fr in frames])
    nat = len(symbols)
    e_rmse = np.sqrt(np.mean(((e.reshape(-1) - e_ref) / nat) ** 2)) * 1e3
    f_rmse = np.sqrt(np.mean((f.reshape(f_ref.shape) - f_ref) ** 2)) * 1e3
    return float(e_rmse), float(f_rmse), float(np.std(f_ref) * 1e3)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: input.json)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--keep-data", type=Path, default=None, help="keep data and work dirs here")
    ap.add_argument("--no-compress", action="store_true")
    args = ap.parse_args(argv)

    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(args.threads), DP_INTRA_OP_PARALLELISM_THREADS=str(args.threads),
               DP_INTER_OP_PARALLELISM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    os.environ.update({k: env[k] for k in ("OMP_NUM_THREADS", "DP_INTRA_OP_PARALLELISM_THREADS",
                                           "DP_INTER_OP_PARALLELISM_THREADS", "TF_CPP_MIN_LOG_LEVEL")})
    dp_exe = str(Path(sys.executable).with_name("dp"))
    work = Path(args.keep_data) if args.keep_data else Path(tempfile.mkdtemp(prefix="tinyLiBH4-"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    print(f"work directory: {work}")

    cache = work / "frames.npz"
    t_data = None
    if cache.exists():  # reuse labelled data kept by an earlier --keep-data run
        z = np.load(cache, allow_pickle=False)
        symbols = [str(s) for s in z["symbols"]]
        frames = list(zip(z["coord"], z["box"], z["energy"], z["force"], z["virial"]))
        print(f"reusing {len(frames)} labelled frames from {cache}")
    else:
        print("labelling configurations with the analytic teacher ...")
        frames, symbols = generate_frames()
        t_data = time.time() - t_start
        if args.keep_data:
            np.savez(cache, symbols=np.array(symbols), coord=np.array([f[0] for f in frames]),
                     box=np.array([f[1] for f in frames]), energy=np.array([f[2] for f in frames]),
                     force=np.array([f[3] for f in frames]), virial=np.array([f[4] for f in frames]))
    rng = np.random.default_rng(7)
    order = rng.permutation(len(frames))
    n_train = int(0.8 * len(frames))
    train = [frames[k] for k in order[:n_train]]
    test = [frames[k] for k in order[n_train:]]
    write_system(work / "data/train", train, symbols)
    write_system(work / "data/test", test, symbols)

    base = json.loads((HERE / "input.json").read_text())
    if args.steps:
        base["training"]["numb_steps"] = args.steps
    base["training"]["training_data"]["systems"] = [str(work / "data/train")]
    base["training"]["validation_data"]["systems"] = [str(work / "data/test")]

    outputs, train_times = [], []
    for k, seed in enumerate(args.seeds):
        wd = work / f"train-seed{seed}"
        wd.mkdir(exist_ok=True)
        cfg = json.loads(json.dumps(base))
        cfg["model"]["descriptor"]["seed"] = seed
        cfg["model"]["fitting_net"]["seed"] = seed
        cfg["training"]["seed"] = seed
        (wd / "input.json").write_text(json.dumps(cfg, indent=2))
        tt = run([dp_exe, "--tf", "train", "input.json"], wd, env)
        run([dp_exe, "--tf", "freeze", "-o", "frozen.pb"], wd, env)
        name = "model.pb" if k == 0 else f"model-seed{seed}.pb"
        shutil.copy(wd / "frozen.pb", HERE / name)
        outputs.append(name)
        train_times.append(tt)
        print(f"  seed {seed}: trained in {tt:.0f} s -> {name}", flush=True)

    compressed = None
    if not args.no_compress:
        try:
            wd = work / f"train-seed{args.seeds[0]}"
            run([dp_exe, "--tf", "compress", "-i", "frozen.pb", "-o", "compressed.pb",
                 "-s", "0.05"], wd, env)
            shutil.copy(wd / "compressed.pb", HERE / "model-compressed.pb")
            compressed = "model-compressed.pb"
        except RuntimeError as exc:
            print(f"  dp compress failed: {exc}")

    print("evaluating RMSEs ...")
    card_models = []
    for name, seed, tt in zip(outputs, args.seeds, train_times):
        etr, ftr, fstd = rmse(HERE / name, train, symbols)
        ete, fte, _ = rmse(HERE / name, test, symbols)
        card_models.append(dict(file=name, seed=seed, train_seconds=round(tt, 1),
                                size_bytes=(HERE / name).stat().st_size,
                                rmse_energy_train_meV_per_atom=round(etr, 3),
                                rmse_energy_test_meV_per_atom=round(ete, 3),
                                rmse_force_train_meV_per_A=round(ftr, 2),
                                rmse_force_test_meV_per_A=round(fte, 2)))
    if compressed:
        etr, ftr, _ = rmse(HERE / compressed, train, symbols)
        ete, fte, _ = rmse(HERE / compressed, test, symbols)
        card_models.append(dict(file=compressed, seed=args.seeds[0], compressed_from=outputs[0],
                                size_bytes=(HERE / compressed).stat().st_size,
                                rmse_energy_train_meV_per_atom=round(etr, 3),
                                rmse_energy_test_meV_per_atom=round(ete, 3),
                                rmse_force_train_meV_per_A=round(ftr, 2),
                                rmse_force_test_meV_per_A=round(fte, 2)))
    import deepmd

    card = {
        "id": "tiny-LiBH4",
        "material": "LiBH4",
        "purpose": "test fixture only (NOT a physical model of LiBH4)",
        "type_map": TYPE_MAP,
        "teacher": "analytic NumPy force field in make_model.py (harmonic B-H bonds, "
                   "H-B-H cosine-harmonic angles, Born-Mayer + screened Coulomb, shifted force, rc 4.5 A)",
        "data": {
            "structure": "rotorlab.materials.get('LiBH4', (2, 2, 2)) (96 atoms), relaxed under the teacher",
            "sampling": "teacher Langevin MD at 300/600/900 K, frames every 20 steps, plus copies "
                        "with 0.06 A random displacements and +-2% random strain",
            "n_train": len(train), "n_test": len(test),
            "force_std_meV_per_A": round(fstd, 1),
        },
        "training": {
            "software": f"deepmd-kit {deepmd.__version__} (TensorFlow backend)",
            "input": "input.json",
            "descriptor": base["model"]["descriptor"]["type"],
            "rcut": base["model"]["descriptor"]["rcut"],
            "numb_steps": base["training"]["numb_steps"],
            "threads": args.threads,
        },
        "models": card_models,
        "generation_seconds": round(time.time() - t_start, 1),
        "data_generation_seconds": None if t_data is None else round(t_data, 1),
    }
    (HERE / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_card_md(card)
    print(json.dumps(card, indent=2))
    if not args.keep_data:
        shutil.rmtree(work, ignore_errors=True)


def write_card_md(card):
    lines = [
        f"# {card['id']} — {card['purpose']}",
        "",
        f"* material: {card['material']}, type_map {card['type_map']}",
        f"* teacher: {card['teacher']}",
        f"* data: {card['data']['structure']}; {card['data']['sampling']}; "
        f"{card['data']['n_train']} train / {card['data']['n_test']} test frames "
        f"(force std {card['data']['force_std_meV_per_A']} meV/Å)",
        f"* training: {card['training']['software']}, {card['training']['descriptor']}, "
        f"rcut {card['training']['rcut']} Å, {card['training']['numb_steps']} steps, "
        f"{card['training']['threads']} threads (see input.json; made by make_model.py)",
        "",
        "| file | seed | size | E RMSE train | E RMSE test | F RMSE train | F RMSE test |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in card["models"]:
        lines.append(
            f"| {m['file']} | {m['seed']} | {m['size_bytes'] / 1024:.0f} KiB | "
            f"{m['rmse_energy_train_meV_per_atom']} meV/atom | {m['rmse_energy_test_meV_per_atom']} meV/atom | "
            f"{m['rmse_force_train_meV_per_A']} meV/Å | {m['rmse_force_test_meV_per_A']} meV/Å |"
        )
    lines += ["", "Accuracy is deliberately modest (tiny network, ~1–4 min of training): force "
              "RMSEs are a sizeable fraction of the force spread, and models of different seeds "
              "disagree by more than the DP-GEN sigma_high = 0.26 eV/Å. Good enough to exercise "
              "DeePMD-kit, model deviation and constrained MD; useless for physics."]
    lines += ["", "Regenerate: `python datasets/models/tiny-LiBH4/make_model.py` "
              "(numbers change slightly between machines)."]
    (HERE / "CARD.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
