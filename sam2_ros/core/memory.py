"""Running out of memory during a SAM 2 step: recognise it, report it, degrade, recover.

An out-of-memory error (`torch.cuda.OutOfMemoryError` on a GPU, `MemoryError` on a CPU) is an
answer, not a crash: the step that raised is abandoned whole (`KeyframeStage` rolls the
segmenter and the objects back), the allocator's cache is released, and the frame path goes
on with flow. `MemoryGovernor` decides what the next steps do while the errors repeat:

1. the first out-of-memory step of an episode: new objects are refused (prompts for a new
   object and auto-tracking), SAM 2 retries on the next keyframe;
2. each further one halves the number of objects SAM 2 runs together (memory attention and
   the mask decoder batch objects; a smaller batch needs fewer activations), down to one;
3. then each further one doubles the spacing of SAM 2 steps (every 2, 4, then 8 keyframe
   intervals at most), leaving memory to the processes it shares with.

No object is ever dropped: flow carries every object between SAM 2 steps, and all objects
take part in every SAM 2 step that runs. Recovery: after `RECOVERY_STEPS` successful SAM 2
steps in a row, the last degradation is undone (rate, then group size, then new objects);
back at normal the episode ends, and the next out-of-memory error is reported as a new one.
Removing objects (the remedy the answers suggest) accepts new ones again at once; with no
object left (a reset) the episode ends.
"""

from __future__ import annotations

from dataclasses import dataclass
import gc
import logging
import resource
import sys

logger = logging.getLogger(__name__)

RECOVERY_STEPS = 5  # successful SAM 2 steps in a row that undo one degradation
MAX_RATE_DIVISOR = 8  # SAM 2 at most every 8 keyframe intervals
REMEDY = (
    'track fewer objects, lower sam2_image_size, or use a smaller sam2_model'
    ' (or give the node more GPU memory: gpu_memory_fraction)'
)

NORMAL = 'normal'
REFUSE_NEW = 'refuse_new_objects'
SMALLER_GROUPS = 'smaller_groups'
LOWER_RATE = 'lower_rate'


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` means an allocation failed (CPU or GPU).

    `torch.cuda.OutOfMemoryError` is recognised by its name, so this module needs no torch.
    """
    if isinstance(error, MemoryError):
        return True
    if any(cls.__name__ == 'OutOfMemoryError' for cls in type(error).__mro__):
        return True
    # Allocation failures raised by CUDA libraries as plain RuntimeErrors.
    text = str(error)
    return isinstance(error, RuntimeError) and (
        'CUDA out of memory' in text
        or 'CUDA error: out of memory' in text
        or 'CUBLAS_STATUS_ALLOC_FAILED' in text
    )


def release_cached_memory() -> None:
    """Free what a failed step left: garbage-collect, and empty CUDA's allocator cache.

    Torch is used only when something loaded it already (the model stack did).
    """
    gc.collect()
    torch = sys.modules.get('torch')
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class Sam2OutOfMemoryError(RuntimeError):
    """A SAM 2 step ran out of memory and was abandoned; the tracker state is as before it.

    It keeps the original error's type and text only: its traceback would keep the failed
    step's tensors alive.
    """

    def __init__(self, action: str, objects, frame_size, error: BaseException, model: str = ''):
        """Describe `action` (what SAM 2 did) on `objects` (ids) and a (w, h) `frame_size`."""
        self.action = action
        self.objects = sorted(objects)
        self.frame_size = frame_size
        self.error_type = type(error).__name__
        self.model = model
        size = f'{frame_size[0]}x{frame_size[1]} frame' if frame_size else 'no frame yet'
        ids = ', '.join(map(str, self.objects)) or 'none'
        on = f'; {model}' if model else ''
        super().__init__(
            f'out of memory during {action} ({len(self.objects)} objects: {ids}; {size}{on}): '
            f'{self.error_type}: {_first_line(error)}'
        )

    def answer(self) -> str:
        """Return the answer to the caller whose request this was."""
        return f'{self}. Nothing was changed. To fit: {REMEDY}'


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else 'no details'


@dataclass(frozen=True)
class MemoryReading:
    """The process's memory now (MiB): RSS, and on CUDA the allocator's counters."""

    rss_mb: float
    peak_rss_mb: float
    gpu_allocated_mb: float | None = None
    gpu_peak_allocated_mb: float | None = None
    gpu_reserved_mb: float | None = None


def rss_mb() -> float:
    """Return the process's resident set size now, MiB."""
    try:
        with open('/proc/self/statm') as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return float('nan')


def peak_rss_mb() -> float:
    """Return the process's peak resident set size so far, MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == 'darwin' else peak / 1024  # bytes vs KiB


class MemoryGovernor:
    """The degradation state while SAM 2 runs out of memory (see the module docstring).

    `on_out_of_memory` and `on_success` return the log lines of what changed; the caller
    logs them. Not thread-safe by itself: one thread (the one running SAM 2) changes it.
    """

    def __init__(self, recovery_steps: int = RECOVERY_STEPS) -> None:
        """Start normal; `recovery_steps` successes in a row undo one degradation."""
        self.recovery_steps = recovery_steps
        self.failures = 0  # out-of-memory SAM 2 steps since start
        self.episodes = 0  # episodes since start (an episode starts at normal)
        self.episode_failures = 0  # out-of-memory steps in the current episode
        self.successes = 0  # successful steps in a row since the last change
        self.refuse_new = False
        self.group_size: int | None = None  # None: every object in one batch
        self.rate_divisor = 1  # SAM 2 runs every rate_divisor keyframe intervals at most
        self.last_error = ''

    @property
    def level(self) -> str:
        """The deepest degradation in force."""
        if self.rate_divisor > 1:
            return LOWER_RATE
        if self.group_size is not None:
            return SMALLER_GROUPS
        return REFUSE_NEW if self.refuse_new else NORMAL

    @property
    def in_episode(self) -> bool:
        """Whether an out-of-memory episode is going on (some degradation in force)."""
        return self.level != NORMAL

    def on_out_of_memory(self, error: Sam2OutOfMemoryError, objects: int) -> list[str]:
        """Count a failed step on `objects` objects; degrade one step. Returns what changed."""
        self.failures += 1
        self.successes = 0
        self.last_error = str(error)
        if not self.in_episode:
            self.episodes += 1
            self.episode_failures = 0
        self.episode_failures += 1
        if not self.refuse_new:
            self.refuse_new = True
            return ['out of memory: refusing new objects until SAM 2 steps succeed again']
        current = self.group_size if self.group_size is not None else max(objects, 1)
        if current > 1:
            self.group_size = max(1, current // 2)
            return [f'out of memory again: SAM 2 now runs objects in groups of {self.group_size}']
        self.group_size = 1
        if self.rate_divisor < MAX_RATE_DIVISOR:
            self.rate_divisor *= 2
            return [
                f'out of memory again: SAM 2 rate lowered, at most one step every '
                f'{self.rate_divisor} keyframe intervals'
            ]
        return []  # fully degraded: flow carries every object, SAM 2 retries at that rate

    def on_success(self, objects: int) -> list[str]:
        """Count a successful step on `objects` objects; undo one degradation after enough."""
        if not self.in_episode:
            return []
        self.successes += 1
        if self.successes < self.recovery_steps:
            return []
        self.successes = 0
        if self.rate_divisor > 1:
            self.rate_divisor //= 2
            if self.rate_divisor > 1:
                return [f'memory recovering: SAM 2 every {self.rate_divisor} keyframe intervals']
            return ['memory recovering: SAM 2 back to its normal rate']
        if self.group_size is not None:
            self.group_size *= 2
            if self.group_size < objects:
                return [f'memory recovering: SAM 2 runs objects in groups of {self.group_size}']
            self.group_size = None
            return ['memory recovering: SAM 2 runs all objects together again']
        self.refuse_new = False
        return ['memory recovered: new objects accepted again']

    def on_objects_removed(self, remaining: int) -> list[str]:
        """Make room as the user did: removing objects lifts the refusal of new ones.

        With no object left the episode is over (nothing SAM 2 could succeed on would end it
        otherwise). Returns what changed.
        """
        if not self.in_episode:
            return []
        if remaining == 0:
            self.refuse_new, self.group_size, self.rate_divisor = False, None, 1
            self.successes = 0
            return ['no objects left: out-of-memory degradation lifted']
        if self.refuse_new:
            self.refuse_new = False
            return [
                'objects removed: new objects accepted again (a new out-of-memory error '
                'refuses them again)'
            ]
        return []

    def describe(self) -> str:
        """Return the degradations in force, for diagnostics ('normal' when none)."""
        parts = []
        if self.refuse_new:
            parts.append('refusing new objects')
        if self.group_size is not None:
            parts.append(f'objects in groups of {self.group_size}')
        if self.rate_divisor > 1:
            parts.append(f'SAM 2 every {self.rate_divisor} keyframe intervals')
        return ', '.join(parts) or NORMAL
