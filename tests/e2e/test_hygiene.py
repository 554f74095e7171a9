"""The test suites keep to their own rule: no sleep stands for "enough time".

A test waits for a condition with a generous deadline (awtest.wait_until, client_support.until, waitFor in
the TypeScript tests) or proves that nothing more arrives with a later marker event. A sleep is allowed
only inside those helpers, or as pacing that no assertion depends on, and then says so on its line
("pacing only"). This check keeps a new fixed sleep from slipping into any of the suites.
"""

import re

import pytest

from awtest import REPO_ROOT

SUITES = {
    "tests/e2e": "*.py",
    "clients/python/tests": "*.py",
    "clients/ts/test": "*.mjs",
    "tests/browser": "*.mjs",
}
# The condition-waiting helpers themselves, and the process fixtures' kill deadlines.
HELPERS = {"tests/e2e/awtest.py", "clients/python/tests/client_support.py", "clients/ts/test/util.mjs",
           "clients/ts/test/server.mjs"}
SLEEP = re.compile(r"\bsleep\(|setTimeout\(\s*(r|resolve)\s*,")


def suite_files():
    for folder, pattern in SUITES.items():
        for path in sorted((REPO_ROOT / folder).glob(pattern)):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel not in HELPERS and path.name != "test_hygiene.py":
                yield rel


@pytest.mark.parametrize("rel", list(suite_files()))
def test_no_sleep_stands_for_enough_time(rel):
    offending = []
    for number, line in enumerate((REPO_ROOT / rel).read_text(encoding="utf-8").splitlines(), 1):
        if SLEEP.search(line) and "pacing only" not in line:
            offending.append(f"{rel}:{number}: {line.strip()}")
    assert not offending, (
        "a fixed sleep in a test: wait for a condition (wait_until / until / waitFor) or read up to a marker "
        "event instead; pacing that no assertion depends on says 'pacing only' on its line:\n" + "\n".join(offending)
    )
