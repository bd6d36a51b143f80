"""Fixtures the test files share.

Every test gets torch's thread count back as it was (a CLI test with --threads 1 runs in this process and would
otherwise slow the rest of the suite). Files of tiny end-to-end runs ask for `in_tmp` (a default runs/ folder
lands in the temporary folder) and `one_thread` (tiny models run fastest on one thread, and two threads crawl
on a machine busy with other jobs): `pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")`.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _keep_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test in its temporary folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def one_thread():
    """torch on one thread for this test (restored after it by _keep_thread_count)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread_module():
    """torch on one thread for a whole module (for module-scoped fixtures that train a model)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
