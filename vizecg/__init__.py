"""VizECGNet study: classify six cardiovascular diseases from images of printed 12-lead ECGs."""
from vizecg.contract import LABELS, LEADS, N_SAMPLES, SAMPLE_RATE_HZ

__all__ = ["LABELS", "LEADS", "N_SAMPLES", "SAMPLE_RATE_HZ"]
__version__ = "0.1.0"
