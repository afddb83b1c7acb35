# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coverage-guided fuzzing (atheris, libFuzzer) of one target of tests/fuzz/targets.py.

    python tests/fuzz/run_atheris.py TARGET CORPUS_DIR CRASH_DIR [libFuzzer options...]

scripts/fuzz.sh runs it per target with -max_total_time.  The collection's
modules are instrumented (atheris.instrument_imports); the seed corpus is
written into CORPUS_DIR first.  A crash (any exception outside the documented
error classes, see targets.py) stops libFuzzer, which writes the input to
CRASH_DIR/crash-<sha1> and prints the traceback.
"""

from __future__ import annotations

import hashlib
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=['ansible_collections.confidential.sev.plugins']):
    import targets  # noqa: E402  pylint: disable=wrong-import-position


def main():
    name, corpus, crashes = sys.argv[1:4]
    target, seeds = targets.TARGETS[name]
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    for data in seeds():
        with open(os.path.join(corpus, 'seed-' + hashlib.sha1(data).hexdigest()), 'wb') as f:
            f.write(data)
    # targets that need files make them before the clock starts
    target(b'')
    argv = [sys.argv[0]] + sys.argv[4:] + ['-artifact_prefix=' + crashes.rstrip('/') + '/', corpus]
    atheris.Setup(argv, target)
    atheris.Fuzz()


if __name__ == '__main__':
    main()
