"""The user study of Appendix B.3: participants rank the videos of several models for the same unpaired
inputs; the mean rank per model is the paper's User Rank (lower is better).

`store` holds questions, each participant's randomised order and the answers in SQLite; `server` serves one
question per page with the standard library's HTTP server.
"""

from .server import make_server
from .store import StudyStore, aggregate, create_study

__all__ = ["StudyStore", "aggregate", "create_study", "make_server"]
