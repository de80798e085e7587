"""lmrescore: recurrent LMs as approximate fixed points, and exact bounded-order lattice rescoring."""

__version__ = "0.1.0"
