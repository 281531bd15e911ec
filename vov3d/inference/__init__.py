"""Running a trained model outside training: ``predict`` (any video files, through the test's
views) and ``export`` (TorchScript, ONNX); ``model`` loads the trained network they share."""

from .model import TrainedModel, load_trained, load_trained_model
from .predict import Prediction, find_videos, predict_videos

__all__ = ["Prediction", "TrainedModel", "find_videos", "load_trained", "load_trained_model", "predict_videos"]
