"""Gate and state recordings -> pictures and pages. Consumes what layers record (rnnlab.Trace); never
recomputes a cell.

    record.py    Recording: a char model's gates, states and predictions over a text (numpy)
    analysis.py  text features, the most interpretable units, gate saturation
    page.py      the self-contained HTML page of `rnnlab inspect`
    figures.py   the tutorial's figures from a real model (`rnnlab figures`): unrolled net, one LSTM step
    cost.py      parameters, matmul FLOPs and BPTT memory against sequence length, formulas and measurement
    contact_sheet.py  captioned images beside their generated and true captions (`rnnlab eval` of a caption run)
"""

from .analysis import FEATURES, Saturation, UnitScore, gate_saturation, interpretable_units, text_features
from .page import color, render_page
from .record import Recording, record_charlm

__all__ = [
    "FEATURES", "Recording", "Saturation", "UnitScore", "color", "gate_saturation", "interpretable_units",
    "record_charlm", "render_page", "text_features",
]
