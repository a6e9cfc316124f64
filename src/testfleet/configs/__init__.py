"""Configuration files in seven formats (YAML, JSON, TOML, INI, XML, .properties, and the
``key value`` directives of redis.conf / sshd_config / postgresql.conf), read and written so
that values round-trip exactly; see :mod:`testfleet.configs.formats`."""

from testfleet.configs.formats import (
    FORMATS,
    ConfigDocument,
    coerce_scalars,
    detect_format,
    dump,
    dumps,
    flatten,
    load,
    loads,
    set_path,
    unflatten,
)

__all__ = ["FORMATS", "ConfigDocument", "coerce_scalars", "detect_format", "dump", "dumps",
           "flatten", "load", "loads", "set_path", "unflatten"]
