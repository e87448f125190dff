import pytest


@pytest.fixture(scope="session")
def shipped_judge():
    """The shipped SceneJudge, loaded once, when a test first asks for it (not at collection)."""
    from reasondiff.mini.judge import SceneJudge

    return SceneJudge.shipped()
