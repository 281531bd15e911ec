"""Running a trained model outside training: ``predict`` (any video files, through the test's
views), ``export`` (TorchScript, ONNX) and ``labels`` (class names for printing); ``model`` loads
the trained network they share."""

from .model import load_trained_model
from .predict import VIDEO_SUFFIXES, Prediction, find_videos, predict_videos

__all__ = ["VIDEO_SUFFIXES", "Prediction", "find_videos", "load_trained_model", "predict_videos"]
