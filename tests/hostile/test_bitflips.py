# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Never a false pass (issue 10, item 5): every single-bit flip of a measured input fails validation.

Exhaustive, in-process, on the small inputs: every bit of the measurement (MAC
and mnonce), TIK, policy, API version, build id, cmdline, a 512-byte kernel and
initrd, the firmware's footer table (its measured fields) and the register area
(first 1 KiB) of both VMSAs; sampled on the rest of the VMSA pages (2048 bits
each), the 64 KiB firmware body (1024 bits) and large images (4 MiB firmware,
16 MiB kernel, 48 bits each).  All 65,536 VMSA bits would take ~70 CPU-seconds
here (the engine hashes in a thread pool per call), over the suite's budget.  Each flip declares its class: a mismatch (rc 1) where the input stays
well-formed, "rejected" (rc 1 or a refusal) where a flip may make it malformed
(footer, policy bits, a cmdline byte turned NUL).  Each series has a time budget.
"""

from __future__ import annotations

import base64
import random
import time

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.sev import validation
from ansible_collections.confidential.sev.tests.hostile import flips

BUDGET = 60.0          # seconds per series, under the suite's limit on 2 cores; a series over it fails


@pytest.fixture(scope='module')
def launch(tmp_path_factory):
    good = flips.Launch(tmp_path_factory.mktemp('flips'))
    result = good.verdict()
    assert result['valid'] is True and result['rc'] == 0, result
    return good


@pytest.fixture
def files_hashed_once(monkeypatch):
    """For flips of inputs that are not files: the unchanged firmware, kernel and initrd are
    hashed once by the real function, and that result reused (the rest of the validation runs in full)."""
    real, memo = validation.hash_measured_files, {}

    def hash_once(*args, **kwargs):
        key = repr((args, sorted(kwargs.items())))
        if key not in memo:
            memo[key] = real(*args, **kwargs)
        return memo[key]
    monkeypatch.setattr(validation, 'hash_measured_files', hash_once)


def run_series(name, flips_iter):
    """``flips_iter`` yields (label, result, expected rc set); all problems, the count, the time."""
    started, problems, count = time.monotonic(), [], 0
    for label, result, expected in flips_iter:
        count += 1
        problem = flips.check(result, expected, '%s %s' % (name, label))
        if problem:
            problems.append(problem)
    elapsed = time.monotonic() - started
    assert not problems, '%d of %d flips wrong, first: %s' % (len(problems), count, problems[:5])
    assert elapsed < BUDGET, '%s: %d flips took %.1f s (budget %.0f s)' % (name, count, elapsed, BUDGET)
    return count


def memory_flips(launch, option, data, bits=None, expected=None):
    expected = flips.MISMATCH if expected is None else expected
    for bit in (range(len(data) * 8) if bits is None else bits):
        yield bit, launch.verdict(**{option: flips.flipped(data, bit)}), expected


def test_measurement_and_mnonce_every_bit(launch, files_hashed_once):
    raw = base64.b64decode(launch.measurement)

    def series():
        for bit in range(len(raw) * 8):
            changed = base64.b64encode(flips.flipped(raw, bit)).decode()
            yield bit, launch.verdict(measurement=changed), flips.MISMATCH
    assert run_series('measurement', series()) == 384


def test_tik_every_bit(launch, files_hashed_once):
    assert run_series('tik', memory_flips(launch, 'tik', flips.TIK)) == 128


@pytest.mark.parametrize('cpu', [0, 1])
def test_vmsa_register_area_every_bit_rest_sampled(launch, files_hashed_once, cpu):
    """Every bit of the first 1 KiB of each VMSA page (the save area's register fields that the
    reset state sets: segments, control registers, RIP, RDX, XCR0...), 2048 sampled in the rest."""
    page = launch.vmsas[cpu]
    bits = list(range(1024 * 8)) + sorted(random.Random(cpu).sample(range(1024 * 8, len(page) * 8), 2048))
    assert run_series('vmsa_cpu%d' % cpu, memory_flips(launch, 'vmsa_cpu%d' % cpu, page, bits)) == 8192 + 2048


def test_api_fields_build_id_policy_every_bit(launch, files_hashed_once):
    def series():
        for option, value, width, expected in (('api_major', flips.API[0], 8, flips.MISMATCH),
                                               ('api_minor', flips.API[1], 8, flips.MISMATCH),
                                               ('build_id', flips.BUILD_ID, 8, flips.MISMATCH),
                                               # a policy flip may be refused (ES, NODBG, NOKS, reserved bits)
                                               ('policy', flips.POLICY, 32, flips.REJECTED)):
            for bit in range(width):
                yield '%s bit %d' % (option, bit), launch.verdict(**{option: value ^ (1 << bit)}), expected
    assert run_series('api/build/policy', series()) == 56


def test_cmdline_every_bit(launch, files_hashed_once):
    def series():
        for bit in range(len(flips.CMDLINE) * 8):
            changed = flips.flipped(flips.CMDLINE, bit)
            # a byte turned NUL may be refused (QEMU hashes up to the first NUL)
            expected = flips.REJECTED if 0 in changed else flips.MISMATCH
            yield bit, launch.verdict(cmdline_b64=base64.b64encode(changed).decode()), expected
    assert run_series('cmdline', series()) == len(flips.CMDLINE) * 8


def file_flips(launch, name, bits, expected):
    """Flip one bit of the file in place, validate, restore."""
    path = launch.paths[name]
    with open(path, 'r+b') as stream:
        for bit in bits:
            stream.seek(bit // 8)
            original = stream.read(1)[0]
            stream.seek(bit // 8)
            stream.write(bytes([original ^ (1 << (bit % 8))]))
            stream.flush()
            result = launch.verdict()
            stream.seek(bit // 8)
            stream.write(bytes([original]))
            stream.flush()
            yield expected(bit) if callable(expected) else expected, result
    assert launch.verdict()['valid'] is True   # restored


def labelled(name, pairs, bits):
    for bit, (expected, result) in zip(bits, pairs):
        yield bit, result, expected


@pytest.mark.parametrize('name', ['kernel', 'initrd'])
def test_kernel_initrd_every_bit(launch, name):
    bits = list(range(512 * 8))
    assert run_series(name, labelled(name, file_flips(launch, name, bits, flips.MISMATCH), bits)) == 4096


def test_firmware_footer_every_bit_body_sampled(launch):
    size = len(launch.firmware)
    footer_bits = list(range((size - flips.FOOTER_TAIL) * 8, size * 8))
    body_bits = sorted(random.Random(10).sample(range((size - flips.FOOTER_TAIL) * 8), 1024))

    def expected(bit):
        # the footer table: a flip may make it malformed (refused) or another image (mismatch)
        return flips.REJECTED if bit in footer_set else flips.MISMATCH
    footer_set = set(footer_bits)
    bits = footer_bits + body_bits
    assert run_series('firmware', labelled('firmware', file_flips(launch, 'firmware', bits, expected), bits)) \
        == len(bits)


def test_large_inputs_sampled(tmp_path):
    """A 4 MiB firmware (an OVMF's size) and a 16 MiB kernel, 48 random bits of each."""
    big = flips.Launch(tmp_path, firmware_body=4 * 1024 * 1024 - 200, kernel=bytes(range(256)) * 65536)
    assert big.verdict()['valid'] is True
    rng = random.Random(5)
    total = 0
    for name, size in (('firmware', len(big.firmware)), ('kernel', len(big.kernel))):
        bits = sorted(rng.sample(range(size * 8), 48))
        # a sample may land in the firmware's footer table
        footer_start = (len(big.firmware) - flips.FOOTER_TAIL) * 8

        def expected(bit, name=name, footer_start=footer_start):
            return flips.REJECTED if name == 'firmware' and bit >= footer_start else flips.MISMATCH
        total += run_series(name, labelled(name, file_flips(big, name, bits, expected), bits))
    assert total == 96
