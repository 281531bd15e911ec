"""The one config tree of vov3d.

Key names follow PySlowFast so that its YAML files and the VoV3D paper's command lines work
unchanged. Every key here is read by something; keys that old YAML files set but that mean
nothing for these networks are listed in ``compat.IGNORED_KEYS`` and are accepted with a warning.
"""

from .node import CfgNode

_C = CfgNode()

# ---------------------------------------------------------------------------- #
# Top level: hardware, output and reproducibility.
# ---------------------------------------------------------------------------- #
# GPUs per machine (shard). 0 runs on the CPU (one process, or as many as torchrun starts).
_C.NUM_GPUS = 1
# Number of machines taking part in a distributed job.
_C.NUM_SHARDS = 1
# Index of this machine, in [0, NUM_SHARDS).
_C.SHARD_ID = 0
# Minutes a process waits in a collective (all-reduce, barrier) for the others before it fails.
# Long enough for rank 0 to write a checkpoint or run precise BN while the others wait; it is what
# bounds the wait for a peer that stopped answering without closing its connections (a lost node,
# NCCL). A killed process's gloo peers fail at once (see INSTALL.md, "When a process dies").
_C.DIST_TIMEOUT_MINUTES = 30.0
# Folder for logs, the effective config, TensorBoard files and checkpoints. Unset by the files and
# the command line, it is output/<path of the first config under configs/, without .yaml>.
_C.OUTPUT_DIR = "./output"
# Load checkpoint files whose pickle needs more than tensors and NumPy values (such a file can run
# code): only for files whose source you trust. Off: they are refused with the global they need.
_C.TRUST_CHECKPOINT = False
# Seed of every random generator: the process's own (Python, NumPy, torch; each process adds its rank,
# for dropout and Mixup), each epoch's order of training batches and each training clip's draws
# (seeded by RNG_SEED, epoch and clip, the same for any number of processes and loader workers).
_C.RNG_SEED = 1
# Log training statistics every LOG_PERIOD iterations.
_C.LOG_PERIOD = 10
# Log the parameter count and GMACs of the model once it is built.
_C.LOG_MODEL_INFO = True
# Every process also writes its own OUTPUT_DIR/stdout_rank{r}.log (rank 0 always writes stdout.log).
_C.LOG_ALL_RANKS = False
# cuDNN autotuning (torch.backends.cudnn.benchmark) on GPUs: clip shapes are fixed, so the
# tuned kernels are reused (torchvision's video reference does the same). False for run-to-run
# identical kernels.
_C.CUDNN_BENCHMARK = True

# ---------------------------------------------------------------------------- #
# Training.
# ---------------------------------------------------------------------------- #
_C.TRAIN = CfgNode()
# Run training.
_C.TRAIN.ENABLE = True
# Dataset name in DATASET_REGISTRY (case-insensitive): kinetics, ssv1, ssv2, folder.
_C.TRAIN.DATASET = "kinetics"
# Global batch size, split evenly over all processes.
_C.TRAIN.BATCH_SIZE = 64
# Validate every EVAL_PERIOD epochs (and after the last epoch).
_C.TRAIN.EVAL_PERIOD = 10
# Save a checkpoint every CHECKPOINT_PERIOD epochs (and after the last epoch).
_C.TRAIN.CHECKPOINT_PERIOD = 10
# Continue from the newest complete checkpoint in OUTPUT_DIR/checkpoints if there is one.
_C.TRAIN.AUTO_RESUME = True
# Initialise from this checkpoint (ours, or a published PySlowFast / VoV3D file).
_C.TRAIN.CHECKPOINT_FILE_PATH = ""
# With CHECKPOINT_FILE_PATH: start at epoch 0 with a fresh optimizer (fine-tuning).
_C.TRAIN.CHECKPOINT_EPOCH_RESET = True
# Automatic mixed precision, in TRAIN.MIXED_PRECISION_DTYPE.
_C.TRAIN.MIXED_PRECISION = False
# auto (bf16 on CPUs and GPUs of compute capability >= 8.0, else fp16 with a grad scaler),
# bfloat16 or float16.
_C.TRAIN.MIXED_PRECISION_DTYPE = "auto"
# Fine-tuning: train only the classifier (head.projection) for the first FREEZE_BACKBONE_EPOCHS
# epochs; the rest of the network (the backbone) keeps its weights and BN statistics meanwhile.
_C.TRAIN.FREEZE_BACKBONE_EPOCHS = 0
# Fine-tuning: keep the backbone's BN statistics (running mean and variance) fixed for the whole run.
_C.TRAIN.FREEZE_BACKBONE_BN = False
# Also keep OUTPUT_DIR/checkpoints/best.pyth: the weights with the lowest validation top-1 error so far.
_C.TRAIN.KEEP_BEST_CHECKPOINT = False
# Also save a mid-epoch checkpoint at most every CHECKPOINT_MINUTES minutes (rank 0's clock), replacing the
# previous one, so that a killed run (kill -9, OOM, a lost node) loses at most that much; 0: only epoch ends.
_C.TRAIN.CHECKPOINT_MINUTES = 30.0
# Signals that stop training in step: a mid-epoch checkpoint, a SLURM requeue, exit status 75
# (sbatch --signal=USR1@120 sends SIGUSR1 two minutes before the time limit; SLURM sends SIGTERM at it).
_C.TRAIN.STOP_SIGNALS = ["SIGUSR1", "SIGTERM"]

# ---------------------------------------------------------------------------- #
# Testing (multi-view).
# ---------------------------------------------------------------------------- #
_C.TEST = CfgNode()
# Run the multi-view test (after training when TRAIN.ENABLE is also set).
_C.TEST.ENABLE = True
# Dataset name in DATASET_REGISTRY (case-insensitive).
_C.TEST.DATASET = "kinetics"
# Global batch size of the test, in clips.
_C.TEST.BATCH_SIZE = 8
# Checkpoint to test (a file, or a run's OUTPUT_DIR for its newest checkpoint); empty means the
# newest in OUTPUT_DIR, then TRAIN.CHECKPOINT_FILE_PATH.
_C.TEST.CHECKPOINT_FILE_PATH = ""
# Test OUTPUT_DIR/checkpoints/best.pyth (written with TRAIN.KEEP_BEST_CHECKPOINT) instead.
_C.TEST.USE_BEST_CHECKPOINT = False
# Temporal views per video.
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
# Spatial crops per temporal view (1 or 3).
_C.TEST.NUM_SPATIAL_CROPS = 3
# If set, save per-video scores and labels to this file (relative to OUTPUT_DIR).
_C.TEST.SAVE_RESULTS_PATH = ""
# Allow testing a randomly initialised model when no checkpoint is found (warns).
_C.TEST.ALLOW_RANDOM_WEIGHTS = False
# Skip test videos that cannot be decoded and report them, instead of stopping.
_C.TEST.SKIP_BROKEN_VIDEOS = False
# Fold BatchNorm into the convolutions before testing and predicting: the same outputs, faster.
_C.TEST.FOLD_BN = True

# ---------------------------------------------------------------------------- #
# Model.
# ---------------------------------------------------------------------------- #
_C.MODEL = CfgNode()
# Network family, checked against MODEL_NAME: x3d or vov3d.
_C.MODEL.ARCH = "x3d"
# Registered network in MODEL_REGISTRY: X3D or VoV3D.
_C.MODEL.MODEL_NAME = "X3D"
# Number of classes of the classifier.
_C.MODEL.NUM_CLASSES = 400
# Loss: cross_entropy, or soft_cross_entropy (with MODEL.LABEL_SMOOTHING).
_C.MODEL.LOSS_FUNC = "cross_entropy"
# Label smoothing of soft_cross_entropy.
_C.MODEL.LABEL_SMOOTHING = 0.0
# Dropout before the classifier.
_C.MODEL.DROPOUT_RATE = 0.5
# Standard deviation of the normal initialisation of the classifier (head.projection) weights.
_C.MODEL.FC_INIT_STD = 0.01
# Compile the model with torch.compile for training and testing.
_C.MODEL.COMPILE = False
# Use the channels_last_3d memory format for the model and its inputs: the same outputs, and
# 1.6-2.8x faster on CPUs (BENCHMARKS.md). False is the plain NCDHW layout of PySlowFast.
_C.MODEL.CHANNELS_LAST = True

# ---------------------------------------------------------------------------- #
# X3D (Feichtenhofer, CVPR 2020).
# ---------------------------------------------------------------------------- #
_C.X3D = CfgNode()
# Width multiplier of every stage.
_C.X3D.WIDTH_FACTOR = 1.0
# Depth multiplier of the [1, 2, 5, 3] base block counts.
_C.X3D.DEPTH_FACTOR = 1.0
# Inner (bottleneck) width as a multiple of the stage output width.
_C.X3D.BOTTLENECK_FACTOR = 1.0
# Base width of the stem and of res2.
_C.X3D.DIM_C1 = 12
# Width of the head's lin_5 layer.
_C.X3D.DIM_C5 = 2048
# Double the res2 base width.
_C.X3D.SCALE_RES2 = False
# BatchNorm after the head's lin_5 layer.
_C.X3D.BN_LIN5 = False
# Depthwise 3x3x3 convolutions (False: dense, not in any published model).
_C.X3D.CHANNELWISE_3x3x3 = True

# ---------------------------------------------------------------------------- #
# VoV3D (Lee et al., arXiv 2012.00317).
# ---------------------------------------------------------------------------- #
_C.VOV3D = CfgNode()
# 31 (VoV3D-M, blocks [1, 2, 3, 2]) or 70 (VoV3D-L, blocks [1, 2, 5, 3]).
_C.VOV3D.DEPTH = 31
# Base width c; the stem has c / 2 channels.
_C.VOV3D.INNER_CH = 40
# D(2+1)D units per T-OSA block.
_C.VOV3D.NUM_CONV = 5
# Inner width of each stage as a multiple of INNER_CH.
_C.VOV3D.INNER_MULTIPLIER = [1, 2, 4, 8]
# Output width of each stage as a multiple of INNER_CH.
_C.VOV3D.OUT_MULTIPLIER = [0.5, 1, 2, 4]
# Block transform; only the published t_osa_2plus1_transform exists.
_C.VOV3D.TRANS_FUNC = "t_osa_2plus1_transform"
# How the D(2+1)D depthwise convs run, all with the same weights and outputs: auto (2-D kernels
# while training, 3-D ones otherwise, in every precision and on every device), separate, fused or
# frames2d. See BENCHMARKS.md.
_C.VOV3D.DEPTHWISE_IMPL = "auto"

# ---------------------------------------------------------------------------- #
# ResNet-style options shared by both networks.
# ---------------------------------------------------------------------------- #
_C.RESNET = CfgNode()
# Initialise the BN that closes each block's transform with weight 0.
_C.RESNET.ZERO_INIT_FINAL_BN = False

# ---------------------------------------------------------------------------- #
# Batch normalisation.
# ---------------------------------------------------------------------------- #
_C.BN = CfgNode()
# Recompute BN statistics over NUM_BATCHES_PRECISE batches before evaluating and saving.
_C.BN.USE_PRECISE_STATS = False
# Batches used by precise BN.
_C.BN.NUM_BATCHES_PRECISE = 200
# Weight decay of BN weights and biases.
_C.BN.WEIGHT_DECAY = 0.0
# Which parameters get BN.WEIGHT_DECAY: name (the original rule: every parameter whose name
# contains "bn"; VoV3D's a.1 / c.1 BatchNorms then get SOLVER.WEIGHT_DECAY), or type (the
# parameters of every BatchNorm layer, PySlowFast's later rule).
_C.BN.WEIGHT_DECAY_GROUPS = "name"
# batchnorm, sync_batchnorm (statistics over groups of NUM_SYNC_DEVICES processes), or
# sub_batchnorm (statistics over each of NUM_SPLITS sub-batches of a process's batch apart, as
# PySlowFast's multigrid training uses; the state dict is BatchNorm's).
_C.BN.NORM_TYPE = "batchnorm"
# Processes per sync_batchnorm group.
_C.BN.NUM_SYNC_DEVICES = 1
# Sub-batches per process batch for sub_batchnorm (clip i in sub-batch i % NUM_SPLITS); the
# per-process batch size must be a multiple of it.
_C.BN.NUM_SPLITS = 1

# ---------------------------------------------------------------------------- #
# Optimiser and learning-rate schedule.
# ---------------------------------------------------------------------------- #
_C.SOLVER = CfgNode()
# Learning rate for the global batch size.
_C.SOLVER.BASE_LR = 0.1
# Multiply BASE_LR by NUM_SHARDS (linear scaling across machines).
_C.SOLVER.BASE_LR_SCALE_NUM_SHARDS = False
# cosine, or steps_with_relative_lrs.
_C.SOLVER.LR_POLICY = "cosine"
# Final learning rate of the cosine schedule.
_C.SOLVER.COSINE_END_LR = 0.0
# Start epochs of each step of steps_with_relative_lrs (the first is 0).
_C.SOLVER.STEPS = []
# Learning rate of each step, relative to BASE_LR.
_C.SOLVER.LRS = []
# Number of training epochs.
_C.SOLVER.MAX_EPOCH = 300
# SGD momentum.
_C.SOLVER.MOMENTUM = 0.9
# SGD dampening.
_C.SOLVER.DAMPENING = 0.0
# Nesterov momentum.
_C.SOLVER.NESTEROV = True
# Weight decay of all parameters except BN (see BN.WEIGHT_DECAY).
_C.SOLVER.WEIGHT_DECAY = 1e-4
# Linear warm-up length in epochs (may be fractional).
_C.SOLVER.WARMUP_EPOCHS = 0.0
# Learning rate at the start of the warm-up.
_C.SOLVER.WARMUP_START_LR = 0.01
# Optimiser: sgd.
_C.SOLVER.OPTIMIZING_METHOD = "sgd"
# Fine-tuning: learning rate of the backbone (all but the classifier head.projection) as a multiple
# of the classifier's, at every point of the schedule.
_C.SOLVER.BACKBONE_LR_MULT = 1.0

# ---------------------------------------------------------------------------- #
# Multigrid training (Wu et al., CVPR 2020), PySlowFast's names and defaults; the schedules are in
# vov3d/engine/multigrid.py (README: Multigrid training). The long cycle needs SOLVER.STEPS, also
# with the cosine policy, and sets each shape's BatchNorm itself. PySlowFast's DEFAULT_B/T/S and
# LONG_CYCLE_SAMPLING_RATE, which it sets itself at start, are derived from TRAIN.BATCH_SIZE,
# DATA.NUM_FRAMES, DATA.TRAIN_CROP_SIZE and DATA.SAMPLING_RATE here, and accepted with a warning
# (compat.py).
# ---------------------------------------------------------------------------- #
_C.MULTIGRID = CfgNode()
# Train for EPOCH_FACTOR times SOLVER.MAX_EPOCH epochs (cheaper epochs; the paper's 1.5).
_C.MULTIGRID.EPOCH_FACTOR = 1.5
# Short cycle: iterations cycle through crops of SHORT_CYCLE_FACTORS times DATA.TRAIN_CROP_SIZE,
# then the current shape, with the batch scaled up by the square of the crop ratio.
_C.MULTIGRID.SHORT_CYCLE = False
# Two crop factors, relative to DATA.TRAIN_CROP_SIZE.
_C.MULTIGRID.SHORT_CYCLE_FACTORS = [0.5, 0.5**0.5]
# Long cycle: each LR stage of SOLVER.STEPS trains these shapes coarse to fine, with the batch
# scaled up by the drop in frames x crop^2; the last stage fine-tunes at the last shape.
_C.MULTIGRID.LONG_CYCLE = False
# (frames, crop) factors relative to (DATA.NUM_FRAMES, DATA.TRAIN_CROP_SIZE), coarse first.
_C.MULTIGRID.LONG_CYCLE_FACTORS = [[0.25, 0.5**0.5], [0.5, 0.5**0.5], [0.5, 1], [1, 1]]
# Clips per BatchNorm statistic under the long cycle: a larger per-process batch is split into
# sub-batches (sub_batchnorm); a smaller one keeps its own statistics (PySlowFast would sync BN).
_C.MULTIGRID.BN_BASE_SIZE = 8
# Validations (and checkpoints) per long-cycle shape, instead of TRAIN.EVAL_PERIOD: multigrid
# epochs differ in cost.
_C.MULTIGRID.EVAL_FREQ = 3

# ---------------------------------------------------------------------------- #
# Data.
# ---------------------------------------------------------------------------- #
_C.DATA = CfgNode()
# Folder holding the annotation files (train.csv, val.csv, test.csv, ...).
_C.DATA.PATH_TO_DATA_DIR = ""
# Prefix joined to every video or frame path of the annotation files.
_C.DATA.PATH_PREFIX = ""
# Separator between path and label in Kinetics CSV files.
_C.DATA.PATH_LABEL_SEPARATOR = " "
# Class names, one per line (line i names class i), a JSON {name: id} file, or kinetics400 for
# the shipped list; "" takes them from the dataset (folder, SSv1, SSv2; Kinetics: classes.txt beside
# the CSVs, else the shipped list for 400 classes).
_C.DATA.CLASS_NAMES = ""
# Frames per clip.
_C.DATA.NUM_FRAMES = 8
# Frame stride of a clip, at TARGET_FPS (Kinetics; SS uses segment sampling).
_C.DATA.SAMPLING_RATE = 8
# Frame rate the sampling rate refers to; a video's own fps rescales the clip span.
_C.DATA.TARGET_FPS = 30
# Kinetics clips: False is the original rule (NUM_FRAMES indices spread over the span, test view k
# of K starting at k/K of the free range); True is PySlowFast's later one (stride exactly
# SAMPLING_RATE, test views from the start to the end of the video). See DATA.md.
_C.DATA.USE_OFFSET_SAMPLING = False
# Range of the training short side, [min, max].
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Training crop size (also sets the head's pooling window).
_C.DATA.TRAIN_CROP_SIZE = 224
# Test crop size.
_C.DATA.TEST_CROP_SIZE = 256
# Input channels per pathway; only [3] is supported.
_C.DATA.INPUT_CHANNEL_NUM = [3]
# Per-channel mean of the [0, 1] pixels.
_C.DATA.MEAN = [0.45, 0.45, 0.45]
# Per-channel standard deviation of the [0, 1] pixels.
_C.DATA.STD = [0.225, 0.225, 0.225]
# Random horizontal flip in training (off for Something-Something: left/right labels).
_C.DATA.RANDOM_FLIP = True
# Draw the training short side uniformly in 1/size instead of size.
_C.DATA.INV_UNIFORM_SAMPLE = False
# Give the network BGR instead of RGB.
_C.DATA.REVERSE_INPUT_CHANNEL = False
# Video decoder: pyav ("torchvision" is accepted as its PySlowFast-era alias).
_C.DATA.DECODING_BACKEND = "pyav"
# How test views of one video are combined: sum (of probabilities) or max.
_C.DATA.ENSEMBLE_METHOD = "sum"
# Stop training when more than this fraction of an epoch's clips (all processes) stood in for
# unreadable videos.
_C.DATA.MAX_BAD_VIDEO_FRACTION = 0.05

# ---------------------------------------------------------------------------- #
# Mixup and CutMix of training batches (PySlowFast's names); targets become soft labels.
# ---------------------------------------------------------------------------- #
_C.MIXUP = CfgNode()
# Mix training batches.
_C.MIXUP.ENABLE = False
# Beta(ALPHA, ALPHA) draws the Mixup weight; 0 turns Mixup off.
_C.MIXUP.ALPHA = 0.8
# Beta(CUTMIX_ALPHA, CUTMIX_ALPHA) draws the CutMix area; 0 turns CutMix off.
_C.MIXUP.CUTMIX_ALPHA = 1.0
# Probability that a batch is mixed at all.
_C.MIXUP.PROB = 1.0
# With both on, probability of CutMix instead of Mixup for a mixed batch.
_C.MIXUP.SWITCH_PROB = 0.5
# Label smoothing of the mixed targets (use it instead of MODEL.LABEL_SMOOTHING).
_C.MIXUP.LABEL_SMOOTH_VALUE = 0.1

# ---------------------------------------------------------------------------- #
# RandAugment of training clips (PySlowFast's names), torchvision's, the same ops for every frame.
# ---------------------------------------------------------------------------- #
_C.AUG = CfgNode()
# Apply RandAugment to training clips after the crop.
_C.AUG.ENABLE = False
# rand-m<magnitude 0..10>-n<ops>[-mstd<std>][-inc1]: mstd draws each clip's magnitude from a normal
# around m; inc1 (torchvision's ops are the increasing kind) may be given, inc0 is not supported.
_C.AUG.AA_TYPE = "rand-m7-n4-mstd0.5-inc1"
# Resampling of RandAugment's rotations, shears and translations: bilinear or nearest
# (PySlowFast's bicubic does not exist for torchvision's tensor ops).
_C.AUG.INTERPOLATION = "bilinear"
# Repeated augmentation: clips per training video, as PySlowFast's: one decoded clip, each copy
# with its own scale, crop, flip and RandAugment draws. TRAIN.BATCH_SIZE still counts clips, so a
# batch holds BATCH_SIZE / NUM_SAMPLE videos and an epoch NUM_SAMPLE times the steps (DATA.md). 1: off.
_C.AUG.NUM_SAMPLE = 1
# With NUM_SAMPLE > 1, draw each clip's temporal position too (MMAction2's repeated augmentation);
# clips that overlap are decoded together, others read one after another from the open file.
_C.AUG.INDEPENDENT_POSITIONS = False

# ---------------------------------------------------------------------------- #
# Data loader.
# ---------------------------------------------------------------------------- #
_C.DATA_LOADER = CfgNode()
# Loader worker processes per training process.
_C.DATA_LOADER.NUM_WORKERS = 8
# Pin host memory for faster copies to the GPU.
_C.DATA_LOADER.PIN_MEMORY = True
# Let the video decoder use several threads.
_C.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE = False

# ---------------------------------------------------------------------------- #
# TensorBoard.
# ---------------------------------------------------------------------------- #
_C.TENSORBOARD = CfgNode()
# Write TensorBoard scalars and the test confusion matrix.
_C.TENSORBOARD.ENABLE = False
# Log folder; empty means OUTPUT_DIR/runs-<dataset>.
_C.TENSORBOARD.LOG_DIR = ""
# Class names of the figures below (one per line, or a JSON {name: id}); empty: the dataset's,
# else the tested checkpoint's, else the class indices (as the test's per-class table).
_C.TENSORBOARD.CLASS_NAMES_PATH = ""
# The confusion matrix of every validation (val/confusion_matrix) as a labelled figure; the
# test always writes its own (test/confusion_matrix, and confusion_matrix.png in OUTPUT_DIR).
# With SUBSET_PATH (one class name per line), or beyond 40 classes, a figure naming only the
# subset's classes, else the 40 most often confused, is added at validation and test.
_C.TENSORBOARD.CONFUSION_MATRIX = CfgNode()
_C.TENSORBOARD.CONFUSION_MATRIX.ENABLE = False
_C.TENSORBOARD.CONFUSION_MATRIX.SUBSET_PATH = ""
# Per true class, a bar chart of the TOPK classes its videos are most often predicted as (at
# validation and test), for SUBSET_PATH's classes (one name per line) or all.
_C.TENSORBOARD.HISTOGRAM = CfgNode()
_C.TENSORBOARD.HISTOGRAM.ENABLE = False
_C.TENSORBOARD.HISTOGRAM.SUBSET_PATH = ""
_C.TENSORBOARD.HISTOGRAM.TOPK = 10
# After the test, a pass over the test split's videos (as PySlowFast's visualize step): MODEL_VIS
# writes Grad-CAM (and, with INPUT_VIDEO, the clip itself) and MODEL_WEIGHTS the weights'
# histograms; WRONG_PRED_VIS the misclassified clips, as short videos named with the true and
# predicted classes.
_C.TENSORBOARD.MODEL_VIS = CfgNode()
_C.TENSORBOARD.MODEL_VIS.ENABLE = False
_C.TENSORBOARD.MODEL_VIS.MODEL_WEIGHTS = False
_C.TENSORBOARD.MODEL_VIS.INPUT_VIDEO = False
# Grad-CAM of the class predicted, or with USE_TRUE_LABEL of the true class, at each layer of
# LAYER_LIST (module paths, "/" or "." separated, e.g. s5 or s5/pathway0_res2; empty: the last
# stage), overlaid on the clip's frames in COLORMAP (viridis, jet, inferno or gray).
_C.TENSORBOARD.MODEL_VIS.GRAD_CAM = CfgNode()
_C.TENSORBOARD.MODEL_VIS.GRAD_CAM.ENABLE = True
_C.TENSORBOARD.MODEL_VIS.GRAD_CAM.LAYER_LIST = []
_C.TENSORBOARD.MODEL_VIS.GRAD_CAM.USE_TRUE_LABEL = False
_C.TENSORBOARD.MODEL_VIS.GRAD_CAM.COLORMAP = "viridis"
_C.TENSORBOARD.WRONG_PRED_VIS = CfgNode()
_C.TENSORBOARD.WRONG_PRED_VIS.ENABLE = False
# Classes (one name per line) whose misclassified videos are shown; empty: all.
_C.TENSORBOARD.WRONG_PRED_VIS.SUBSET_PATH = ""
_C.TENSORBOARD.WRONG_PRED_VIS.TAG = "Incorrectly classified videos."
# Videos the MODEL_VIS and WRONG_PRED_VIS passes write at most, each (0: every test video).
_C.TENSORBOARD.VIS_MAX_VIDEOS = 16

# ---------------------------------------------------------------------------- #
# Demo (tools/demo.py, or run_net with DEMO.ENABLE): the test's clip slid over one video or a
# camera, the top classes drawn on a copy of the video, a timeline and the windows' scores.
# ---------------------------------------------------------------------------- #
_C.DEMO = CfgNode()
# Make run_net run the demo (with TEST.CHECKPOINT_FILE_PATH) instead of training and testing.
_C.DEMO.ENABLE = False
# Class names: one per line, or a JSON {name: id} (PySlowFast's format); empty: the checkpoint's.
_C.DEMO.LABEL_FILE_PATH = ""
# Read camera N (/dev/videoN) live instead of INPUT_VIDEO; -1: read INPUT_VIDEO.
_C.DEMO.WEBCAM = -1
# The video to classify.
_C.DEMO.INPUT_VIDEO = ""
# Size of the output video; 0: the input's (one of the two given: the other keeps the aspect).
_C.DEMO.DISPLAY_WIDTH = 0
_C.DEMO.DISPLAY_HEIGHT = 0
# Frames of the input that consecutive windows share (the stride is the window less this).
_C.DEMO.BUFFER_SIZE = 0
# The output video (H.264 MP4), beside which the timeline (.png) and the windows (.json) are
# written; empty: OUTPUT_DIR/demo/<input name>.mp4.
_C.DEMO.OUTPUT_FILE = ""
# Frame rate of the output video; -1: the input's.
_C.DEMO.OUTPUT_FPS = -1
# Frame rate assumed for a camera that reports none.
_C.DEMO.FPS = 30


def get_cfg() -> CfgNode:
    """A fresh, mutable copy of the defaults."""
    return _C.clone()
