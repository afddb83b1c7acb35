# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_domain.plan(): the libvirt call that takes a domain from each libvirt
state to each wanted state, or None when it is already there.

libvirt's states: running, blocked (running, waiting on a resource), paused,
shutdown (active, being shut down), shutoff (inactive), crashed (active: an
inactive crashed domain is reported as shutoff with reason crashed; the state
crashed means on_crash=preserve kept it), pmsuspended (active, suspended by the
guest), nostate.
"""

from __future__ import annotations

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.modules import sev_domain
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import InvalidState

SUBJECT = "domain 'guest1'"
DESTROY = ('virDomainDestroy', 'shutoff')
START_PAUSED = ('virDomainCreateWithFlags', 'paused')
START = ('virDomainCreateWithFlags', 'running')
RESUME = ('virDomainResume', 'running')
REFUSED = InvalidState


def is_active(state):
    """What libvirt's virDomainIsActive says for a domain in ``state``."""
    return state not in ('shutoff', 'nostate')


# (wanted, current) -> step, None or REFUSED
PLANS = {
    ('destroyed', 'running'): DESTROY,
    ('destroyed', 'blocked'): DESTROY,
    ('destroyed', 'paused'): DESTROY,
    ('destroyed', 'pmsuspended'): DESTROY,
    ('destroyed', 'shutoff'): None,
    ('paused', 'paused'): None,
    ('paused', 'shutoff'): START_PAUSED,
    ('paused', 'running'): REFUSED,
    ('paused', 'blocked'): REFUSED,
    ('paused', 'pmsuspended'): REFUSED,
    ('running', 'running'): None,
    ('running', 'paused'): RESUME,
    ('running', 'shutoff'): START,
    # nostate: libvirt could not tell; taken for inactive, so libvirt decides
    ('destroyed', 'nostate'): None,
    ('paused', 'nostate'): START_PAUSED,
    ('running', 'nostate'): START,
}

# Active domains the plan treats as inactive (see the BUG tests below).
ACTIVE_TREATED_AS_INACTIVE = {
    ('destroyed', 'shutdown'): DESTROY,
    ('destroyed', 'crashed'): DESTROY,
    ('paused', 'shutdown'): REFUSED,
    ('paused', 'crashed'): REFUSED,
    ('running', 'blocked'): None,
}


@pytest.mark.parametrize('wanted, current', sorted(PLANS))
def test_plan(wanted, current):
    expected = PLANS[(wanted, current)]
    if expected is REFUSED:
        with pytest.raises(InvalidState) as exc:
            sev_domain.plan(wanted, current, is_active(current), SUBJECT)
        assert str(exc.value).startswith("%s is %s: it cannot return to its pre-launch state" % (SUBJECT, current))
        assert 'destroy it and start it paused again' in str(exc.value)
    else:
        assert sev_domain.plan(wanted, current, is_active(current), SUBJECT) == expected


@pytest.mark.parametrize('wanted, current', sorted(ACTIVE_TREATED_AS_INACTIVE))
def test_plan_for_active_states_other_than_running_and_paused(wanted, current):
    """Regression: plan() once decided "active" from the state name and takes shutdown and
    crashed for inactive, blocked for not running: destroyed leaves a domain
    that is shutting down (or kept crashed by on_crash=preserve) running and
    reports no change; paused tries virDomainCreateWithFlags on an active
    domain (libvirt: "domain is already running"); running tries to start a
    blocked (running) domain.  domain_state() already returns 'active'."""
    expected = ACTIVE_TREATED_AS_INACTIVE[(wanted, current)]
    if expected is REFUSED:
        with pytest.raises(InvalidState):
            sev_domain.plan(wanted, current, is_active(current), SUBJECT)
    else:
        assert sev_domain.plan(wanted, current, is_active(current), SUBJECT) == expected


@pytest.mark.parametrize('current', ['pmsuspended', 'shutdown', 'crashed'])
def test_running_never_starts_an_active_domain(current):
    """Regression (same cause): virDomainCreateWithFlags on an active domain always fails."""
    step = sev_domain.plan('running', current, is_active(current), SUBJECT)
    assert step is None or step[0] != 'virDomainCreateWithFlags'


def test_every_pair_is_covered():
    states = set(connection.STATE_NAMES.values())
    running_active = {('running', state) for state in ('pmsuspended', 'shutdown', 'crashed')}
    pairs = set(PLANS) | set(ACTIVE_TREATED_AS_INACTIVE) | running_active
    assert pairs == {(wanted, state) for wanted in ('destroyed', 'paused', 'running') for state in states}


def test_every_plan_reaches_the_wanted_state():
    for (wanted, current), expected in PLANS.items():
        if expected in (None, REFUSED):
            continue
        assert expected[1] == {'destroyed': 'shutoff'}.get(wanted, wanted)


def test_plan_is_idempotent():
    for wanted, reached in (('destroyed', 'shutoff'), ('paused', 'paused'), ('running', 'running')):
        assert sev_domain.plan(wanted, reached, is_active(reached), SUBJECT) is None
