"""CI runs the fuzzers on a fixed sequence of examples, so a red build always means a
regression; ``GOWA_FUZZ_EXPLORE=1`` draws new examples each run, to hunt for new bugs."""

import os

DERANDOMIZE = os.environ.get("GOWA_FUZZ_EXPLORE") != "1"
