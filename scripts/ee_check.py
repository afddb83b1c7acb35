# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of scripts/ee.sh: ansible-builder introspect and create on the built collection.

Run by scripts/ee.sh after it has installed ansible-builder and installed the built
tarball into WORK/collections.  Prints one line per check; exit 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

import yaml

COLLECTION = 'confidential.sev'


def requirement_names(lines):
    """Package names of pip requirement lines (no version, marker or comment)."""
    names = []
    for line in lines:
        line = line.split('#', 1)[0].strip()
        if line:
            names.append(re.split(r'[<>=!~;\[ ]', line, maxsplit=1)[0].lower())
    return names


def read_lines(path):
    with open(path, encoding='utf-8') as f:
        return [line.rstrip('\n') for line in f if line.strip() and not line.lstrip().startswith('#')]


class Checks:
    def __init__(self):
        self.failed = []

    def check(self, ok, what, detail=''):
        print('%s  %s%s' % ('PASS' if ok else 'FAIL', what, (': ' + detail) if detail and not ok else ''))
        if not ok:
            self.failed.append(what)
        return ok


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, **kwargs)


def check_introspect(checks, builder, repo, work):
    collections = os.path.join(work, 'collections')
    installed = os.path.join(collections, 'ansible_collections', 'confidential', 'sev')
    for name in ('requirements.txt', 'bindep.txt', os.path.join('meta', 'execution-environment.yml')):
        checks.check(os.path.isfile(os.path.join(installed, name)), 'the built tarball ships %s' % name)
    pip_out, bindep_out = os.path.join(work, 'introspect-pip.txt'), os.path.join(work, 'introspect-bindep.txt')
    res = run([builder, 'introspect', collections, '--write-pip', pip_out, '--write-bindep', bindep_out])
    if not checks.check(res.returncode == 0, 'ansible-builder introspect exits 0', res.stderr[-2000:]):
        return
    data = yaml.safe_load(res.stdout) or {}
    # ansible-builder 3 prints flat lists, each line tagged "# from collection NS.NAME"
    tag = '# from collection %s' % COLLECTION
    python = [line for line in data.get('python') or [] if line.rstrip().endswith(tag)]
    system = [line for line in data.get('system') or [] if line.rstrip().endswith(tag)]
    want_py = requirement_names(read_lines(os.path.join(repo, 'requirements.txt')))
    got_py = requirement_names(python)
    checks.check(bool(want_py) and got_py == want_py,
                 'introspect lists the Python requirements under %s (%s)' % (COLLECTION, ', '.join(want_py)),
                 'got %r' % (data.get('python'),))
    for needed in ('cryptography', 'lxml', 'libvirt-python'):
        checks.check(needed in got_py, 'introspect lists %s' % needed, 'got %r' % got_py)
    want_sys = read_lines(os.path.join(repo, 'bindep.txt'))
    got_sys = [line.split('#', 1)[0].strip() for line in system]
    checks.check(bool(want_sys) and got_sys == [line.strip() for line in want_sys],
                 'introspect lists the %d bindep.txt lines under %s' % (len(want_sys), COLLECTION),
                 'got %r' % (data.get('system'),))
    got_names = {line.split()[0] for line in got_sys}
    for needed in ('libvirt-dev', 'libvirt-devel', 'gcc', 'pkg-config', 'python3-dev', 'python3-devel'):
        checks.check(needed in got_names, 'introspect lists system package %s' % needed)
    if os.path.exists(pip_out):
        checks.check(requirement_names(read_lines(pip_out)) == want_py,
                     'introspect --write-pip writes the same requirements')
    print('--- introspect output ---\n' + res.stdout.strip() + '\n---')


def check_context(checks, context, label, galaxy_names):
    containerfile = os.path.join(context, 'Containerfile')
    if not checks.check(os.path.isfile(containerfile), '%s: create wrote %s' % (label, containerfile)):
        return
    with open(containerfile, encoding='utf-8') as f:
        text = f.read()
    checks.check('ansible-galaxy collection install' in text and 'requirements.yml' in text,
                 '%s: the Containerfile installs the collections of _build/requirements.yml' % label)
    checks.check('introspect' in text and 'assemble' in text,
                 '%s: the Containerfile introspects the installed collections and assembles their requirements'
                 % label)
    req_yml = os.path.join(context, '_build', 'requirements.yml')
    if checks.check(os.path.isfile(req_yml), '%s: _build/requirements.yml exists' % label):
        with open(req_yml, encoding='utf-8') as f:
            galaxy = yaml.safe_load(f) or {}
        names = [c.get('name') if isinstance(c, dict) else c for c in galaxy.get('collections') or []]
        checks.check(names == galaxy_names, '%s: it names %s' % (label, galaxy_names), 'got %r' % names)
    scripts = os.path.join(context, '_build', 'scripts')
    checks.check(all(os.path.isfile(os.path.join(scripts, s)) for s in ('introspect.py', 'assemble')),
                 '%s: _build/scripts has introspect.py and assemble' % label)


def check_create(checks, builder, repo, work, tarball):
    # 1. the users' file, as shipped (the collection from Galaxy)
    context = os.path.join(work, 'context-galaxy')
    res = run([builder, 'create', '-f', os.path.join(repo, 'execution-environment.yml'), '-c', context,
               '--output-filename', 'Containerfile'])
    if checks.check(res.returncode == 0, 'ansible-builder create -f execution-environment.yml exits 0',
                    (res.stdout + res.stderr)[-2000:]):
        check_context(checks, context, 'execution-environment.yml', [COLLECTION])
    # 2. a local variant: the built tarball copied into the context, plus the collection's
    # own requirements files given explicitly (so that _build/ holds them)
    with open(os.path.join(repo, 'execution-environment.yml'), encoding='utf-8') as f:
        spec = yaml.safe_load(f)
    local_dir = os.path.join(work, 'local-ee')
    os.makedirs(local_dir)
    shutil.copy(tarball, local_dir)
    shutil.copy(os.path.join(repo, 'requirements.txt'), local_dir)
    shutil.copy(os.path.join(repo, 'bindep.txt'), local_dir)
    base = os.path.basename(tarball)
    spec['dependencies']['galaxy'] = {'collections': [{'name': '/build/collections/' + base, 'type': 'file'}]}
    spec['dependencies']['python'] = 'requirements.txt'
    spec['dependencies']['system'] = 'bindep.txt'
    # create copies it to _build/collections/; the galaxy stage's `COPY _build /build` puts it at /build/collections
    spec['additional_build_files'] = [{'src': base, 'dest': 'collections'}]
    local_spec = os.path.join(local_dir, 'execution-environment.yml')
    with open(local_spec, 'w', encoding='utf-8') as f:
        yaml.safe_dump(spec, f, sort_keys=False)
    context = os.path.join(work, 'context-local')
    res = run([builder, 'create', '-f', local_spec, '-c', context, '--output-filename', 'Containerfile'])
    if not checks.check(res.returncode == 0, 'ansible-builder create on the local variant exits 0',
                        (res.stdout + res.stderr)[-2000:]):
        return
    check_context(checks, context, 'local variant', ['/build/collections/' + base])
    for name in ('requirements.txt', 'bindep.txt'):
        built = os.path.join(context, '_build', name)
        ok = os.path.isfile(built)
        if ok:
            with open(built, encoding='utf-8') as f, open(os.path.join(repo, name), encoding='utf-8') as g:
                ok = f.read() == g.read()
        checks.check(ok, 'local variant: _build/%s is the collection\'s %s' % (name, name))
    checks.check(os.path.isfile(os.path.join(context, '_build', 'collections', base)),
                 'local variant: the tarball is in the context (_build/collections/%s)' % base)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--builder', required=True)
    parser.add_argument('--repo', required=True)
    parser.add_argument('--work', required=True)
    parser.add_argument('--tarball', required=True)
    args = parser.parse_args(argv)
    checks = Checks()
    check_introspect(checks, args.builder, args.repo, args.work)
    check_create(checks, args.builder, args.repo, args.work, args.tarball)
    print('no container daemon and no base image are reachable here: `ansible-builder build` is not run; '
          'introspect and create are the ceiling (issue 11)')
    if checks.failed:
        print('FAILED: %d check(s): %s' % (len(checks.failed), '; '.join(checks.failed)))
        return 1
    print('OK: all execution environment checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
