# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The common ground of the collection's controller-side action plugins.

They run on the controller whatever host a task targets, never contact it,
read their files on the controller (searched like other file options: a
role's files/, then the playbook directory; key and secret files through
Ansible Vault), and fail closed with the reference tool's reason and exit
code, never with a traceback (it could carry local values into logs).
"""

from __future__ import annotations

import socket
import sys

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    SevError, UnsupportedUsage, failure_result,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import (
    VAULT_MAGIC, check_not_vault, describe_path, read_small_file,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.policy import is_integer_text, shown

# No option of this collection holds an integer wider than a guest physical
# address; bigger ones (a 5,000-digit string) are typos or attacks, and Python
# refuses to print them, so they are refused before any message formats one.
MAX_INT_BITS = 64


def _option_values(spec, params, prefix=''):
    """(option name, spec entry, value) for every given option, suboptions included."""
    for name, entry in spec.items():
        value = params.get(name) if isinstance(params, dict) else None
        if value is None:
            continue
        label = prefix + name
        if entry.get('options') and entry.get('type') == 'list':
            for index, item in enumerate(value if isinstance(value, list) else []):
                yield from _option_values(entry['options'], item, '%s[%d].' % (label, index))
        elif entry.get('options') and entry.get('type') == 'dict':
            yield from _option_values(entry['options'], value, label + '.')
        else:
            yield label, entry, value


def _check_raw_lists(spec, args, prefix=''):
    """A list of mappings given as anything but a list (a string such as
    'luks-key') is refused naming the option: Ansible's own message ('dictionary
    requested, could not parse JSON or key=value') names none. The value is never
    shown (it may be a secret option)."""
    if not isinstance(args, dict):
        return
    for name, entry in spec.items():
        value = args.get(name)
        if value is None or not entry.get('options'):
            continue
        label = prefix + name
        if entry.get('type') == 'list' and entry.get('elements') == 'dict':
            if not isinstance(value, list):
                raise UnsupportedUsage('%s must be a list of mappings (each with its own options), got a %s'
                                       % (label, type(value).__name__))
            for index, item in enumerate(value):
                _check_raw_lists(entry['options'], item, '%s[%d].' % (label, index))
        elif entry.get('type') == 'dict':
            _check_raw_lists(entry['options'], value, label + '.')


def check_raw_integers(spec, args):
    """Refuse, naming the option, an integer option given as a boolean or as text
    that is not an integer in ASCII digits. Runs on the task's arguments before
    Ansible converts them: its type='int' conversion is int(), which reads
    other scripts' digits ('\u0662\u0664' as 24), and takes True as 1."""
    for label, entry, value in _option_values(spec, args):
        kind, elements = entry.get('type'), entry.get('elements')
        if kind != 'int' and elements != 'int':
            continue
        values = value if kind == 'list' and isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool):
                raise UnsupportedUsage('%s: a boolean (%s), not an integer' % (label, item))
            # Decimal text only: Ansible's int() reads nothing else, and text such as '0x18' is
            # refused here, naming the option, rather than read one way or the other.
            if isinstance(item, str) and not is_integer_text(item, 10):
                raise UnsupportedUsage('%s: %s is not an integer written in ASCII decimal digits (write a hex '
                                       'value unquoted, e.g. 0x30010003, which YAML reads as an integer)'
                                       % (label, shown(item)))


def check_option_bounds(spec, params):
    """Refuse integers wider than MAX_INT_BITS and paths with a NUL byte, naming the option."""
    for label, entry, value in _option_values(spec, params):
        kind, elements = entry.get('type'), entry.get('elements')
        values = value if kind == 'list' and isinstance(value, list) else [value]
        if kind == 'int' or elements == 'int':
            for item in values:
                if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > MAX_INT_BITS:
                    raise UnsupportedUsage('%s: an integer of %d bits, wider than the %d bits any value here '
                                           'may have' % (label, item.bit_length(), MAX_INT_BITS))
        if kind == 'path' or elements == 'path':
            for item in values:
                if isinstance(item, str) and '\0' in item:
                    raise UnsupportedUsage('%s: the path contains a NUL byte' % label)


def missing_controller_library(library, purpose, action):
    """The message for a Python library missing on the controller.

    Ansible's missing_required_lib() names the managed host's interpreter and
    points at ansible_python_interpreter, which does not apply here: this code
    runs in the controller's own Python (the one running ansible-playbook)."""
    return ('Failed to import the required Python library (%s) on the controller (%s\'s Python %s): '
            '%s runs on the controller and needs it %s. Install it in the Python that runs Ansible '
            '(pip install %s; the collection\'s requirements.txt lists what the controller needs). '
            'ansible_python_interpreter does not apply: the hypervisor host never runs this.'
            % (library, socket.gethostname(), sys.executable, action, purpose, library))


class ControllerAction(ActionBase):
    """Subclasses set ARGUMENT_SPEC, VALIDATION_RULES and WHAT, implement
    _run(params), and name the third-party libraries a call needs in
    _required_libraries(params)."""

    TRANSFERS_FILES = False
    _requires_connection = False
    ARGUMENT_SPEC = {}
    VALIDATION_RULES = {}
    WHAT = 'the task'            # for the unexpected-error message
    FAILURE_EXTRA = {}           # fields every failure carries (e.g. valid: false)

    # Options whose value is a path to key or secret material: a user may paste
    # the key itself there, so their value never appears in a message.
    SECRET_PATH_OPTIONS = ('tik', 'tek', 'tk', 'secrets')

    def _required_libraries(self, params):
        """(library, available, purpose) for each third-party Python library
        this call needs on the controller; checked after the arguments, before
        anything is read or written."""
        del params
        return ()

    def _missing_library(self, params):
        """The failure for the first library this call needs and lacks, or None."""
        for library, available, purpose in self._required_libraries(params):
            if not available:
                # the FQCN even when the task used a short name (collections: keyword)
                action = getattr(self._task, 'resolved_action', None)
                action = action if isinstance(action, str) and action else self._task.action
                return self._failure('unsupported', missing_controller_library(library, purpose, action))
        return None

    @classmethod
    def _is_secret_option(cls, what):
        return str(what).split('[', maxsplit=1)[0].split('.', maxsplit=1)[0] in cls.SECRET_PATH_OPTIONS

    def _find(self, path, what, secret=False):
        try:
            return self._find_needle('files', path)
        except AnsibleError as exc:
            if secret:
                # Ansible's message quotes the value, which may be the key itself.
                raise UnsupportedUsage('%s: could not find or access the file (the value is not shown: %s takes '
                                       'the path of a file, never key or secret text)' % (what, what))
            raise UnsupportedUsage('%s: %s' % (what, to_native(exc.message)))

    def _read_real(self, path, what, secret=False):
        """A small regular file's bytes; Ansible Vault is decrypted in memory,
        never to a temporary file, and the plaintext never touches a log."""
        data = read_small_file(path, what, secret=secret)
        if not data.startswith(VAULT_MAGIC):
            return data
        try:
            # pylint: disable-next=protected-access
            return self._loader._vault.decrypt(data)
        except AnsibleError as exc:
            raise UnsupportedUsage('%s: cannot decrypt the Ansible Vault file %s: %s'
                                   % (what, describe_path(path, secret), to_native(exc.message)))

    def _read_file(self, path, what):
        """A small input file (key, secret, VMSA, certificate), searched, Vault-decrypted."""
        secret = self._is_secret_option(what)
        return self._read_real(self._find(path, what, secret), what, secret)

    def _streamed_path(self, path, what):
        """A large measured file (firmware, kernel, initrd): searched, never Vault-encrypted."""
        return check_not_vault(self._find(path, what), what)

    def _output_path(self, path):
        return self._loader.path_dwim(path)

    def _failure(self, reason, message):
        return failure_result(reason, message, **self.FAILURE_EXTRA)

    def run(self, tmp=None, task_vars=None):
        result = super(ControllerAction, self).run(tmp, task_vars)
        del tmp
        try:
            _check_raw_lists(self.ARGUMENT_SPEC, self._task.args)
            check_raw_integers(self.ARGUMENT_SPEC, self._task.args)
        except SevError as exc:
            result.update(self._failure(exc.reason, str(exc)))
            return result
        try:
            dummy, params = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, **self.VALIDATION_RULES)
        except AnsibleActionFail as exc:
            result.update(self._failure('unsupported', to_native(exc.message)))
            return result
        try:
            check_option_bounds(self.ARGUMENT_SPEC, params)
            missing = self._missing_library(params)
            result.update(missing if missing is not None else self._run(params))
        except SevError as exc:
            result.update(self._failure(exc.reason, str(exc)))
        except Exception as exc:  # pylint: disable=broad-except
            result.update(self._failure('error', 'unexpected error during %s: %s: %s'
                                        % (self.WHAT, type(exc).__name__, to_native(exc))))
        return result

    def _run(self, params):
        raise NotImplementedError
