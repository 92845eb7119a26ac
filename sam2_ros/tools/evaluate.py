"""sam2_evaluate: score a recorded run against ground truth; JSON report and a readable table.

Input: the bag `sam2_replay --record` wrote (tracked_objects, /sam2_replay/published,
/diagnostics, and in metadata.yaml the input bag and which node object follows which
ground-truth object) and the ground truth (the input bag's /ground_truth/objects, as
`sam2_make_bag --scenario` writes it). Frames are matched by header stamp.

Reported:
- frames published, answered, lost (published but never answered), keyframes, re-anchors,
  object states, output rate (answers per second of the run) and latency (publication to
  answer, wall clock, p50/p95/max);
- with ground truth: J (region IoU) and F (boundary F-measure, DAVIS) per object and their
  means, id switches, frames where the object was visible but not matched. An object is
  scored from the frame after its scripted prompt (its first answer that can contain it),
  by the node ids the replay recorded for it (a re-added object keeps its ground-truth
  identity under its new id); without that record, ids are matched by overlap.
- with 3D ground truth (a scenario bag made with `--depth`): per object, the error of the
  node's 3D centre (`position`) and of its box extent (`box_size`), metres (mean, p95, max of
  the Euclidean error over the frames where both have 3D), and the frames where the object
  was followed but had no 3D;
- whether the run used untrained weights (from /diagnostics), so no one mistakes it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
import sys
from typing import NamedTuple

import numpy as np

from sam2_ros.core.stamps import stamp_ns
from sam2_ros.core.tracking_types import TrackState, state_name
from sam2_ros.evaluation.metrics import evaluate_sequence
from sam2_ros.ros.conversions import msg_to_frame_result, msg_to_mask
from sam2_ros.tools.bag_io import (
    GROUND_TRUTH_TOPIC,
    PUBLISHED_FRAMES_TOPIC,
    TRACKED_OBJECTS_TYPE,
    BagError,
    BagReader,
)
from sam2_ros.tools.cli import new_file


class _Truth(NamedTuple):
    mask: np.ndarray
    visible_fraction: float


def _masks(msg) -> dict[int, np.ndarray]:
    return {obj.obj_id: obj.mask for obj in msg_to_frame_result(msg).objects}


@dataclass
class RecordedRun:
    """What a recorded output bag holds, keyed by source header stamp (ns)."""

    path: Path
    stamps: list[int]  # published frames in order (or the answered ones, if not recorded)
    answers: dict[int, object] = field(default_factory=dict)
    answer_log_ns: dict[int, int] = field(default_factory=dict)
    published_log_ns: dict[int, int] = field(default_factory=dict)
    untrained: bool | None = None
    custom: dict[str, str] = field(default_factory=dict)


def load_run(path: str | Path) -> RecordedRun:
    """Read an output bag; raise BagError when it has no (or no unambiguous) tracked objects.

    The answers are the TrackedObjectArray topic that is not the ground truth:
    /tracked_objects, or the only other one (a namespaced tracker's).
    """
    with BagReader(path) as reader:
        candidates = sorted(
            t
            for t, msgtype in reader.topics.items()
            if msgtype == TRACKED_OBJECTS_TYPE and t != GROUND_TRUTH_TOPIC
        )
        if not candidates:
            reader.require_topics(['/tracked_objects'], 'is needed')
        if '/tracked_objects' in candidates:
            topic = '/tracked_objects'
        elif len(candidates) == 1:
            topic = candidates[0]
        else:
            raise BagError(
                f'{reader.path}: which topic holds the answers? {", ".join(candidates)}'
            )
        run = RecordedRun(reader.path, [], custom=reader.custom_data)
        topics = [topic, PUBLISHED_FRAMES_TOPIC, '/diagnostics']
        for message in reader.messages([t for t in topics if t in reader.topics]):
            if message.topic == topic:
                stamp = stamp_ns(message.msg.header.stamp)
                run.answers.setdefault(stamp, message.msg)
                run.answer_log_ns.setdefault(stamp, message.log_time_ns)
            elif message.topic == PUBLISHED_FRAMES_TOPIC:
                stamp = stamp_ns(message.msg.stamp)
                if stamp not in run.published_log_ns:
                    run.stamps.append(stamp)
                    run.published_log_ns[stamp] = message.log_time_ns
            else:
                for status in message.msg.status:
                    for pair in status.values:
                        if pair.key == 'untrained_weights':
                            run.untrained = pair.value == 'true'
    if not run.stamps:
        run.stamps = sorted(run.answers)
    return run


def load_truth(path: str | Path) -> dict[int, object]:
    """Return {stamp ns: TrackedObjectArray} of the ground truth in a bag."""
    with BagReader(path) as reader:
        reader.require_topics([GROUND_TRUTH_TOPIC], 'holds the ground truth')
        messages = reader.messages([GROUND_TRUTH_TOPIC])
        return {stamp_ns(m.msg.header.stamp): m.msg for m in messages}


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def run_statistics(run: RecordedRun) -> dict:
    """Frames, keyframes, re-anchors, states, rate and latency of a run."""
    answered = [s for s in run.stamps if s in run.answers]
    lost = [i for i, s in enumerate(run.stamps) if s not in run.answers]
    states = dict.fromkeys((state.name for state in TrackState), 0)
    reanchors: dict[int, int] = {}
    ids = set()
    for stamp in answered:
        for obj in run.answers[stamp].objects:
            name = state_name(obj.state)
            states[name] = states.get(name, 0) + 1
            reanchors[obj.id] = max(reanchors.get(obj.id, 0), int(obj.reanchor_count))
            ids.add(int(obj.id))
    latencies = [
        (run.answer_log_ns[s] - run.published_log_ns[s]) / 1e6
        for s in answered
        if s in run.published_log_ns
    ]
    keyframes = sum(bool(run.answers[s].is_keyframe) for s in answered)
    span_ns = 0
    if answered and run.published_log_ns:
        first = min(run.published_log_ns.values())
        span_ns = max(run.answer_log_ns[s] for s in answered) - first
    return {
        'frames_published': len(run.stamps),
        'frames_answered': len(answered),
        'frames_lost': lost,
        'keyframes': keyframes,
        'keyframe_ratio': keyframes / len(answered) if answered else math.nan,
        'reanchors': sum(reanchors.values()),
        'object_ids': sorted(ids),
        'object_states': states,
        'output_fps': len(answered) / (span_ns / 1e9) if span_ns > 0 else math.nan,
        'latency_ms': {
            'p50': _percentile(latencies, 50),
            'p95': _percentile(latencies, 95),
            'max': max(latencies) if latencies else math.nan,
            'mean': float(np.mean(latencies)) if latencies else math.nan,
        },
    }


def _assignment(run: RecordedRun) -> dict[int, dict] | None:
    text = run.custom.get('assignment')
    if not text:
        return None
    try:
        data = json.loads(text)
        return {
            int(k): {'ids': [int(i) for i in v['ids']], 'from_frame': int(v['from_frame'])}
            for k, v in data.items()
        }
    except (ValueError, KeyError, TypeError) as error:
        raise BagError(
            f'{run.path}: unreadable sam2_ros.assignment in metadata.yaml: {error}'
        ) from None


def accuracy(run: RecordedRun, truth: dict[int, object]) -> dict:
    """J, F, id switches and misses per ground-truth object over the run's frames."""
    missing = [s for s in run.stamps if s not in truth]
    if missing:
        raise BagError(
            f'{len(missing)} of {len(run.stamps)} frames of the run have no ground truth '
            '(was it recorded from another bag?)'
        )
    assignment = _assignment(run)
    truth_frames, predictions = [], []
    for index, stamp in enumerate(run.stamps):
        gt_msg = truth[stamp]
        frame = {}
        for obj in msg_to_frame_result(gt_msg).objects:
            fraction = obj.visibility if obj.mask.any() else 0.0
            start = assignment.get(obj.obj_id, {}).get('from_frame', 0) if assignment else 0
            frame[obj.obj_id] = _Truth(obj.mask, 0.0 if index < start else fraction)
        truth_frames.append(frame)
        answer = run.answers.get(stamp)
        predictions.append(_masks(answer) if answer is not None else {})
    pairs = None
    if assignment is not None:
        pairs = {gt_id: tuple(entry['ids']) for gt_id, entry in assignment.items()}
    scores = evaluate_sequence(truth_frames, predictions, pairs)
    return {
        'J': scores.j,
        'F': scores.f,
        'J&F': scores.j_and_f,
        'id_switches': scores.id_switches,
        'assignment': 'scripted' if assignment is not None else 'by overlap',
        'objects': {
            str(gt_id): {
                'J': obj.j,
                'F': obj.f,
                'J&F': obj.j_and_f,
                'frames_scored': obj.frames_visible,
                'frames_missed': obj.frames_missed,
                'id_switches': obj.id_switches,
                'node_ids': list(obj.pred_ids),
            }
            for gt_id, obj in scores.objects.items()
        },
    }


def _follower(gt, answer_objects: dict, assignment, index: int, gt_mask=None):
    """Return the node object following ground-truth object `gt` on a frame, or None."""
    if assignment is not None:
        entry = assignment.get(int(gt.id))
        if entry is None or index < entry['from_frame']:
            return None
        present = [answer_objects[i] for i in entry['ids'] if i in answer_objects]
        return present[-1] if present else None
    best, best_iou = None, 0.5  # by overlap: the best match above IoU 0.5
    for obj in answer_objects.values():
        mask = _masks_of(obj)
        if mask is None or mask.shape != gt_mask.shape:
            continue
        union = np.count_nonzero(mask | gt_mask)
        iou = np.count_nonzero(mask & gt_mask) / union if union else 0.0
        if iou > best_iou:
            best, best_iou = obj, iou
    return best


def _masks_of(obj) -> np.ndarray | None:
    return msg_to_mask(obj.mask)


def _xyz(vector) -> np.ndarray:
    return np.array([vector.x, vector.y, vector.z], dtype=np.float64)


def accuracy_3d(run: RecordedRun, truth: dict[int, object]) -> dict | None:
    """3D centre and extent errors per ground-truth object, metres; None without 3D truth."""
    if not any(obj.has_3d for msg in truth.values() for obj in msg.objects):
        return None
    assignment = _assignment(run)
    per: dict[int, dict] = {}
    for index, stamp in enumerate(run.stamps):
        answer = run.answers.get(stamp)
        if answer is None or stamp not in truth:
            continue
        objects = {int(obj.id): obj for obj in answer.objects}
        for gt in truth[stamp].objects:
            if not gt.has_3d:
                continue
            gt_mask = _masks_of(gt) if assignment is None else None
            obj = _follower(gt, objects, assignment, index, gt_mask)
            if obj is None:
                continue
            stats = per.setdefault(int(gt.id), {'centre': [], 'extent': [], 'without_3d': 0})
            if not obj.has_3d:
                stats['without_3d'] += 1
                continue
            stats['centre'].append(float(np.linalg.norm(_xyz(obj.position) - _xyz(gt.position))))
            stats['extent'].append(float(np.linalg.norm(_xyz(obj.box_size) - _xyz(gt.box_size))))
    objects = {
        str(gt_id): {
            'frames_3d': len(stats['centre']),
            'frames_without_3d': stats['without_3d'],
            'centre_error_m': {
                'mean': float(np.mean(stats['centre'])) if stats['centre'] else math.nan,
                'p95': _percentile(stats['centre'], 95),
                'max': max(stats['centre'], default=math.nan),
            },
            'extent_error_m': float(np.mean(stats['extent'])) if stats['extent'] else math.nan,
        }
        for gt_id, stats in sorted(per.items())
    }
    centres = [e for stats in per.values() for e in stats['centre']]
    extents = [e for stats in per.values() for e in stats['extent']]
    return {
        'centre_error_m': float(np.mean(centres)) if centres else math.nan,
        'extent_error_m': float(np.mean(extents)) if extents else math.nan,
        'objects': objects,
    }


def evaluate(output_bag: str | Path, ground_truth: str | Path | None = None) -> dict:
    """Build the report of a recorded run (with accuracy when ground truth is found)."""
    run = load_run(output_bag)
    report = {
        'output_bag': str(run.path),
        'input_bag': run.custom.get('input_bag', ''),
        'mode': run.custom.get('mode', ''),
        'weights': {None: 'unknown', True: 'UNTRAINED', False: 'trained'}[run.untrained],
        **run_statistics(run),
        'accuracy': None,
        'accuracy_3d': None,
    }
    source = ground_truth or run.custom.get('input_bag')
    if source:
        with BagReader(source) as reader:
            has_truth = GROUND_TRUTH_TOPIC in reader.topics
        if has_truth:
            report['ground_truth_bag'] = str(source)
            truth = load_truth(source)
            report['accuracy'] = accuracy(run, truth)
            report['accuracy_3d'] = accuracy_3d(run, truth)
        elif ground_truth:
            raise BagError(f'{source}: no {GROUND_TRUTH_TOPIC} topic to evaluate against')
    return report


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return 'n/a' if math.isnan(value) else f'{value:.{digits}f}'
    return str(value)


def format_report(report: dict) -> str:
    """Return the report as readable text: run statistics, then a table per object."""
    latency = report['latency_ms']
    lines = [
        f'run: {report["output_bag"]} ({report["mode"] or "mode unknown"}; weights: '
        f'{report["weights"]})',
        f'frames: {report["frames_published"]} published, {report["frames_answered"]} answered, '
        f'{len(report["frames_lost"])} lost; keyframes {report["keyframes"]} '
        f'({_fmt(report["keyframe_ratio"], 2)}); re-anchors {report["reanchors"]}; objects '
        f'{report["object_ids"]}',
        f'output rate {_fmt(report["output_fps"], 2)} fps; latency ms p50 '
        f'{_fmt(latency["p50"], 1)}, p95 {_fmt(latency["p95"], 1)}, max {_fmt(latency["max"], 1)}',
    ]
    acc = report['accuracy']
    if acc is None:
        lines.append('accuracy: no ground truth')
        return '\n'.join(lines)
    lines.append(f'accuracy against {report["ground_truth_bag"]} (ids {acc["assignment"]}):')
    header = (
        f'{"object":>8} {"node ids":>10} {"J":>7} {"F":>7} {"J&F":>7} {"scored":>7} '
        f'{"missed":>7} {"id sw":>6}'
    )
    lines.append(header)
    for gt_id, obj in acc['objects'].items():
        ids = ','.join(map(str, obj['node_ids'])) or '-'
        lines.append(
            f'{gt_id:>8} {ids:>10} {_fmt(obj["J"]):>7} {_fmt(obj["F"]):>7} '
            f'{_fmt(obj["J&F"]):>7} {obj["frames_scored"]:>7} {obj["frames_missed"]:>7} '
            f'{obj["id_switches"]:>6}'
        )
    lines.append(
        f'{"mean":>8} {"":>10} {_fmt(acc["J"]):>7} {_fmt(acc["F"]):>7} {_fmt(acc["J&F"]):>7} '
        f'{"":>7} {"":>7} {acc["id_switches"]:>6}'
    )
    lines += _format_3d(report.get('accuracy_3d'))
    if report['weights'] == 'UNTRAINED':
        lines.append('UNTRAINED weights: these scores measure nothing but the plumbing')
    return '\n'.join(lines)


def _format_3d(acc: dict | None) -> list[str]:
    if acc is None:
        return []
    lines = [
        '3D (metres; centre = position, extent = box_size):',
        f'{"object":>8} {"frames":>7} {"no 3D":>6} {"centre":>8} {"p95":>8} {"max":>8} '
        f'{"extent":>8}',
    ]
    for gt_id, obj in acc['objects'].items():
        centre = obj['centre_error_m']
        lines.append(
            f'{gt_id:>8} {obj["frames_3d"]:>7} {obj["frames_without_3d"]:>6} '
            f'{_fmt(centre["mean"], 4):>8} {_fmt(centre["p95"], 4):>8} '
            f'{_fmt(centre["max"], 4):>8} {_fmt(obj["extent_error_m"], 4):>8}'
        )
    lines.append(
        f'{"mean":>8} {"":>7} {"":>6} {_fmt(acc["centre_error_m"], 4):>8} {"":>8} {"":>8} '
        f'{_fmt(acc["extent_error_m"], 4):>8}'
    )
    return lines


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_report(report: dict, path: Path) -> None:
    """Write the report as JSON (NaN, for "nothing to score", becomes null)."""
    path.write_text(json.dumps(_json_safe(report), indent=2) + '\n')


def main(argv=None) -> int:
    """Evaluate; print the table, write JSON with --json; exit 1 with one line on errors."""
    parser = argparse.ArgumentParser(
        prog='sam2_evaluate',
        description='Score a bag recorded by sam2_replay --record against ground truth.',
    )
    parser.add_argument('output_bag', type=Path, help='the recorded bag')
    parser.add_argument(
        '--ground-truth',
        type=Path,
        help='bag with /ground_truth/objects (default: the replayed input bag)',
    )
    parser.add_argument('--json', type=new_file, help='write the report here as JSON')
    args = parser.parse_args(argv)
    try:
        report = evaluate(args.output_bag, args.ground_truth)
    except BagError as error:
        print(f'sam2_evaluate: error: {error}', file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        try:
            write_report(report, args.json)
        except OSError as error:
            print(f'sam2_evaluate: error: cannot write {args.json}: {error}', file=sys.stderr)
            return 1
        print(f'report: {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
