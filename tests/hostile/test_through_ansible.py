# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A sample of the corpus and of the bit flips through real ansible-playbook (localhost), one run.

The same cases, built the same way, as tasks of one play with ignore_errors;
their registered results are written to a file and asserted like the
in-process ones (class, message naming the input, no key or secret).  Cases
whose arguments YAML cannot carry (NUL, lone surrogates) or that would be
templated ('{{') stay in-process only.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import sys

import pytest

from ansible_collections.confidential.sev.tests.hostile import corpus, runner
from ansible_collections.confidential.sev.tests.hostile.test_corpus import problems

BIN = pathlib.Path(sys.executable).parent
MODULES = {'validate': 'confidential.sev.sev_measurement_validate', 'session': 'confidential.sev.sev_session',
           'reference': 'confidential.sev.sev_reference_measurement', 'record': 'confidential.sev.sev_launch_record'}
# Always through Ansible: the non-regular files and keys-as-paths (the hang and leak cases).
PINNED = ('path/firmware/dev-zero', 'path/kernel/symlink-urandom', 'path/initrd/fifo', 'path/tik/dev-urandom',
          'key/tik/hex-as-path', 'key/tik/base64-as-path', 'secret/passphrase-as-path',
          'integer/api_major/5000-digits', 'integer/build_id/non-ascii-digits', 'ovmf/es/entry-length-zero',
          'ovmf/sev-matching/secret-area-zero', 'cert/pdh/off-curve', 'cert/pek/signature-bit',
          'session/output/tek-is-tik', 'reference/dest/dev-null', 'record/host/5000', 'baseline/validate',
          'session/baseline', 'base64/measurement/47-bytes', 'cmdline/b64-embedded-nul')
SAMPLE_EVERY = 29


def carried_by_yaml(value):
    text = json.dumps(value)
    return '\\u0000' not in text and '\\udc' not in text and '{{' not in text and '{%' not in text \
        and len(text) < 200000


def sampled_cases():
    chosen = [case for case in corpus.CASES if case.id in PINNED]
    others = [case for case in corpus.CASES if case.driver in MODULES and case.id not in PINNED]
    chosen += others[::SAMPLE_EVERY]
    return chosen


def flip_cases():
    """(id, expected class, mutate(env, args)) for one bit of each measured input, as files and options."""
    def flip_file(option, offset):
        def mutate(env, args):
            data = bytearray(pathlib.Path(args[option]).read_bytes())
            data[offset % len(data)] ^= 0x10
            args[option] = env.write('flipped-%s' % option, bytes(data))
        return mutate

    def flip_measurement(offset):
        def mutate(env, args):
            raw = bytearray(base64.b64decode(args['measurement']))
            raw[offset] ^= 0x01
            args['measurement'] = base64.b64encode(bytes(raw)).decode()
        return mutate

    def flip_int(option, bit):
        def mutate(env, args):
            args[option] ^= 1 << bit
        return mutate

    def vmsa(mutate):
        def both(env, args):
            args.update(cpu_family=None, cpu_model=None, cpu_stepping=None, vmsa_cpu0=env.path('vmsa0.bin'),
                        vmsa_cpu1=env.path('vmsa1.bin'))
            mutate(env, args)
        return both

    def flip_cmdline(env, args):
        args['cmdline'] = corpus.CMDLINE.replace('ttyS0', 'ttyS1')   # '0' -> '1' is one bit
    return [
        ('flip/firmware-body', corpus.MISMATCH, flip_file('firmware', 1000)),
        ('flip/firmware-footer', corpus.REJECTED, flip_file('firmware', -60)),
        ('flip/kernel', corpus.MISMATCH, flip_file('kernel', 77)),
        ('flip/initrd', corpus.MISMATCH, flip_file('initrd', 1500)),
        ('flip/tik', corpus.MISMATCH, flip_file('tik', 9)),
        ('flip/vmsa-cpu0', corpus.MISMATCH, vmsa(flip_file('vmsa_cpu0', 0x310))),
        ('flip/vmsa-cpu1', corpus.MISMATCH, vmsa(flip_file('vmsa_cpu1', 0x178))),
        ('flip/measurement-mac', corpus.MISMATCH, flip_measurement(5)),
        ('flip/measurement-mnonce', corpus.MISMATCH, flip_measurement(40)),
        ('flip/policy-nosend', corpus.REJECTED, flip_int('policy', 3)),
        ('flip/api-minor', corpus.MISMATCH, flip_int('api_minor', 0)),
        ('flip/api-major', corpus.MISMATCH, flip_int('api_major', 2)),
        ('flip/build-id', corpus.MISMATCH, flip_int('build_id', 7)),
        ('flip/cmdline', corpus.MISMATCH, flip_cmdline),
    ]


def build_play(root):
    """(playbook text, [(task var, Case)])."""
    tasks, cases = [], []
    platform = corpus.Lab.platform()
    del platform
    entries = [(case, None) for case in sampled_cases()]
    for case_id, expect, mutate in flip_cases():
        entries.append((corpus.Case(case_id, 'validate', expect, (), None), mutate))
    for index, (case, mutate) in enumerate(entries):
        env = corpus.Env(root / ('case%03d' % index))
        args = env.validate_args() if mutate is not None else case.build(env)
        if mutate is not None:
            mutate(env, args)
        args = dict((key, value) for key, value in args.items() if value is not None)
        if not carried_by_yaml(args):
            continue
        var = 'result_%03d' % index
        tasks.append('    - name: %s\n      %s: %s\n      register: %s\n      ignore_errors: true\n'
                     % (json.dumps(case.id), MODULES[case.driver], json.dumps(args), var))
        cases.append((var, case))
    dump = '{{ {%s} | to_json }}' % ', '.join("'%s': %s" % (var, var) for var, dummy in cases)
    play = ('- hosts: localhost\n  gather_facts: false\n  vars:\n    ansible_connection: local\n'
            '    ansible_python_interpreter: "{{ ansible_playbook_python }}"\n  tasks:\n' + ''.join(tasks)
            + '    - name: Write every registered result\n      ansible.builtin.copy:\n        content: %s\n'
              '        dest: %s\n        mode: "0600"\n' % (json.dumps(dump), json.dumps(str(root / 'results.json'))))
    return play, cases


def collections_root():
    for entry in sys.path:
        if entry and os.path.isdir(os.path.join(entry, 'ansible_collections', 'confidential', 'sev')):
            return os.path.abspath(entry)
    raise AssertionError('confidential.sev is not importable from sys.path')


@pytest.fixture(scope='module')
def played(tmp_path_factory):
    root = tmp_path_factory.mktemp('through-ansible')
    play, cases = build_play(root)
    (root / 'site.yml').write_text(play)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               ANSIBLE_LOCAL_TEMP=str(root / 'tmp'), ANSIBLE_CONFIG=str(root / 'none.cfg'))
    # Every case's 10 s, and then some: a hang fails the run instead of the suite.
    process = subprocess.run(  # pylint: disable=subprocess-run-check
        [str(BIN / 'ansible-playbook'), '-i', 'localhost,', 'site.yml'], cwd=str(root), env=env,
        capture_output=True, text=True, timeout=runner.TIME_LIMIT * len(cases) / 4 + 60)
    results = json.loads((root / 'results.json').read_text()) if (root / 'results.json').exists() else None
    return process, cases, results


def test_sample_through_ansible_playbook(played):
    process, cases, results = played
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    assert len(cases) >= 40
    found = []
    for var, case in cases:
        outcome = runner.Outcome(result=results[var])
        for problem in problems(case, outcome, peak_limit=float('inf'), through_ansible=True):
            found.append('%s: %s' % (case.id, problem))
    # ansible-playbook itself never prints a traceback or a secret
    output = (process.stdout + process.stderr).encode()
    assert b'Traceback' not in output
    for value in corpus.SECRETS:
        assert value.hex().encode() not in output and base64.b64encode(value) not in output
    assert not found, '%d of %d cases wrong through Ansible:\n%s' % (len(found), len(cases), '\n'.join(found))
