"""Every environment variable camsort reads, in one place, with its default.

The function (and the local worker, which sets the same variables) reads these once
per container through :func:`functions.settings.load_settings`.
"""

# Where the model artifact lives: a local directory or ``s3://bucket/prefix/`` holding
# ``model.onnx`` and ``manifest.json``. An S3 artifact is downloaded once to /tmp.
MODEL_URI = "CAMSORT_MODEL_URI"
# The sha256 of the one model.onnx this deployment may run (serverless.yml's modelSha256 param,
# printed by `camsort upload-model`). Any other model is refused, whatever its manifest says.
# Required: empty or unset fails the cold start (a missing pin must never turn pinning off).
MODEL_SHA256 = "CAMSORT_MODEL_SHA256"
# DynamoDB results table name.
RESULTS_TABLE = "CAMSORT_RESULTS_TABLE"
# Only keys under this prefix are frames (S3 notification filters use the same value).
FRAMES_PREFIX = "CAMSORT_FRAMES_PREFIX"
DEFAULT_FRAMES_PREFIX = "frames/"
# Regex applied to the key *after* the prefix; named group ``camera`` is required,
# named group ``captured`` (e.g. 20261122T073900123Z or epoch milliseconds) is optional.
KEY_PATTERN = "CAMSORT_KEY_PATTERN"
# The default reads the capture time from a file name that is exactly a compact UTC timestamp
# (frames/cam-01/20261122T073900123Z.jpg); any other name falls back to LastModified.
# It asks nothing of the extension (any case, or none): the notification has no suffix
# filter and the content decides (a non-image is rejected as `not_jpeg_or_png`).
DEFAULT_KEY_PATTERN = (
    r"^(?P<camera>[^/]+)/(?:[^/]+/)*(?:(?P<captured>\d{8}T\d{6}(?:\d{3})?Z)(?:\.[^/.]*)?|[^/]+)$"
)
# A key's capture time is trusted only up to this many seconds after the object's LastModified
# (S3's own clock, when it was uploaded): a frame cannot be captured after its upload, and a
# camera clock running ahead would make every later frame "late" and freeze its state. Past
# the skew the result's capture time is LastModified, and the item keeps the key's claim
# (key_captured_at).
CAPTURE_SKEW_SECONDS = "CAMSORT_CAPTURE_SKEW_SECONDS"
DEFAULT_CAPTURE_SKEW_SECONDS = 300
# Byte limit checked against the event's object size before any download.
MAX_BYTES = "CAMSORT_MAX_BYTES"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Pixel limit (width x height) checked from the image header before decoding.
MAX_PIXELS = "CAMSORT_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 40_000_000
# Per-frame decode memory limit in MiB (functions/frames/decode_cost.py): a frame whose decode would
# hold more is rejected (`too_much_decode_memory`) before any pixel is decoded. The default fits
# an 8-bit RGB frame at the default pixel limit (40 MP x Pillow's 4 bytes a pixel + strips) and
# refuses the same pixels with alpha, a colour key or a palette (which cost 5-8 bytes a pixel).
MAX_DECODE_MIB = "CAMSORT_MAX_DECODE_MIB"
DEFAULT_MAX_DECODE_MIB = 192
# Set by Lambda (and by the local worker from the deployed memorySize): the container's memory,
# which sizes the decode budget its frames share (functions/frames/decode_budget.py).
AWS_LAMBDA_FUNCTION_MEMORY_SIZE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
# onnxruntime intra-op threads; default: the CPUs this process may use.
ONNX_THREADS = "CAMSORT_ONNX_THREADS"
# Write label / confidence / model version as object tags ("true" / "false").
WRITE_TAGS = "CAMSORT_WRITE_TAGS"
# Where an S3 model artifact is cached inside the container.
MODEL_CACHE_DIR = "CAMSORT_MODEL_CACHE_DIR"
DEFAULT_MODEL_CACHE_DIR = "/tmp/camsort-model"

# Review queue (docs/design.md, "Review"): a small DynamoDB table of frames a person should
# label. Unset: no review marking.
REVIEW_TABLE = "CAMSORT_REVIEW_TABLE"
# A decided frame whose top probability lies within this margin of its label's threshold is
# marked too (an ``unknown`` frame always is).
REVIEW_MARGIN = "CAMSORT_REVIEW_MARGIN"
DEFAULT_REVIEW_MARGIN = 0.05
# At most this many frames marked per camera per clock hour (one bad camera cannot flood it).
REVIEW_PER_HOUR = "CAMSORT_REVIEW_PER_HOUR"
DEFAULT_REVIEW_PER_HOUR = 20

# Named models besides ``default`` (docs/regions.md): a JSON object
# {"bay": {"uri": "s3://<modelBucket>/models/bay/<version>/", "sha256": "<model.onnx sha256>",
#          "candidate_uri": ..., "candidate_sha256": ...}} (candidate optional). Each is pinned like the
# default model: an empty or wrong sha256 fails the cold start. Unset or empty: ``default`` only.
NAMED_MODELS = "CAMSORT_NAMED_MODELS"
# A camera's regions live in s3://<model bucket>/cameras/<camera_id>.json (the model URI's bucket).
# Each container re-checks a camera's object (a conditional GET on its ETag) at most this often:
# a change is picked up within one TTL, without a redeploy. 0: check on every frame.
CAMERA_CONFIG_TTL_SECONDS = "CAMSORT_CAMERA_CONFIG_TTL_SECONDS"
DEFAULT_CAMERA_CONFIG_TTL_SECONDS = 60

# Shadow scoring: a candidate model run on sampled invocations after the live results are
# written; its answers are recorded beside the live result (shadow_* attributes). Unset URI:
# no shadow scoring.
CANDIDATE_MODEL_URI = "CAMSORT_CANDIDATE_MODEL_URI"
# The candidate's model.onnx sha256: the candidate is refused (and shadow scoring stays off)
# when the artifact hashes to anything else. Required with the URI.
CANDIDATE_MODEL_SHA256 = "CAMSORT_CANDIDATE_MODEL_SHA256"
# Fraction of invocations (0..1) on which the candidate runs.
SHADOW_SAMPLE_RATE = "CAMSORT_SHADOW_SAMPLE_RATE"
DEFAULT_SHADOW_SAMPLE_RATE = 0.1
# Camera state (docs/state-and-events.md). Unset or empty: the stage keeps no state
# and publishes no events (the feature is switched off).
STATE_TABLE = "CAMSORT_STATE_TABLE"
# EventBridge bus the state changes are published to; unset or empty: event items only.
EVENT_BUS = "CAMSORT_EVENT_BUS"
# Camera health (docs/camera-health.md): covered, defocused, moved, dark, told per camera from its
# own frames and kept in its state item (so it needs CAMSORT_STATE_TABLE). "false" turns it off.
CAMERA_HEALTH = "CAMSORT_CAMERA_HEALTH"
# Frames in a row a condition must hold before the camera's health changes to it (and, for
# RECOVERED, healthy frames in a row before it is back to ok). Fewer: faster, more false alarms.
HEALTH_DARK_FRAMES = "CAMSORT_HEALTH_DARK_FRAMES"
DEFAULT_HEALTH_DARK_FRAMES = 3
HEALTH_COVERED_FRAMES = "CAMSORT_HEALTH_COVERED_FRAMES"
DEFAULT_HEALTH_COVERED_FRAMES = 3
HEALTH_DEFOCUSED_FRAMES = "CAMSORT_HEALTH_DEFOCUSED_FRAMES"
DEFAULT_HEALTH_DEFOCUSED_FRAMES = 3
# Longer: a bus parked in front of the camera changes a good part of the scene for a while.
HEALTH_MOVED_FRAMES = "CAMSORT_HEALTH_MOVED_FRAMES"
DEFAULT_HEALTH_MOVED_FRAMES = 5
HEALTH_RECOVERED_FRAMES = "CAMSORT_HEALTH_RECOVERED_FRAMES"
DEFAULT_HEALTH_RECOVERED_FRAMES = 3
# Healthy frames a camera's reference is learned from before defocus and moves are told.
HEALTH_WARMUP_FRAMES = "CAMSORT_HEALTH_WARMUP_FRAMES"
DEFAULT_HEALTH_WARMUP_FRAMES = 8
# Smoothing rule as JSON: {"default": {...}, "cameras": {"cam-03": {...}}} (functions/state/smoothing.py).
# Unset: the built-in default rule.
SMOOTHING = "CAMSORT_SMOOTHING"

# The scheduled audit function (functions/audit_handler.py).
# The frames bucket it lists (the classifier learns its bucket from each event).
FRAMES_BUCKET = "CAMSORT_FRAMES_BUCKET"
# The dead-letter queue's URL, read without consuming it.
DEAD_LETTER_QUEUE_URL = "CAMSORT_DEAD_LETTER_QUEUE_URL"
# Minutes of history each run covers (versions last modified in [now - window, now]).
AUDIT_WINDOW_MINUTES = "CAMSORT_AUDIT_WINDOW_MINUTES"
DEFAULT_AUDIT_WINDOW_MINUTES = 180
# Minutes a version may wait for its result before it counts as unaccounted.
AUDIT_GRACE_MINUTES = "CAMSORT_AUDIT_GRACE_MINUTES"
DEFAULT_AUDIT_GRACE_MINUTES = 15
# "time-named" (each camera folder, only the hours of the window: frame names are capture
# timestamps, the default layout; the cost stays flat as the bucket grows) or "full" (every
# version under the prefix: for other key layouts, and it grows with the bucket).
AUDIT_LISTING = "CAMSORT_AUDIT_LISTING"
DEFAULT_AUDIT_LISTING = "time-named"

# Read by boto3 itself: points every client at moto's server when running locally.
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
# Read by Powertools.
POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"

# Training / export side (never read by the function).
CACHE_DIR = "CAMSORT_CACHE_DIR"  # featurization + backbone cache; default ~/.cache/camsort

# Set by Lambda itself: when present, the handler module builds its model and clients at
# import time, inside Lambda's init phase.
AWS_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
