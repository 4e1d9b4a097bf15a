"""Teacher → student training of DeePMD-kit models (DP-GEN style active learning).

A universal machine-learning potential (the *teacher*: SevenNet-0 by default, or any ASE
calculator, e.g. DFT) labels configurations; ensembles of DeePMD-kit models (the
*students*) are trained on those labels; rotorlab's own constrained MD explores with the
ensemble and the configurations the members disagree on are labelled and added.

Modules (each importable on its own; nothing heavy is imported here):

* :mod:`rotorlab.training.teachers` — labellers (SevenNet, CHGNet, ``ase:module:factory``,
  the reference force field for tests) with a recorded teacher id;
* :mod:`rotorlab.training.configs` — initial configurations (strain, rattle, rotor
  rotations, cation displacements, short teacher MD);
* :mod:`rotorlab.training.data` — dpdata/DeePMD npy data sets tagged with their teacher;
* :mod:`rotorlab.training.dp` — DeePMD-kit ``input.json``, ``dp train/freeze/compress/test``;
* :mod:`rotorlab.training.explore` — exploration with rotorlab MD and model deviation;
* :mod:`rotorlab.training.loop` — the resumable loop (state file + data/model dirs);
* :mod:`rotorlab.training.card` — the model card (``card.json`` + ``README.md``);
* :mod:`rotorlab.training.snapshot` — the small, committable snapshot of a loop's state.
"""

__all__ = ["teachers", "configs", "data", "dp", "explore", "loop", "card", "snapshot"]
