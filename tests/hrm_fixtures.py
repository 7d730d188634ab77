"""Access to the parity fixtures generated from the official HRM code by tools/make_hrm_fixtures.py."""

from parity import Fixtures

FX = Fixtures("hrm", ("rope", "learned"))
FIXTURES = FX.root
CASES = FX.cases
config = FX.config
build_model = FX.build_model
rollout = FX.rollout
grads = FX.grads
