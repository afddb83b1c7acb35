# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection tarball ships the collection's own files and nothing else.

A copy of the tree (the files git knows or would add) gets key-like and junk
files planted in every tree the manifest includes and around them: the
README's own example paths (keys/*.tik|tek, secrets/*-luks.key,
out/*.header|payload), the role's state directory, editor and cache files.
``ansible-galaxy collection build`` (galaxy.yml's manifest: allow-list) must
then produce exactly tests/packaging/expected_files.txt, which
``bash scripts/expected_files.sh`` regenerates from the clean tree.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPECTED = REPO / 'tests' / 'packaging' / 'expected_files.txt'
ANSIBLE_GALAXY = pathlib.Path(sys.executable).parent / 'ansible-galaxy'
MARKER = b'PLANTED-BY-TEST-BUILD'
REGENERATE = 'bash scripts/expected_files.sh'

# Relative paths planted in the copy. Every tree the manifest includes
# (plugins/, roles/ incl. files/, playbooks/, docs/ incl. docsite/, meta/,
# changelogs/, tests/), extensions/molecule, the default state directory
# (~/.local/state/confidential.sev/sev_launch, here with HOME at the top of the
# tree) and a state/ directory next to playbooks. Some have extensions the
# manifest ships (.yml, .md, .py, .txt) inside directories that must never ship.
PLANTED = [
    # the README's examples, at the top
    'keys/guest1.tik', 'keys/guest1.tek', 'keys/guest1.tk', 'secrets/guest1-luks.key',
    'out/guest1.header', 'out/guest1.payload', 'keys/vars.yml', 'secrets/notes.md',
    'guest.tik', 'vm1-luks.key',
    # dot files and editor, cache and build leftovers
    '.env', '.env.production', '.idea/workspace.xml', '.idea/inspection/x.yml', '.vscode/settings.json',
    'README.md.swp', '.README.md.swp', 'README.md~', 'galaxy.yml.orig',
    '.pytest_cache/v/cache/nodeids', 'tests/unit/.pytest_cache/README.md',
    '.hypothesis/examples/x', 'build/junk.py', '.venv/lib/junk.py', 'confidential-sev-0.0.9.tar.gz',
    'MANIFEST.json', 'FILES.json',
    'changelogs/.plugin-cache.yaml', 'changelogs/keys/guest.tik',
    # plugins/
    'plugins/modules/keys/guest.tik', 'plugins/modules/__pycache__/sev_session.cpython-311.pyc',
    'plugins/action/secrets/stolen.py', 'plugins/module_utils/out/guest.header',
    'plugins/module_utils/sev/.pytest_cache/README.md', 'plugins/filter/kds_cek_url.py.swp',
    'plugins/modules/.idea/modules.yml',
    # roles/, files/ included
    'roles/sev_launch/files/guest.tik', 'roles/sev_launch/files/guest.tek',
    'roles/sev_launch/files/vm1-luks.key', 'roles/sev_launch/files/keys/guest.yml',
    'roles/sev_launch/files/secrets/luks.md', 'roles/sev_launch/tasks/.main.yml.swp',
    'roles/sev_launch/defaults/main.yml~', 'roles/sev_launch/.vscode/settings.yml',
    'roles/sev_launch/state/hosts/h1/record.yml',
    # playbooks/
    'playbooks/keys/guest1.tik', 'playbooks/keys/guest1.tek', 'playbooks/secrets/guest1-luks.key',
    'playbooks/out/guest1.header', 'playbooks/out/guest1.payload', 'playbooks/secrets/vault.yml',
    'playbooks/.env', 'playbooks/site.yml.swp', 'playbooks/state/hosts/h1/u1/current.json',
    'playbooks/state/seen/abc/def.yml', 'playbooks/group_vars/all/guest.tik',
    # docs/ and the docsite
    'docs/keys/guest.tik', 'docs/secrets/vm1-luks.key', 'docs/out/vm1.header', 'docs/out/notes.md',
    'docs/secrets/a/b/deep.md', 'docs/docsite/rst/.idea/x.rst', 'docs/docsite/.pytest_cache/README.md',
    'docs/docsite/rst/guest.tek', 'docs/state/hosts/h1/u1/launches/l1/record.yml',
    'docs/security.md.swp',
    # meta/
    'meta/keys/guest.tek', 'meta/.runtime.yml.swp', 'meta/guest.tik',
    # tests/: only config.yml and sanity ignores ship
    'tests/keys/guest.tik', 'tests/sanity/out/vm1.header', 'tests/sanity/secrets/ignore-2.16.txt',
    'tests/sanity/.ignore-2.17.txt.swp', 'tests/sanity/guest.tek', 'tests/output/junk.yml',
    'tests/output/bot/ansible-test-sanity.txt', 'tests/unit/keys/guest.tik',
    # extensions/molecule
    'extensions/molecule/default/keys/guest.tik', 'extensions/molecule/default/secrets/luks.key',
    'extensions/molecule/default/.env',
    # the role's default state directory (HOME = the top of the tree) and ./state
    '.local/state/confidential.sev/sev_launch/hosts/h1/u1/current.json',
    '.local/state/confidential.sev/sev_launch/hosts/h1/u1/launches/l1/session/guest.tik',
    '.local/state/confidential.sev/sev_launch/seen/abc/def.json',
    'state/hosts/h1/u1/current.json', 'state/hosts/h1/u1/launches/l1/session/guest.tek',
    'state/hosts/h1/u1/launches/l1/record.yml',
]


def tree_files():
    """The files git knows or would add (tracked; untracked but not ignored)."""
    listed = subprocess.run(['git', '-C', str(REPO), 'ls-files', '-z', '-co', '--exclude-standard'],
                            check=True, capture_output=True).stdout
    return [name for name in listed.decode().split('\0') if name and (REPO / name).exists()]


def build(src, dest):
    process = subprocess.run([str(ANSIBLE_GALAXY), 'collection', 'build', '--force', '--output-path', str(dest),
                              str(src)], capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == 0, 'ansible-galaxy collection build failed:\n%s%s' % (
        process.stdout, process.stderr)
    tarballs = sorted(dest.glob('confidential-sev-*.tar.gz'))
    assert len(tarballs) == 1, tarballs
    return tarballs[0]


def file_list(tarball):
    with tarfile.open(tarball) as tar:
        return sorted(member.name.rstrip('/') for member in tar.getmembers())


@pytest.fixture(scope='module')
def planted_build(tmp_path_factory):
    root = tmp_path_factory.mktemp('packaging')
    src = root / 'src'
    for name in tree_files():
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target, follow_symlinks=False)
    for name in PLANTED:
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(MARKER + b' ' + name.encode() + b'\n')
        target.chmod(0o600)
    tarball = build(src, root / 'dist')
    return src, tarball


def expected():
    return sorted(line for line in EXPECTED.read_text().splitlines() if line)


def test_planted_junk_is_in_the_copy(planted_build):
    """The test plants what it says (a typo'd path would test nothing)."""
    src, dummy = planted_build
    missing = [name for name in PLANTED if not (src / name).is_file()]
    assert missing == []
    assert len(PLANTED) >= 80 and len(set(PLANTED)) == len(PLANTED)


def test_no_planted_file_ships(planted_build):
    dummy, tarball = planted_build
    names = set(file_list(tarball))
    # the build writes its own MANIFEST.json and FILES.json: the planted ones
    # are caught by their content below
    shipped = sorted(set(PLANTED) & names - {'MANIFEST.json', 'FILES.json'})
    assert shipped == [], 'planted key/junk files shipped in the tarball: %s (fix galaxy.yml manifest:)' % shipped
    # nor does their content, under any name
    with tarfile.open(tarball) as tar:
        carrying = [member.name for member in tar.getmembers()
                    if member.isfile() and MARKER in tar.extractfile(member).read()]
    assert carrying == []


def test_file_list_is_the_expected_list(planted_build):
    dummy, tarball = planted_build
    got, want = file_list(tarball), expected()
    extra = sorted(set(got) - set(want))
    missing = sorted(set(want) - set(got))
    assert not extra and not missing, (
        'the collection tarball differs from tests/packaging/expected_files.txt:\n'
        '  shipped but not expected: %s\n  expected but not shipped: %s\n'
        'A key, secret, cache or editor file shipped: fix the manifest: directives in galaxy.yml. '
        'A collection file added or removed on purpose: run `%s` and review the diff.'
        % (extra, missing, REGENERATE))


def test_expected_list_is_what_a_user_needs():
    """The checked-in list itself: the collection's content, nothing of the
    development tree (a regeneration from a dirty tree would show here)."""
    names = expected()
    for required in ('MANIFEST.json', 'FILES.json', 'README.md', 'LICENSE', 'meta/runtime.yml',
                     'changelogs/changelog.yaml', 'tests/config.yml',
                     'roles/sev_launch/meta/argument_specs.yml', 'roles/sev_launch/README.md',
                     'plugins/modules/sev_session.py', 'plugins/plugin_utils/controller_action.py'):
        assert required in names, required
    allowed_top = {'MANIFEST.json', 'FILES.json', 'README.md', 'LICENSE', 'CHANGELOG.rst', 'requirements.txt',
                   'bindep.txt', 'execution-environment.yml', 'plugins', 'roles', 'playbooks', 'docs', 'meta',
                   'changelogs', 'tests'}
    assert sorted({name.split('/')[0] for name in names} - allowed_top) == []
    junk = re.compile(r'(^|/)(\.[^/]+|__pycache__|keys|secrets|out|state|output|fragments)(/|$)'
                      r'|\.(tik|tek|tk|key|header|payload|pyc|swp|tar\.gz)$|~$')
    assert [name for name in names if junk.search(name)] == []
    tests = [name for name in names if name.startswith('tests/')]
    assert all(name in ('tests', 'tests/config.yml') or name.startswith('tests/sanity') for name in tests), tests


def test_galaxy_metadata():
    """What galaxy-importer and Automation Hub require of galaxy.yml, and the
    allow-list manifest instead of build_ignore (top-level patterns only)."""
    meta = yaml.safe_load((REPO / 'galaxy.yml').read_text())
    for key in ('repository', 'documentation', 'homepage', 'issues'):
        assert re.match(r'^https://[^\s]+$', meta[key]), key
    assert 'build_ignore' not in meta
    assert meta['manifest']['omit_default_directives'] is True
    assert 1 <= len(meta['tags']) <= 20
    assert all(re.match(r'^[a-z][a-z0-9_]*$', tag) and len(tag) <= 64 for tag in meta['tags']), meta['tags']
    assert re.match(r'^\d+\.\d+\.\d+', meta['version'])
