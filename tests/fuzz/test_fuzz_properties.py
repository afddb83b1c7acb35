# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hypothesis over the fuzz targets (tests/fuzz/targets.py): fixed seed, bounded examples.

The coverage-guided runs (atheris) are ``scripts/fuzz.sh``; these run in the
test command and replay the seed corpus plus a few hundred generated inputs
per target.  A failure is an exception outside the documented error classes
(or an rc 6 result), shown by hypothesis with its input.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, example, given, seed, settings, strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable-next=wrong-import-position
import targets  # noqa: E402

SETTINGS = settings(max_examples=int(os.environ.get('SEV_FUZZ_EXAMPLES', '300')), deadline=None, derandomize=True,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize('name', sorted(targets.TARGETS))
def test_seed_corpus(name):
    """Each target's seeds (real OVMF tails, an EMULATED chain, ...) end in a documented outcome."""
    target, seeds = targets.TARGETS[name]
    for data in seeds():
        target(data)


def _footer_tables():
    """Structured OVMF tails: entries with fuzzed GUIDs (often the known ones), lengths and data."""
    known = [g.bytes_le for g in (targets.ovmf.SEV_HASH_TABLE_GUID, targets.ovmf.SEV_SECRET_AREA_GUID,
                                  targets.ovmf.SEV_ES_RESET_BLOCK_GUID, targets.ovmf.SNP_METADATA_GUID)]
    entry = st.tuples(st.one_of(st.sampled_from(known), st.binary(min_size=16, max_size=16)),
                      st.binary(max_size=24), st.one_of(st.none(), st.integers(0, 0xffff)))

    def build(entries_and_total):
        entries, total_delta = entries_and_total
        body = b''
        for guid, data, length in entries:
            length = len(data) + 18 if length is None else length
            body = data + length.to_bytes(2, 'little') + guid + body
        total = len(body) + 18 + total_delta
        return (total & 0xffff).to_bytes(2, 'little') + body
    return st.tuples(st.lists(entry, max_size=6), st.integers(-40, 40)).map(build)


@SETTINGS
@seed(20261130)
@given(st.one_of(st.binary(max_size=4096), _footer_tables()))
@example(b'\xff\xff')
@example(b'\x00\x00')
def test_ovmf_footer(data):
    targets.target_ovmf(data)


@SETTINGS
@seed(20261130)
@given(st.binary(max_size=3000))
def test_certificates_and_chain(data):
    targets.target_certs(data)


@SETTINGS
@seed(20261130)
@given(st.one_of(st.binary(max_size=2048), st.text(max_size=512).map(lambda t: t.encode('utf-8', 'surrogatepass'))))
@example(b'<!DOCTYPE d [<!ENTITY a "aaaa">]><domain>&a;</domain>')
@example(b'<domain xmlns="urn:x"><launchSecurity type="sev"><policy>' + b'f' * 5000 + b'</policy></launchSecurity>'
         b'</domain>')
def test_domain_xml_and_host_report(data):
    targets.target_xml(data)


@SETTINGS
@seed(20261130)
@given(st.binary(min_size=0, max_size=400))
def test_validate_arguments(data):
    targets.target_args(data)


def test_every_single_hostile_option_alone():
    """Each option of the valid validation replaced, alone, by each of its hostile values (or removed):
    exhaustive over target_args's tables (input bytes: one mutation, option index, value index)."""
    targets.target_args(b'')
    outcomes = set()
    for option in range(len(targets.HOSTILE_NAMES)):
        for value in range(64):
            result = targets.target_args(bytes([0, option, value]))
            outcomes.add(None if result is None else result['rc'])
    # the table reaches Ansible's refusals, engine refusals, mismatches and valid runs
    assert {None, 0, 1, 2} <= outcomes, outcomes


@SETTINGS
@seed(20261130)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), min_size=1, max_size=5), st.binary(max_size=80))
def test_validate_arguments_combined(mutations, small_files):
    """Several options replaced at once (structured: option index, value index), then the small files' bytes."""
    chosen = b''.join(bytes([option, value]) for option, value in mutations)
    targets.target_args(bytes([len(mutations) - 1]) + chosen + small_files)
