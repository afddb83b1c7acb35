# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hygiene suite imports its scanner by file, so that the same tests can run against
another checkout of the collection (PYTHONPATH/ANSIBLE_COLLECTIONS_PATH pick the code under test)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
