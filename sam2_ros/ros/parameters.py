"""Node parameters as a table of specs: descriptors, checks and refusals in words.

A node lists its parameters as `ParamSpec`s (name, default, description, range or choices)
and declares them with `declare`; `ParamSpec.check` and `parameters_problem` say why a value
or an update is refused, naming the parameter and the types. The tracker and the console
both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
import difflib
import math

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter."""

    name: str
    default: object
    description: str
    read_only: bool = False  # fixed for the node's lifetime
    at_configure: bool = False  # read by configure; may change only while unconfigured
    low: float | None = None  # inclusive range, for numbers
    high: float | None = None
    step: int = 1  # integers: allowed values are low, low + step, ... (rclpy enforces it too)
    choices: tuple[str, ...] = ()

    def descriptor(self) -> ParameterDescriptor:
        """Return the ParameterDescriptor advertised by `ros2 param describe`."""
        description = self.description
        if self.choices:
            description += f' One of: {", ".join(self.choices)}.'
        if self.at_configure:
            description += ' Read at configure: change it while the node is unconfigured.'
        descriptor = ParameterDescriptor(
            name=self.name,
            type=_TYPES[type(self.default)],
            description=description,
            read_only=self.read_only,
        )
        if isinstance(self.default, bool):
            pass
        elif isinstance(self.default, int) and self.low is not None:
            descriptor.integer_range = [
                IntegerRange(from_value=int(self.low), to_value=int(self.high), step=self.step)
            ]
        elif isinstance(self.default, float) and self.low is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(self.low), to_value=float(self.high), step=0.0)
            ]
        return descriptor

    def check(self, value) -> str | None:
        """Return why `value` is invalid for this parameter, or None (ranges, choices, NaN)."""
        if isinstance(value, float) and not math.isfinite(value):
            return f'{self.name} must be a finite number, got {value}'
        if self.low is not None and not self.low <= value <= self.high:
            return f'{self.name} must be in [{self.low:g}, {self.high:g}], got {value}'
        if self.step > 1 and (value - self.low) % self.step:
            return f'{self.name} must be a multiple of {self.step}, got {value}'
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}; got '{value}'"
        return None


# What each ParameterType holds, in words, for refusals a user can act on.
TYPE_WORDS = {
    ParameterType.PARAMETER_NOT_SET: 'unset',
    ParameterType.PARAMETER_BOOL: 'a boolean (true or false)',
    ParameterType.PARAMETER_INTEGER: 'an integer',
    ParameterType.PARAMETER_DOUBLE: 'a floating-point number (write 1.0, not 1)',
    ParameterType.PARAMETER_STRING: 'a string',
    ParameterType.PARAMETER_BYTE_ARRAY: 'an array of bytes',
    ParameterType.PARAMETER_BOOL_ARRAY: 'an array of booleans',
    ParameterType.PARAMETER_INTEGER_ARRAY: 'an array of integers',
    ParameterType.PARAMETER_DOUBLE_ARRAY: 'an array of floating-point numbers',
    ParameterType.PARAMETER_STRING_ARRAY: 'an array of strings',
}


def parameters_problem(
    parameters: Iterable, describe: Callable[[str], object | None], specs: dict[str, ParamSpec]
) -> str:
    """Return why rclpy `parameters` cannot be set (unknown name, wrong type), or ''.

    `describe(name)` returns the declared ParameterDescriptor, or None when `name` is not
    declared; `specs` are the node's parameters, for suggestions. rclpy's own refusals name
    neither the parameter nor the types in words.
    """
    problems = []
    for parameter in parameters:
        descriptor = describe(parameter.name)
        given = parameter.type_.value
        if descriptor is None:
            problems.append(_unknown(parameter.name, specs))
        elif (
            not descriptor.dynamic_typing
            and given != ParameterType.PARAMETER_NOT_SET
            and given != descriptor.type
        ):
            value = repr(parameter.value)
            value = value if len(value) <= 40 else value[:37] + '...'
            problems.append(
                f"parameter '{parameter.name}' must be {_words(descriptor.type)}, got "
                f'{_words(given)} ({value})'
            )
    return '; '.join(problems)


def _unknown(name: str, specs: dict[str, ParamSpec]) -> str:
    close = difflib.get_close_matches(name, list(specs), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ' (`ros2 param list` shows them)'
    return f"unknown parameter '{name}': the node declares no such parameter{hint}"


def _words(parameter_type: int) -> str:
    return TYPE_WORDS.get(parameter_type, f'type {parameter_type}')


def declare(node, specs: Iterable[ParamSpec]) -> None:
    """Declare every parameter of `specs` on `node`, with its descriptor."""
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, spec.descriptor())
