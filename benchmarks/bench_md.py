"""MD driver overhead benchmark (prints ratios; not a timed test).

For systems of ~100–800 atoms (LiBH4-like rock salt, all rotors RTC-constrained, NHC):

* **driver overhead per step** = time of one integrator step (constraints + Verlet +
  thermostat) with a force field that returns a precomputed result, plus the store cost
  (``Simulation.run`` with a frame every 10 steps, amortised) — compared with the reference
  force-field call and with DeePMD force calls measured for this project
  (43 ms at 96 atoms, 140 ms at 384, 248 ms at 768);
* **loop overhead against ASE**: ``ase.md.VelocityVerlet`` + ``FixCom`` with the same
  precomputed force field wrapped as an ASE calculator.

Run: ``.venv/bin/python benchmarks/bench_md.py``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from rotorlab.md.constraints import Constraints
from rotorlab.potentials.base import energy_forces
from rotorlab.md.integrate import Integrator, maxwell_boltzmann
from rotorlab.md.relax import ForceFieldCalculator
from rotorlab.md.simulation import Simulation
from rotorlab.md.testing import tetrahedral_salt
from rotorlab.md.thermostats import make_thermostat
from rotorlab.potentials import ReferenceForceField

DEEPMD_MS = {96: 43.0, 384: 140.0, 768: 248.0}


class CachedForceField:
    """Returns a precomputed energy and zero forces (ballistic motion, so long benchmark
    runs stay finite): isolates the driver's cost; the copy mimics a real force array."""

    id = "cached"
    version = "0"
    type_names = None

    def __init__(self, ff, x, cell):
        e, f, w = ff.compute(x, cell)
        self.result = (e, np.zeros_like(f), w)

    def compute(self, positions, cell):
        e, f, w = self.result
        return e, f.copy(), w


def best_of(fn, n, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def main():
    from ase.constraints import FixCom
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    print(f"{'atoms':>5} {'ref FF ms':>9} {'step µs':>8} {'store µs':>8} {'driver µs':>9} "
          f"{'% refFF':>7} {'% DeePMD':>8} {'ASE µs':>7} {'ASE/ours':>8}")
    for rep in ((2, 2, 1), (2, 2, 4), (4, 4, 2)):
        atoms, topo = tetrahedral_salt(repeat=rep, a=6.4, seed=1)
        n = len(atoms)
        cell = atoms.cell.array
        ff = ReferenceForceField.from_topology(topo, atoms.positions, cell)
        t_ff = best_of(lambda: ff.compute(atoms.positions, cell), 5)
        cached = CachedForceField(ff, atoms.positions, cell)
        t_cached = best_of(lambda: cached.compute(atoms.positions, cell), 2000)

        cons = Constraints.from_topology(topo, "RTC", positions=atoms.positions)
        rng = np.random.Generator(np.random.PCG64(0))
        v = maxwell_boltzmann(topo.masses, 300.0, rng, cons)
        integ = Integrator(energy_forces(cached), cons, atoms.positions, v, cell, 0.5,
                           make_thermostat("nhc", 300.0), rng)
        integ.run(10)
        t_step = best_of(integ.step, 2000) - t_cached

        with tempfile.TemporaryDirectory() as d:
            sim = Simulation(atoms, cached, mode="RTC", temperature=300.0, timestep=0.5,
                             steps=3000, store=Path(d) / "b.zarr", frame_interval=10,
                             checkpoint_interval=1000, topology=topo, progress=False,
                             min_distance=1e-3, explosion_factor=1e9, seed=0)
            sim.integrator.run(10)
            t0 = time.perf_counter()
            sim.run()
            t_sim = (time.perf_counter() - t0) / 3000 - t_cached
        t_store = t_sim - t_step

        a = atoms.copy()
        a.set_constraint(FixCom())
        a.calc = _AseCached(cached)
        a.set_velocities(v * 1.0 / fs)  # Å/fs → ASE units
        dyn = VelocityVerlet(a, timestep=0.5 * fs)
        dyn.run(5)
        t_ase = best_of(lambda: dyn.run(1), 300) - t_cached

        dm = DEEPMD_MS.get(n)
        pct_dp = f"{100 * t_sim / (dm * 1e-3):.3f}" if dm else "-"
        print(f"{n:5d} {1e3 * t_ff:9.2f} {1e6 * t_step:8.1f} {1e6 * t_store:8.1f} "
              f"{1e6 * t_sim:9.1f} {100 * t_sim / t_ff:7.2f} {pct_dp:>8} {1e6 * t_ase:7.1f} "
              f"{t_ase / t_step:8.1f}")
    print("driver = integrator step + amortised store/checkpoint/checks (Simulation.run);"
          " ASE/ours compares the bare integrator step with ASE VelocityVerlet+FixCom "
          "(same cached forces, force-call cost subtracted).")


class _AseCached(ForceFieldCalculator):
    """ASE calculator that always recomputes (no ASE result caching shortcut)."""

    def __init__(self, ff):
        super().__init__(ff)

    def get_property(self, name, atoms=None, allow_calculation=True):
        self.results = {}
        return super().get_property(name, atoms, allow_calculation)


if __name__ == "__main__":
    main()
