"""esc-bench: an evaluation harness for emotional-support conversation models."""

import os as _os

# litellm otherwise fetches its price map from the network at import time.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
