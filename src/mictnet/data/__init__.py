"""Video data: frame-exact decoding, UCF-101 / HMDB-51 / Kinetics / folder / list datasets, the
published clip sampling and augmentation, and dataset checks."""

from .catalog import DATASETS, build_dataset
from .checks import CheckReport, check_dataset
from .datasets import (
    HMDB51,
    UCF101,
    ClipOptions,
    VideoDataset,
    VideoFolder,
    VideoList,
)
from .decode import (
    VideoError,
    VideoInfo,
    VideoReader,
    read_clip,
    read_frames,
    read_video,
    video_info,
)
from .kinetics import Kinetics
from .sampling import ClipSampler
from .splits import Problem, SampleList, SplitError
from .transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, eval_transform, train_transform

__all__ = [
    "DATASETS", "HMDB51", "IMAGENET_MEAN", "IMAGENET_STD", "UCF101", "CheckReport", "ClipOptions",
    "ClipSampler", "ClipTransform", "Kinetics", "Problem", "SampleList", "SplitError",
    "VideoDataset", "VideoError", "VideoFolder", "VideoInfo", "VideoList", "VideoReader",
    "build_dataset", "check_dataset", "eval_transform", "read_clip", "read_frames", "read_video",
    "train_transform", "video_info",
]
