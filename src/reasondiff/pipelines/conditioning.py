"""Re-export of `reasondiff.conditioning`, where the conditioning layer lives (below pipelines, data and training).

Kept so `from reasondiff.pipelines.conditioning import ...` (the pipeline's own imports, users' code) goes on
working; new code imports `reasondiff.conditioning`.
"""

from ..conditioning import *  # noqa: F401,F403
from ..conditioning import __all__  # noqa: F401
