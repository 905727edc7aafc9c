"""Instrument behaviours: the meaning behind each grammar (one module per instrument family).

A behaviour is bound to one ModelDevice and the bench's World. Grammar keys ``compute``,
``notify`` and ``call`` name its methods. :data:`BEHAVIOURS` maps the grammar's
``xbar.behaviour`` name to the class.
"""

from . import array_board, scpi_matrix, scpi_smu, tsp_matrix, tsp_smu  # noqa: F401,E402  (they register themselves)
from .base import BEHAVIOURS, Behaviour  # noqa: F401
