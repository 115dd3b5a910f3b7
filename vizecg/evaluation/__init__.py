"""Evaluation: metrics, bootstrap confidence intervals, batched inference, size and latency."""
from vizecg.evaluation.bootstrap import AUROCMetric, ThresholdMetric, bootstrap_ci, paired_difference_ci
from vizecg.evaluation.inference import predict_probs
from vizecg.evaluation.latency import parameters_millions, describe_device, inference_ms_per_ecg
from vizecg.evaluation.metrics import (classification_metrics, macro_auprc, macro_auroc, macro_f1, per_class_auprc,
                                       per_class_auroc, tune_thresholds)

__all__ = [
    "AUROCMetric", "ThresholdMetric", "bootstrap_ci", "paired_difference_ci", "classification_metrics", "parameters_millions",
    "describe_device", "inference_ms_per_ecg", "macro_auprc", "macro_auroc", "macro_f1", "per_class_auprc",
    "per_class_auroc", "predict_probs", "tune_thresholds",
]
