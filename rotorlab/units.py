"""Physical constants and unit conversions used throughout rotorlab (one place).

Internal units: length Å, time fs, energy eV, mass amu, temperature K, charge e,
velocity Å/fs.  Stored ``time`` coordinates are in ps.
"""

from __future__ import annotations

#: Boltzmann constant [eV/K]
KB = 8.617333262e-5
#: Acceleration conversion: a [Å/fs²] = F [eV/Å] / m [amu] * ACCEL
ACCEL = 9.648533212e-3
#: Kinetic energy conversion: KE [eV] = 0.5 * m [amu] * v² [Å²/fs²] * MVV2E
MVV2E = 1.0 / ACCEL  # 103.6427...
#: Elementary charge [C]
E_CHARGE = 1.602176634e-19
#: Boltzmann constant [J/K]
KB_SI = 1.380649e-23
#: eV in Joule
EV_J = 1.602176634e-19
#: Coulomb constant e²/(4 π ε0) [eV Å]
COULOMB = 14.399645478425668
#: 1 ps in fs
PS = 1000.0
#: Å²/fs → cm²/s
A2_PER_FS_TO_CM2_PER_S = 1e-16 / 1e-15  # = 0.1
#: Å²/ps → cm²/s
A2_PER_PS_TO_CM2_PER_S = 1e-16 / 1e-12  # = 1e-4
#: THz → meV
THZ_TO_MEV = 4.135667696
#: THz → cm⁻¹
THZ_TO_CM1 = 33.35640951981521
#: Diffusion coefficient below which transport is "below measurable" [cm²/s]
D_MEASURABLE_CM2_S = 1e-8
