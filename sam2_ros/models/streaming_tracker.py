"""SAM 2 video tracking on an endless stream, one frame at a time, with bounded memory.

`SAM2VideoPredictor` wants the whole video up front and keeps every frame's outputs forever.
This tracker drives the same model (`SAM2Base.track_step` internals, sam2 1.1.0) frame by frame
and keeps exactly what the next step reads:

- a dense SAM 2 step counter: one step per frame given to `step()`, so a caller that runs
  SAM 2 only on keyframes still fills every memory slot;
- memory features and object pointers of the steps the model's windows reach: the next step
  reads memory from the last `num_maskmem - 1` steps and pointers from the last
  `max_obj_ptrs_in_encoder - 1`; a refinement click on the current step reads the same
  windows shifted back by one, so one more step of each is kept. Older outputs are deleted;
- as conditioning frames, each object's original prompt step plus its `max_reanchors` most
  recent later prompts (refinements and re-anchors); the model's `max_cond_frames_in_attn`
  is set to that number so every retained conditioning frame is attended;
- low-resolution logits and point inputs of the current step only (for refinement clicks).

Image features are computed once per step and shared by every object. Objects whose memory
layout matches (same conditioning and memory steps) are batched through memory attention and
the mask decoder in one call; in the common case, that is every object. `max_group_size`
caps a batch (fewer activations at once, for a GPU short of memory).

Every public call that runs the model commits nothing until all its model calls succeeded,
and `checkpoint` / `restore` let a caller undo several calls as one (an out-of-memory error
in the middle of a keyframe). `fault_hook`, when set, is called before each of the model's
image encoder, memory attention, mask decoder and memory encoder runs, with what the tracker
is doing ('step' or 'prompt') and the module's name: tests raise errors there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
import sys
import warnings
import weakref

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.core.memory import is_out_of_memory, release_cached_memory
from sam2_ros.core.prompts import FrameError, Prompt, PromptError, make_prompt, validate_frame
from sam2_ros.core.tracking_types import ObjectResult, StepResult, UnknownObjectError
from sam2_ros.models.catalog import ModelLoadError
from sam2_ros.models.sam2_model import LoadedModel

# The model's modules a fault hook is called before (see the module docstring).
FAULT_POINTS = ('image_encoder', 'memory_attention', 'sam_mask_decoder', 'memory_encoder')
# `num_frames` handed to SAM 2: a stream has no end (the model only uses it as an upper bound).
_ENDLESS = sys.maxsize
_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class RetainedState:
    """What the tracker keeps between steps."""

    tensors: int
    bytes: int  # everything, the current frame's image features included
    feature_bytes: int  # the current frame's image features (one frame, shared by objects)
    objects: int
    conditioning_frames: int
    memory_frames: int  # non-conditioning steps with memory features
    pointer_frames: int  # non-conditioning steps with an object pointer


def collect_storages(value, seen: dict[int, int]) -> dict[int, int]:
    """Record {storage address: bytes} of every tensor reachable through dicts and lists."""
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    elif isinstance(value, dict):
        for item in value.values():
            collect_storages(item, seen)
    elif isinstance(value, (list, tuple)):
        for item in value:
            collect_storages(item, seen)
    return seen


@dataclass
class _ObjectState:
    obj_id: int
    # step -> SAM 2 output dict (maskmem_features, maskmem_pos_enc, obj_ptr,
    # object_score_logits, pred_masks); the layout of SAM2Base's output_dict.
    cond: dict[int, dict] = field(default_factory=dict)
    non_cond: dict[int, dict] = field(default_factory=dict)
    anchor_step: int = -1  # the original prompt step, always retained
    current_step: int = -1  # last step with an output for this object
    point_inputs: dict | None = None  # this step's accumulated clicks (model coordinates)

    def current_output(self) -> dict | None:
        return self.cond.get(self.current_step) or self.non_cond.get(self.current_step)


@dataclass
class _Frame:
    step: int
    height: int
    width: int
    backbone_out: dict  # batch-1 image features, expanded per object batch


class StreamingTracker:
    """Track any number of prompted objects through an endless frame stream with SAM 2."""

    def __init__(self, loaded: LoadedModel, max_reanchors: int = 3) -> None:
        """Wrap a loaded SAM 2 video model; `max_reanchors` is K in "anchor + K recent"."""
        if max_reanchors < 0:
            raise ValueError(f'max_reanchors must be >= 0, got {max_reanchors}')
        model = loaded.model
        if model.memory_temporal_stride_for_eval != 1:
            raise ValueError('the streaming tracker supports memory_temporal_stride_for_eval=1')
        self._loaded = loaded
        self._model = model
        self._device = loaded.device
        self.max_reanchors = max_reanchors
        model.max_cond_frames_in_attn = 1 + max_reanchors
        # Steps retained (current included): see the module docstring.
        self._memory_window = model.num_maskmem
        self._pointer_window = model.max_obj_ptrs_in_encoder
        self._mean = torch.tensor(_IMAGE_MEAN, device=self._device).view(1, 3, 1, 1)
        self._std = torch.tensor(_IMAGE_STD, device=self._device).view(1, 3, 1, 1)
        self._staging: torch.Tensor | None = None  # pinned host buffer for frames (CUDA)
        self._maskmem_pos_enc: list[torch.Tensor] | None = None  # a model constant
        self._objects: dict[int, _ObjectState] = {}
        self._frame: _Frame | None = None
        self._step = -1
        self._next_id = 1
        self.max_group_size: int | None = None  # objects per batch; None: no limit
        self.fault_hook: Callable[[str, str], None] | None = None
        self._operation: str | None = None  # 'step' or 'prompt' while the model runs
        # The model must not keep the tracker alive (a model may outlive several trackers).
        this = weakref.ref(self)
        handles = [
            getattr(model, name).register_forward_pre_hook(_fault_point(this, name))
            for name in FAULT_POINTS
        ]
        weakref.finalize(self, _remove_hooks, handles)

    # ------------------------------------------------------------------ public API

    @property
    def step_index(self) -> int:
        """The dense SAM 2 step counter (-1 before the first frame)."""
        return self._step

    @property
    def object_ids(self) -> list[int]:
        """Ids of the tracked objects, ascending."""
        return sorted(self._objects)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the current frame, or None before the first frame."""
        return None if self._frame is None else (self._frame.width, self._frame.height)

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return self._device

    def describe(self) -> str:
        """Return the model, for logs: size, input size, device, precision, weights."""
        return self._loaded.describe()

    @torch.inference_mode()
    def step(self, frame: np.ndarray) -> StepResult:
        """Feed the next frame (HxWx3 uint8 RGB) and track every object on it."""
        validate_frame(frame)
        self._operation = 'step'
        try:
            with self._loaded.autocast():
                backbone_out = self._model.forward_image(self._preprocess(frame))
            step = self._step + 1
            new_frame = _Frame(step, frame.shape[0], frame.shape[1], backbone_out)
            outputs = self._track_all(new_frame) if self._objects else {}
            results = {
                obj_id: self._result(obj_id, out, extras, new_frame, False)
                for obj_id, (out, extras) in outputs.items()
            }
        finally:
            self._operation = None
        # Commit only after every model call succeeded: an exception leaves the state as is.
        self._frame, self._step = new_frame, step
        for obj_id, (out, _) in outputs.items():
            state = self._objects[obj_id]
            state.non_cond[step] = out
            state.current_step = step
            state.point_inputs = None
        for state in self._objects.values():
            self._prune(state)
        return StepResult(step, results)

    @torch.inference_mode()
    def add_object(
        self, points=None, labels=None, box=None, mask=None, obj_id: int | None = None
    ) -> ObjectResult:
        """Start tracking a new object, prompted on the current step.

        Points are (x, y) pixels of the current frame with labels 1 (foreground) or 0
        (background); box is [x_min, y_min, x_max, y_max]; mask is an (H, W) boolean array.
        The id is assigned when `obj_id` is None.
        """
        frame = self._require_frame()
        if obj_id is None:
            obj_id = self._next_id
        elif isinstance(obj_id, bool) or not isinstance(obj_id, int) or obj_id < 1:
            raise PromptError(f'object id must be a positive integer, got {obj_id!r}')
        elif obj_id in self._objects:
            raise PromptError(f'object {obj_id} already exists; refine it instead')
        prompt = make_prompt(frame.width, frame.height, points, labels, box, mask)
        state = _ObjectState(obj_id, anchor_step=frame.step)
        out, extras, result = self._run_prompt(state, prompt, frame, clear_old=True)
        self._objects[obj_id] = state
        self._next_id = max(self._next_id, obj_id + 1)
        self._commit_prompt(state, out, extras, frame)
        return result

    @torch.inference_mode()
    def refine(
        self, obj_id: int, points=None, labels=None, box=None, mask=None, clear_old=False
    ) -> ObjectResult:
        """Correct an object on the current step with more clicks, a new box or a mask.

        SAM 2 sees the object's memory and its current mask; clicks accumulate on the step
        unless `clear_old`. The corrected output becomes a conditioning frame.
        """
        frame = self._require_frame()
        state = self._require_object(obj_id)
        prompt = make_prompt(frame.width, frame.height, points, labels, box, mask)
        out, extras, result = self._run_prompt(state, prompt, frame, clear_old=clear_old)
        self._commit_prompt(state, out, extras, frame)
        return result

    @torch.inference_mode()
    def reanchor(self, obj_id: int, box, drop_since_step: int | None = None) -> ObjectResult:
        """Re-prompt an object from a box on the current step, as a new conditioning frame.

        The box alone decides the new mask (no memory is read), and the non-conditioning
        memories written from `drop_since_step` on (default: the current step) are dropped,
        because they were polluted by the drift being corrected.
        """
        frame = self._require_frame()
        state = self._require_object(obj_id)
        prompt = make_prompt(frame.width, frame.height, box=box)
        since = frame.step if drop_since_step is None else int(drop_since_step)
        if since > frame.step:
            raise PromptError(f'drop_since_step {since} is after the current step {frame.step}')
        # Neither the polluted memory nor the current mask may seed the new one.
        out, extras, result = self._run_prompt(state, prompt, frame, clear_old=True, fresh=True)
        for step in [s for s in state.non_cond if s >= since]:
            del state.non_cond[step]
        self._commit_prompt(state, out, extras, frame)
        return result

    def remove(self, obj_id: int) -> None:
        """Stop tracking one object and free its state."""
        self._require_object(obj_id)
        del self._objects[obj_id]

    def reset(self) -> None:
        """Forget every object, the current frame and the step counter; keep the model."""
        self._objects.clear()
        self._frame = None
        self._maskmem_pos_enc = None
        self._step = -1
        self._next_id = 1

    def checkpoint(self) -> object:
        """Return the tracker's state now, for `restore` (references, no tensor copies).

        Steps and prompts never change a stored tensor in place, only which ones are kept, so
        copying the containers is enough.
        """
        objects = {
            obj_id: replace(
                state,
                cond={s: dict(out) for s, out in state.cond.items()},
                non_cond={s: dict(out) for s, out in state.non_cond.items()},
            )
            for obj_id, state in self._objects.items()
        }
        return (objects, self._frame, self._step, self._next_id, self._maskmem_pos_enc)

    def restore(self, checkpoint: object) -> None:
        """Go back to the state of `checkpoint` (taken by this tracker)."""
        objects, self._frame, self._step, self._next_id, self._maskmem_pos_enc = checkpoint
        self._objects = objects

    def retained_state(self) -> RetainedState:
        """Count what is kept between steps: tensors (each storage once) and their bytes."""
        seen: dict[int, int] = {}
        cond = memory = pointers = 0
        for state in self._objects.values():
            collect_storages((state.cond, state.non_cond, state.point_inputs), seen)
            cond += len(state.cond)
            memory += sum(out['maskmem_features'] is not None for out in state.non_cond.values())
            pointers += sum(out['obj_ptr'] is not None for out in state.non_cond.values())
        collect_storages(self._maskmem_pos_enc, seen)
        memory_bytes = sum(seen.values())
        if self._frame is not None:
            collect_storages(self._frame.backbone_out, seen)
        return RetainedState(
            tensors=len(seen),
            bytes=sum(seen.values()),
            feature_bytes=sum(seen.values()) - memory_bytes,
            objects=len(self._objects),
            conditioning_frames=cond,
            memory_frames=memory,
            pointer_frames=pointers,
        )

    # ------------------------------------------------------------------ internals

    def _require_frame(self) -> _Frame:
        if self._frame is None:
            raise FrameError('no frame yet: call step(frame) before prompting')
        return self._frame

    def _require_object(self, obj_id) -> _ObjectState:
        state = self._objects.get(obj_id)
        if state is None:
            raise UnknownObjectError(
                f'unknown object id {obj_id!r}; tracked ids: {self.object_ids or "none"}'
            )
        return state

    def _preprocess(self, frame: np.ndarray) -> torch.Tensor:
        """HxWx3 uint8 RGB -> normalised 1x3xSxS float on the model's device."""
        host = torch.from_numpy(frame)
        if self._device.type == 'cuda':
            if self._staging is None or self._staging.shape != host.shape:
                self._staging = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
            self._staging.copy_(host)
            host = self._staging
        image = host.to(self._device, non_blocking=True).permute(2, 0, 1)[None].float() / 255.0
        size = self._loaded.image_size
        if image.shape[-2:] != (size, size):
            image = F.interpolate(
                image, size=(size, size), mode='bilinear', align_corners=False, antialias=True
            )
        return (image - self._mean) / self._std

    def _features(self, backbone_out: dict, batch: int):
        """Return the model's flattened features for `batch` objects (expanded, no copy)."""
        expanded = {
            'backbone_fpn': [x.expand(batch, -1, -1, -1) for x in backbone_out['backbone_fpn']],
            'vision_pos_enc': [
                x.expand(batch, -1, -1, -1) for x in backbone_out['vision_pos_enc']
            ],
        }
        _, feats, pos, sizes = self._model._prepare_backbone_features(expanded)
        return feats, pos, sizes

    def _pos_enc(self, batch: int) -> list[torch.Tensor]:
        return [x.expand(batch, -1, -1, -1) for x in self._maskmem_pos_enc]

    def _memory_signature(self, state: _ObjectState, step: int) -> tuple:
        """Which memory slots the next step reads; equal signatures can share a batch."""
        model = self._model
        mem = tuple(
            s
            for s in range(step - model.num_maskmem + 1, step)
            if s in state.non_cond and state.non_cond[s]['maskmem_features'] is not None
        )
        ptr = tuple(
            s
            for s in range(step - model.max_obj_ptrs_in_encoder + 1, step)
            if s in state.non_cond and state.non_cond[s]['obj_ptr'] is not None
        )
        return tuple(sorted(state.cond)), mem, ptr

    def _merged_output_dict(self, states: list[_ObjectState], signature: tuple) -> dict:
        """One SAM 2 output_dict holding exactly the slots the step reads, objects stacked."""
        cond_steps, memory_steps, pointer_steps = signature
        batch = len(states)
        merged: dict[str, dict] = {'cond_frame_outputs': {}, 'non_cond_frame_outputs': {}}

        def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
            return tensors[0] if len(tensors) == 1 else torch.cat(tensors)

        def entry(outs: list[dict], with_memory: bool, with_pointer: bool) -> dict:
            return {
                'maskmem_pos_enc': self._pos_enc(batch),
                'maskmem_features': stack([o['maskmem_features'] for o in outs])
                if with_memory
                else None,
                'obj_ptr': stack([o['obj_ptr'] for o in outs]) if with_pointer else None,
            }

        for step in cond_steps:
            merged['cond_frame_outputs'][step] = entry([s.cond[step] for s in states], True, True)
        for step in sorted(set(memory_steps) | set(pointer_steps)):
            merged['non_cond_frame_outputs'][step] = entry(
                [s.non_cond[step] for s in states], step in memory_steps, step in pointer_steps
            )
        return merged

    def _track_all(self, frame: _Frame) -> dict[int, tuple[dict, dict]]:
        groups: dict[tuple, list[_ObjectState]] = {}
        for state in self._objects.values():
            groups.setdefault(self._memory_signature(state, frame.step), []).append(state)
        outputs = {}
        limit = self.max_group_size or len(self._objects)
        batches = [
            states[i : i + limit]
            for states in groups.values()
            for i in range(0, len(states), limit)
        ]
        for states in batches:
            signature = self._memory_signature(states[0], frame.step)
            batch = len(states)
            feats, pos, sizes = self._features(frame.backbone_out, batch)
            with self._loaded.autocast():
                current, sam_outputs, _, _ = self._model._track_step(
                    frame.step,
                    False,
                    feats,
                    pos,
                    sizes,
                    None,
                    None,
                    self._merged_output_dict(states, signature),
                    _ENDLESS,
                    False,
                    None,
                )
                _, _, ious, low_res, high_res, obj_ptr, score_logits = sam_outputs
                self._model._encode_memory_in_output(
                    feats, sizes, None, True, high_res, score_logits, current
                )
            pred_masks = self._fill_holes(low_res)
            best_iou = ious.max(dim=1).values
            for i, state in enumerate(states):
                out = self._compact(
                    current['maskmem_features'][i : i + 1],
                    obj_ptr[i : i + 1],
                    score_logits[i : i + 1],
                    pred_masks[i : i + 1],
                    batch > 1,
                )
                outputs[state.obj_id] = (out, {'score': float(best_iou[i])})
        return outputs

    def _compact(self, maskmem, obj_ptr, score_logits, pred_masks, copy: bool) -> dict:
        """Build a per-object output as SAM2VideoPredictor stores it (bf16 memory)."""
        if self._maskmem_pos_enc is None:
            raise RuntimeError('memory position encoding is not initialised')
        if copy:  # slices of a batch would keep the whole batch's storage alive
            obj_ptr, score_logits, pred_masks = (
                obj_ptr.clone(),
                score_logits.clone(),
                pred_masks.clone(),
            )
        # Half-size memory as the predictor keeps it; fp16 where the model runs fp16 autocast,
        # whose ops refuse bf16 inputs.
        storage = torch.float16 if self._loaded.dtype == torch.float16 else torch.bfloat16
        maskmem = maskmem.to(storage)
        if copy:
            maskmem = maskmem.clone()
        return {
            'maskmem_features': maskmem,
            'maskmem_pos_enc': self._pos_enc(1),
            'pred_masks': pred_masks.float(),
            'obj_ptr': obj_ptr,
            'object_score_logits': score_logits,
        }

    def _fill_holes(self, low_res: torch.Tensor) -> torch.Tensor:
        area = getattr(self._model, 'fill_hole_area', 0)
        if area <= 0:
            return low_res
        from sam2.utils.misc import fill_holes_in_mask_scores

        with warnings.catch_warnings():  # without sam2's CUDA extension this is a no-op
            warnings.simplefilter('ignore', UserWarning)
            return fill_holes_in_mask_scores(low_res, area)

    def _to_model_points(self, prompt: Prompt, frame: _Frame) -> dict | None:
        points = torch.from_numpy(prompt.points).reshape(1, -1, 2)
        labels = torch.from_numpy(prompt.labels).reshape(1, -1)
        if prompt.box is not None:
            box = torch.from_numpy(prompt.box).reshape(1, 2, 2)
            points = torch.cat([box, points], dim=1)
            labels = torch.cat([torch.tensor([[2, 3]], dtype=torch.int32), labels], dim=1)
        if points.shape[1] == 0:
            return None
        scale = torch.tensor([frame.width, frame.height], dtype=torch.float32)
        points = points / scale * self._loaded.image_size
        return {
            'point_coords': points.to(self._device),
            'point_labels': labels.to(self._device),
        }

    def _run_prompt(
        self,
        state: _ObjectState,
        prompt: Prompt,
        frame: _Frame,
        clear_old: bool,
        fresh: bool = False,
    ) -> tuple[dict, dict, ObjectResult]:
        """Run SAM 2 on a prompt (see `_prompt_outputs`); also return the object's result."""
        self._operation = 'prompt'
        try:
            out, extras = self._prompt_outputs(state, prompt, frame, clear_old, fresh)
            return out, extras, self._result(state.obj_id, out, extras, frame, True)
        finally:
            self._operation = None

    def _prompt_outputs(
        self,
        state: _ObjectState,
        prompt: Prompt,
        frame: _Frame,
        clear_old: bool,
        fresh: bool,
    ) -> tuple[dict, dict]:
        """Run SAM 2 on a prompt for one object on the current step, without storing it.

        As in SAM2VideoPredictor: a prompt on a step where the object has no earlier
        conditioning is an initial conditioning frame (no memory read); otherwise memory is
        read. Clicks on a step that already has an output for the object also get that
        output's logits as the mask input, and accumulate unless `clear_old`. `fresh` makes
        the prompt alone decide the mask: no memory, no current logits (re-anchoring).
        """
        model = self._model
        mask_inputs = None
        point_inputs = None
        prev_logits = None
        current = state.current_output() if state.current_step == frame.step else None
        if prompt.mask is not None:
            mask = torch.from_numpy(prompt.mask)[None, None].float().to(self._device)
            size = self._loaded.image_size
            if mask.shape[-2:] != (size, size):
                mask = F.interpolate(
                    mask, size=(size, size), mode='bilinear', align_corners=False, antialias=True
                )
                mask = (mask >= 0.5).float()
            mask_inputs = mask
        else:
            point_inputs = self._to_model_points(prompt, frame)
            previous = state.point_inputs if current is not None else None
            if previous is not None and not clear_old and prompt.box is None:
                point_inputs = {
                    'point_coords': torch.cat(
                        [previous['point_coords'], point_inputs['point_coords']], dim=1
                    ),
                    'point_labels': torch.cat(
                        [previous['point_labels'], point_inputs['point_labels']], dim=1
                    ),
                }
            if not fresh and current is not None and current['pred_masks'] is not None:
                prev_logits = torch.clamp(current['pred_masks'].to(self._device), -32.0, 32.0)
        # Memory from earlier steps only: this step's own output is what is being replaced.
        output_dict = {
            'cond_frame_outputs': {s: o for s, o in state.cond.items() if s != frame.step},
            'non_cond_frame_outputs': {s: o for s, o in state.non_cond.items() if s != frame.step},
        }
        init = fresh or not output_dict['cond_frame_outputs']
        feats, pos, sizes = self._features(frame.backbone_out, 1)
        with self._loaded.autocast():
            _, sam_outputs, _, _ = model._track_step(
                frame.step,
                init,
                feats,
                pos,
                sizes,
                point_inputs,
                mask_inputs,
                output_dict,
                _ENDLESS,
                False,
                prev_logits,
            )
            multi_logits, _, ious, low_res, _, obj_ptr, score_logits = sam_outputs
            pred_masks = self._fill_holes(low_res)
            # As SAM2VideoPredictor does before propagating: encode the prompted (hole-filled)
            # mask into memory, binarised because it comes from the user's input.
            high_res = F.interpolate(
                pred_masks.float(),
                size=(self._loaded.image_size, self._loaded.image_size),
                mode='bilinear',
                align_corners=False,
            )
            maskmem, maskmem_pos_enc = model._encode_new_memory(
                feats, sizes, high_res, score_logits, is_mask_from_pts=True
            )
        if self._maskmem_pos_enc is None:
            self._maskmem_pos_enc = [x[0:1].clone() for x in maskmem_pos_enc]
        out = self._compact(maskmem, obj_ptr, score_logits, pred_masks, False)
        extras = {'score': float(ious.max()), 'point_inputs': point_inputs}
        if multi_logits.shape[1] > 1:
            extras['candidates'] = (multi_logits, ious)
        return out, extras

    def _commit_prompt(self, state: _ObjectState, out: dict, extras: dict, frame: _Frame) -> None:
        state.non_cond.pop(frame.step, None)
        state.cond[frame.step] = out
        state.current_step = frame.step
        state.point_inputs = extras.get('point_inputs')
        self._prune(state)

    def _prune(self, state: _ObjectState) -> None:
        """Delete what no future step reads (see the module docstring)."""
        step = self._step
        memory_from = step - self._memory_window + 1
        pointer_from = step - self._pointer_window + 1
        for s in list(state.non_cond):
            out = state.non_cond[s]
            if s < min(memory_from, pointer_from):
                del state.non_cond[s]
                continue
            if s < memory_from:
                out['maskmem_features'] = None
            if s < pointer_from:
                out['obj_ptr'] = None
            if s < step:
                out['pred_masks'] = None
        later = sorted(s for s in state.cond if s != state.anchor_step)
        for s in later[: max(0, len(later) - self.max_reanchors)]:
            del state.cond[s]
        for s, out in state.cond.items():
            if s < step:
                out['pred_masks'] = None
        if state.current_step < step:
            state.point_inputs = None

    def _upscale(self, logits: torch.Tensor, frame: _Frame) -> torch.Tensor:
        return F.interpolate(
            logits.float(), size=(frame.height, frame.width), mode='bilinear', align_corners=False
        )

    def _result(
        self, obj_id: int, out: dict, extras: dict, frame: _Frame, is_conditioning: bool
    ) -> ObjectResult:
        logits = out['pred_masks']
        mask = (self._upscale(logits, frame)[0, 0] > 0).cpu().numpy()
        score_logit = float(out['object_score_logits'].float().reshape(-1)[0])
        result = ObjectResult(
            obj_id=obj_id,
            mask=mask,
            score=extras['score'],
            visibility=float(torch.sigmoid(torch.tensor(score_logit))),
            object_score_logit=score_logit,
            is_conditioning=is_conditioning,
            logits=logits[0, 0],
        )
        if 'candidates' in extras:
            multi_logits, ious = extras['candidates']
            upscaled = self._upscale(multi_logits, frame)[0] > 0
            result.candidates = [m.cpu().numpy() for m in upscaled]
            result.candidate_scores = [float(v) for v in ious[0]]
        return result


def _fault_point(tracker: weakref.ref, name: str):
    """Return a forward pre-hook that calls the fault hook while the tracker runs the model."""

    def before_forward(module, args) -> None:
        this = tracker()
        if this is not None and this.fault_hook is not None and this._operation is not None:
            this.fault_hook(this._operation, name)

    return before_forward


def _remove_hooks(handles) -> None:
    for handle in handles:
        handle.remove()


def check_step_fits(tracker: StreamingTracker) -> None:
    """Run one prompt and one tracking step on a blank frame; ModelLoadError if out of memory.

    The configure-time check that a model which loaded also has room to work; the tracker is
    reset afterwards.
    """
    loaded = tracker._loaded
    size = loaded.image_size
    frame = np.zeros((size, size, 3), dtype=np.uint8)
    failure = None
    try:
        tracker.step(frame)
        tracker.add_object(box=[size // 4, size // 4, 3 * size // 4, 3 * size // 4])
        tracker.step(frame)
    except Exception as error:  # noqa: BLE001 - only out-of-memory is reworded
        if not is_out_of_memory(error):
            raise
        budget = loaded.memory_budget
        within = f' within its budget of {budget / 2**20:.0f} MiB' if budget else ''
        failure = ModelLoadError(
            f'{loaded.describe()} loads, but one SAM 2 step with one object does not fit in '
            f'memory on {loaded.device}{within}: {type(error).__name__}. Use a smaller '
            'sam2_image_size or sam2_model' + (', or raise gpu_memory_fraction' if budget else '')
        )
    finally:
        tracker.reset()
    if failure is not None:
        release_cached_memory()
        raise failure
