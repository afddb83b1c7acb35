# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drive a controller-side action plugin's run() with a real DataLoader, in-process."""

from __future__ import annotations

from unittest.mock import MagicMock

from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext


class Harness:
    """``plugin`` is the action plugin module, ``name`` its FQCN; files are
    searched in ``basedir``; ``vault_secrets`` as DataLoader.set_vault_secrets takes them."""

    def __init__(self, plugin, name, basedir, vault_secrets=None):
        self.plugin = plugin
        self.name = name
        self.basedir = basedir
        self.loader = DataLoader()
        self.loader.set_basedir(str(basedir))
        if vault_secrets:
            self.loader.set_vault_secrets(vault_secrets)
        self.connection = MagicMock()
        self.connection._shell.tmpdir = None

    def run(self, check_mode=False, **args):
        task = MagicMock()
        task.args = args
        task.check_mode = check_mode
        task.async_val = 0
        task.action = self.name
        task.get_search_path.return_value = [str(self.basedir)]
        action = self.plugin.ActionModule(task, self.connection, PlayContext(), self.loader,
                                          templar=None, shared_loader_obj=None)
        action._load_name = self.name
        return action.run(task_vars={})
