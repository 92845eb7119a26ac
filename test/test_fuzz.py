"""A short seeded fuzz run against the node: nothing crashes, nothing goes unanswered.

`bench/fuzz_node.py --inputs 10000` runs the same fuzzer for longer (see `node_fuzzer`).
"""

from __future__ import annotations

from node_fuzzer import NodeFuzzer
from node_harness import TrackerHarness
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ros, pytest.mark.timeout(600)]


@pytest.mark.parametrize(
    ('transport', 'inputs', 'seed'), [('raw', 800, 1), ('compressed', 200, 2)]
)
def test_hostile_inputs_never_stop_the_node(transport, inputs, seed):
    harness = TrackerHarness(image_transport=transport, service_timeout_sec=30.0)
    fuzzer = None
    try:
        fuzzer = NodeFuzzer(harness, seed, compressed=transport == 'compressed')
        report = fuzzer.run(inputs)
        print(report.summary())
        assert report.inputs == inputs and report.bursts >= 4
        assert report.rejected > 0.2 * inputs, 'the fuzzer sent too few bad inputs'
        assert report.ok, report.summary()
    finally:
        if fuzzer is not None:
            fuzzer.close()
        harness.close()
