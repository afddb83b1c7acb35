# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SEV measurement engine: plain Python, no Ansible imports.

One small module per concept:
  errors         failure reasons and the reference tool's exit codes
  ovmf           the OVMF footer table (reset block, hash table, secret area, SNP metadata)
  kernel_hashes  QEMU's measured-direct-boot hash table
  vmsa           SEV-ES initial CPU state pages
  streaming      chunked file hashing, several files at once
  launch_digest  the digest of everything loaded into encrypted memory
  keys           TIK/TEK loading and checks
  policy         guest policy bits and platform minimums
  measurement    the LAUNCH_MEASURE HMAC and its comparison
  secrets        the LAUNCH_SECRET table and packet
  validation     the whole offline validation, start to end
"""
