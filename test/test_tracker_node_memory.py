"""Out of memory at the node: AddPrompt answers it, /rosout and /diagnostics report it.

The error is injected through the SAM 2 tracker's fault hook (the real exception type,
`torch.cuda.OutOfMemoryError`, constructed on a CPU-only torch) or, for configure, where the
model is moved to its device. Untrained SAM 2.1 tiny at 256 px, CPU.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from node_harness import TrackerHarness
from polling import wait_for
import pytest
from rcl_interfaces.msg import Log
from test_out_of_memory import fail_at
from test_tracker_node import _change_state, _state, add, latest_diagnostics
import torch
from tracker_fixtures import moving_frames

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

FRAMES = moving_frames(8)
WARN = b'\x01'


def test_an_out_of_memory_prompt_is_answered_reported_once_and_changes_nothing():
    harness = TrackerHarness(keyframe_interval=3, gpu_memory_fraction=0.5)
    try:
        harness.wait_connected()
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        rosout = harness.subscribe(Log, '/rosout')
        harness.feed(FRAMES[:2], first_sec=1)
        assert add(harness, box=(20, 30, 50, 60)).success
        status = latest_diagnostics(harness, diagnostics)
        assert float(status['memory_rss_mb']) > 0 and float(status['memory_peak_rss_mb']) > 0
        assert float(status['model_memory_mb']) > 100  # SAM 2.1 tiny: ~150 MiB of fp32
        assert status['gpu_memory_budget'] == (
            'not applicable (cpu); gpu_memory_fraction=0.5 ignored'
        )
        assert 'gpu_allocated_mb' not in status  # no CUDA: no GPU figures to show
        assert status['sam2_out_of_memory'] == '0' and status['memory_degradation'] == 'normal'

        tracker = harness.node._pipeline.segmenter
        tracker.fault_hook = fail_at('prompt', 'sam_mask_decoder', torch.cuda.OutOfMemoryError)
        refused = add(harness, box=(90, 50, 130, 90))
        assert not refused.success
        assert 'out of memory during a prompt for a new object' in refused.message
        assert 'Nothing was changed' in refused.message
        assert 'fewer objects' in refused.message and 'sam2_image_size' in refused.message
        again = add(harness, box=(90, 50, 130, 90))  # the first degradation: no new objects
        assert not again.success and 'new objects are refused' in again.message
        outputs = harness.feed(FRAMES[2:4], first_sec=3)
        assert all([o.id for o in out.objects] == [1] for out in outputs)

        def degraded():
            status = harness.diagnostics(diagnostics)
            return status is not None and status['sam2_out_of_memory'] == '1'

        assert wait_for(degraded, 10)
        status = harness.diagnostics(diagnostics)
        assert status['level'] == WARN and 'SAM 2 out of memory' in status['message']
        assert status['memory_degradation'] == 'refusing new objects'
        assert wait_for(lambda: any('out of memory during' in m.msg for m in rosout), 10)
        errors = [m for m in rosout if m.level == Log.ERROR and 'out of memory' in m.msg]
        assert len(errors) == 1 and 'SAM 2.1 tiny, input 256px' in errors[0].msg
    finally:
        harness.close()


def test_configure_with_a_model_that_does_not_fit_fails_and_stays_unconfigured(monkeypatch):
    from sam2_ros.models import sam2_model

    def no_room(model, device):
        raise MemoryError('cannot allocate 150 MiB (injected)')

    monkeypatch.setattr(sam2_model, '_move_to_device', no_room)
    harness = TrackerHarness(autostart=False)
    try:
        diagnostics = harness.subscribe(DiagnosticArray, '/diagnostics')
        assert not _change_state(harness, Transition.TRANSITION_CONFIGURE)
        assert _state(harness) == 'unconfigured' and harness.node._pipeline is None
        assert wait_for(
            lambda: 'configure failed' in latest_diagnostics(harness, diagnostics)['message']
        )
        message = latest_diagnostics(harness, diagnostics)['message']
        assert 'does not fit in memory on cpu' in message and 'smaller sam2_model' in message
    finally:
        harness.close()
