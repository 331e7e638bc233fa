"""One registry of instruments: the built-in ones plus those a config.toml describes.

A registry is an immutable value built from a :class:`~iopreport.config.Config`
(``config.registry``) and passed to whoever needs an instrument's spec:
classification, reduction, flags, the site, the summary and the simulator. It
holds no process-wide state, so two configurations in one process (or a Dask
worker that received a task) never see each other's instruments.
"""

from __future__ import annotations

import copyreg
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from iopreport.instruments.dialect import HeaderDialect
from iopreport.instruments.dialects import dialect_for, dialect_of
from iopreport.instruments.generic import spec_of
from iopreport.instruments.specs import BUILTIN_SPECS, InstrumentSpec


# Read-only mappings (specs, configurations) travel to worker processes with their tasks.
def read_only(mapping: dict) -> Mapping:
    """A read-only view of ``mapping``; how a pickled ``mappingproxy`` is rebuilt."""
    return types.MappingProxyType(mapping)


copyreg.pickle(types.MappingProxyType, lambda proxy: (read_only, (dict(proxy),)))

#: Stored names that mean a built-in instrument (IOP4 names CAFOS "CAFOS2.2").
ALIASES: Mapping[str, str] = types.MappingProxyType({"CAFOS2.2": "CAFOS", "CAFOS 2.2": "CAFOS"})


@dataclass(frozen=True)
class InstrumentRegistry:
    """Instrument specs by name, and the configurations of config-defined ones.

    Parameters
    ----------
    specs
        Every instrument's :class:`InstrumentSpec`, by name.
    generic
        The ``[instruments.NAME]`` configurations (``GenericInstrumentConfig``)
        by name; their header dialect reads frames through them.
    """

    specs: Mapping[str, InstrumentSpec]
    generic: Mapping[str, object] = field(default_factory=lambda: types.MappingProxyType({}))

    @classmethod
    def builtin(cls) -> InstrumentRegistry:
        """The instruments iopreport knows without any configuration."""
        return cls(types.MappingProxyType({spec.name: spec for spec in BUILTIN_SPECS}))

    def with_generic(self, configs: Iterable) -> InstrumentRegistry:
        """A new registry that also knows the config-defined instruments ``configs``.

        Raises
        ------
        ValueError
            When a configured instrument reuses a built-in name.
        """
        specs = dict(self.specs)
        generic = dict(self.generic)
        for config in configs:
            if config.name in specs and config.name not in generic:
                raise ValueError(f"instrument {config.name!r} is built in; choose another name")
            specs[config.name] = spec_of(config)
            generic[config.name] = config
        return InstrumentRegistry(types.MappingProxyType(specs), types.MappingProxyType(generic))

    def get(self, name: str) -> InstrumentSpec:
        """The spec of an instrument by its stored name (aliases such as ``CAFOS2.2`` accepted).

        Raises
        ------
        KeyError
            Naming the unknown instrument and the known ones.
        """
        key = ALIASES.get(name, name)
        try:
            return self.specs[key]
        except KeyError:
            known = ", ".join(self.specs)
            raise KeyError(f"unknown instrument {name!r}; known: {known}") from None

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and ALIASES.get(name, name) in self.specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def names(self) -> tuple[str, ...]:
        """Every instrument's name, built-in ones first."""
        return tuple(self.specs)

    def dialect_for(self, header, night) -> tuple[HeaderDialect, str] | None:
        """The header dialect that reads ``header`` and the instrument it names, or None."""
        return dialect_for(header, night, self.generic)

    def dialect_of(self, name: str) -> HeaderDialect:
        """The header dialect that reads and writes instrument ``name``'s headers."""
        return dialect_of(ALIASES.get(name, name), self.generic)

    def quad_instruments(self) -> tuple[str, ...]:
        """Names of the instruments whose sub-frames are placed by quads."""
        return tuple(name for name, spec in self.specs.items() if spec.subframes_by_quads)
