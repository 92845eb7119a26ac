"""Reading and writing rosbag2 bags with `rosbags` (pure Python, no ROS install needed).

Bags written here are ordinary rosbag2 directories (metadata.yaml plus an mcap or sqlite3
file, CDR messages, offered QoS profiles per topic), so `ros2 bag info/play` read them, and
bags written by `ros2 bag record` are read here. The type store is the Kilted one plus the
sam2_ros messages (from the installed interface definitions, or the source tree's msg/);
types a bag defines itself (mcap stores every definition) are taken from the bag.

Every failure to open or decode a bag is a `BagError` whose message names the bag and what
is wrong with it, so command-line tools can print one line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
import functools
import json
from pathlib import Path
import shutil
import site
import sys

GROUND_TRUTH_TOPIC = '/ground_truth/objects'
PUBLISHED_FRAMES_TOPIC = '/sam2_replay/published'  # std_msgs/Header per replayed frame
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
TRACKED_OBJECTS_TYPE = 'sam2_ros/msg/TrackedObjectArray'
STORAGES = ('mcap', 'sqlite3')
# custom_data keys of metadata.yaml written by the sam2_ros tools
CUSTOM_DATA_PREFIX = 'sam2_ros.'


class BagError(RuntimeError):
    """A bag that cannot be opened, read or written; the message says why."""


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag: its topic, type, log time (ns) and deserialized value."""

    topic: str
    msgtype: str
    log_time_ns: int
    msg: object
    raw: bytes


def _interface_dirs() -> list[Path]:
    """Directories that may hold sam2_ros/msg/*.msg, installed first.

    A colcon install has them in its ament share directory; `pip install` puts them in
    <prefix>/share/sam2_ros (setup.py's data_files; the user base with --user); a source
    checkout has msg/.
    """
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory('sam2_ros')) / 'msg')
    except Exception:  # noqa: BLE001 - no ament index (a pip install): look further
        pass
    for prefix in (sys.prefix, site.getuserbase()):
        dirs.append(Path(prefix) / 'share' / 'sam2_ros' / 'msg')
    dirs.append(Path(__file__).resolve().parents[2] / 'msg')
    return dirs


@functools.lru_cache(maxsize=1)
def typestore():
    """Return the rosbags type store: ROS 2 Kilted messages plus the sam2_ros ones."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    for directory in _interface_dirs():
        files = sorted(directory.glob('*.msg'))
        if files:
            types = {}
            for path in files:
                types.update(get_types_from_msg(path.read_text(), f'sam2_ros/msg/{path.stem}'))
            store.register(types)
            break
    return store


def check_bag_path(path: str | Path) -> Path:
    """Return `path` as a Path if it looks like a rosbag2 directory, else raise BagError."""
    path = Path(path)
    if not path.exists():
        raise BagError(f'{path}: no such bag')
    if not path.is_dir():
        raise BagError(f'{path}: a rosbag2 bag is a directory with a metadata.yaml')
    if not (path / 'metadata.yaml').is_file():
        raise BagError(
            f'{path}: metadata.yaml is missing (an unfinished recording? `ros2 bag reindex` '
            'rebuilds it for sqlite3 bags)'
        )
    return path


class BagReader:
    """A rosbag2 bag opened for reading; use as a context manager.

    Wraps `rosbags.highlevel.AnyReader` so that every failure (a corrupt or truncated file,
    an unknown type) is a BagError naming the bag.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_bag_path(path)
        self._reader = None

    def __enter__(self) -> BagReader:
        """Open the bag."""
        from rosbags.highlevel import AnyReader

        try:
            self._reader = AnyReader([self.path], default_typestore=typestore())
            self._reader.open()
        except Exception as error:  # noqa: BLE001 - rosbags raises several error types
            raise BagError(f'{self.path}: cannot open the bag: {error}') from error
        return self

    def __exit__(self, *exc) -> None:
        """Close the bag."""
        if self._reader is not None:
            self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Return {topic: message type} of every topic in the bag."""
        return {name: info.msgtype for name, info in self._reader.topics.items()}

    @property
    def duration_ns(self) -> int:
        """Return the time between the first and the last message, nanoseconds."""
        return int(self._reader.duration)

    @property
    def message_counts(self) -> dict[str, int]:
        """Return {topic: number of messages}."""
        return {name: info.msgcount for name, info in self._reader.topics.items()}

    @property
    def custom_data(self) -> dict[str, str]:
        """Return the sam2_ros custom data of metadata.yaml (without the key prefix)."""
        import yaml

        try:
            meta = yaml.safe_load((self.path / 'metadata.yaml').read_text())
            data = meta['rosbag2_bagfile_information'].get('custom_data') or {}
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            return {}
        return {
            key[len(CUSTOM_DATA_PREFIX) :]: str(value)
            for key, value in data.items()
            if key.startswith(CUSTOM_DATA_PREFIX)
        }

    def require_topics(self, topics: Iterable[str], what: str = 'needed') -> None:
        """Raise BagError naming the topics that are not in the bag."""
        missing = [topic for topic in topics if topic not in self.topics]
        if missing:
            present = ', '.join(f'{t} ({m})' for t, m in sorted(self.topics.items())) or 'none'
            raise BagError(
                f'{self.path}: topic {", ".join(missing)} {what} but not in the bag '
                f'(topics: {present})'
            )

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Yield the messages of `topics` (all when None) in log-time order, deserialized."""
        wanted = None if topics is None else set(topics)
        connections = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        try:
            for connection, log_time, raw in self._reader.messages(connections=connections):
                msg = self._reader.deserialize(raw, connection.msgtype)
                yield BagMessage(connection.topic, connection.msgtype, log_time, msg, bytes(raw))
        except Exception as error:  # noqa: BLE001 - a truncated chunk, a bad CDR payload
            raise BagError(f'{self.path}: the bag is damaged: {error}') from error


def qos_profile(reliability: str = 'reliable', depth: int = 10, transient_local: bool = False):
    """Return a rosbags Qos for metadata.yaml's offered_qos_profiles."""
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    infinite = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=(
            QosReliability.RELIABLE if reliability == 'reliable' else QosReliability.BEST_EFFORT
        ),
        durability=(QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE),
        deadline=infinite,
        lifespan=infinite,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=infinite,
        avoid_ros_namespace_conventions=False,
    )


class BagWriter:
    """A rosbag2 bag being written; use as a context manager.

    Messages are written as they come (mcap chunks or sqlite3 rows); `close` (also on an
    exception or KeyboardInterrupt inside the `with` block) writes metadata.yaml, so an
    interrupted recording still leaves a readable bag with everything written so far.
    """

    def __init__(
        self, path: str | Path, storage: str = 'mcap', version: int = 9, overwrite: bool = False
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f'storage must be one of {", ".join(STORAGES)}, got {storage!r}')
        if version not in (8, 9):
            raise BagError('bag version must be 8 (Humble, Iron) or 9 (Jazzy and newer)')
        self.path = Path(path)
        if self.path.exists():
            if not overwrite:
                raise BagError(f'{self.path} already exists (choose another path)')
            shutil.rmtree(self.path)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=version, storage_plugin=plugin)
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        """Open the bag for writing."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer.open()
        except Exception as error:  # noqa: BLE001 - WriterError, OSError
            raise BagError(f'{self.path}: cannot create the bag: {error}') from error
        return self

    def __exit__(self, *exc) -> None:
        """Write metadata.yaml and close the bag."""
        self.close()

    def close(self) -> None:
        """Write metadata.yaml and close the bag; safe to call twice."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def set_custom_data(self, key: str, value) -> None:
        """Store `value` (a string, or JSON for anything else) in metadata.yaml."""
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        self._writer.set_custom_data(CUSTOM_DATA_PREFIX + key, text)

    def add_topic(self, topic: str, msgtype: str, qos=None) -> None:
        """Declare `topic`; messages of unknown types raise BagError."""
        if topic in self._connections:
            return
        store = typestore()
        if msgtype not in store.types:
            raise BagError(f'unknown message type {msgtype} for {topic}')
        self._connections[topic] = self._writer.add_connection(
            topic,
            msgtype,
            typestore=store,
            offered_qos_profiles=[qos or qos_profile()],
        )
        self.counts[topic] = 0

    def write_raw(self, topic: str, log_time_ns: int, raw: bytes) -> None:
        """Write one serialized (CDR) message of a declared topic."""
        self._writer.write(self._connections[topic], int(log_time_ns), raw)
        self.counts[topic] += 1

    def write(self, topic: str, log_time_ns: int, msg, msgtype: str, qos=None) -> None:
        """Serialize a rosbags message and write it, declaring the topic on first use."""
        self.add_topic(topic, msgtype, qos)
        self.write_raw(topic, log_time_ns, bytes(typestore().serialize_cdr(msg, msgtype)))
