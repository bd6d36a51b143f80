"""Pictures and pages: gate and state recordings, and the results of tasks. Consumes what layers record
(rnnlab.Trace) and what tasks compute; never recomputes a cell, never imports rnnlab.train.

    record.py         Recording: a char model's gates, states and predictions over a text (numpy)
    analysis.py       text features, the most interpretable units, gate saturation
    page.py           the self-contained HTML page of `rnnlab inspect`
    figures.py        the tutorial's figures from a real model (`rnnlab figures`): unrolled net, one LSTM step
    cost.py           parameters, matmul FLOPs and BPTT memory against sequence length, formulas and measurement
    plots.py          a confusion matrix, a forecast, the memory experiment (matplotlib, optional)
    contact_sheet.py  captioned images beside their generated and true captions (Pillow)
"""

from .analysis import FEATURES, Saturation, UnitScore, gate_saturation, interpretable_units, text_features
from .page import color, render_page
from .record import Recording, record_charlm

__all__ = [
    "FEATURES", "Recording", "Saturation", "UnitScore", "color", "gate_saturation", "interpretable_units",
    "record_charlm", "render_page", "text_features",
]
