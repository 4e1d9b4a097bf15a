"""The interactive app's server-side logic (no Panel here): per-session run management in
background threads, input validation, the server's list of allowed potentials and checked
model uploads (:mod:`rotorlab.app.runs`). The Panel app itself is ``apps/explorer.py``
(installed as ``rotorlab/_apps/explorer.py``; ``rotorlab app`` serves it).
"""
