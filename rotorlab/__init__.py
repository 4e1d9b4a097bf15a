"""rotorlab: which motion of a rotor anion drives cation transport?"""

__version__ = "0.1.0"
