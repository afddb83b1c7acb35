# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared configuration for the unit tests.

Hypothesis runs derandomized (the same examples on every run and machine), with
no deadline (CI machines are slow and noisy) and no example database on disk.
Select another profile with HYPOTHESIS_PROFILE=dev (more examples, still
derandomized).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from ansible_collections.confidential.sev.tests.unit.special_files import watchdog

settings.register_profile(
    'ci', derandomize=True, deadline=None, max_examples=200, database=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    'dev', derandomize=True, deadline=None, max_examples=2000, database=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))


@pytest.fixture
def no_hang():
    """Fail (instead of hanging forever) when a write blocks on a FIFO."""
    with watchdog():
        yield
