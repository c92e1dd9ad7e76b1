"""Schema migrations shared by both engines.

Files in ``store/migrations`` are named ``NNNN_name.sql`` (portable SQL, run on every engine) or
``NNNN_name.sqlite.sql`` / ``NNNN_name.postgres.sql`` (one engine only; give both engines a file
with the same number when a change cannot be written portably). Versions are applied in order,
each once, recorded in ``schema_migrations``, all pending versions in one transaction.
"""

from __future__ import annotations

from importlib import resources

ENGINES = ("sqlite", "postgres")


def migrations(engine: str) -> list[tuple[int, str]]:
    """(version, SQL) for ``engine``, in version order."""
    if engine not in ENGINES:
        raise ValueError(f"unknown store engine {engine!r}")
    folder = resources.files("trentd.store") / "migrations"
    found: dict[int, str] = {}
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        stem = name[: -len(".sql")]
        only = stem.rsplit(".", 1)[1] if "." in stem else None
        if only is not None and only not in ENGINES:
            raise ValueError(f"migration {name}: unknown engine suffix {only!r}")
        if only not in (None, engine):
            continue
        version = int(name.split("_", 1)[0])
        if version in found:
            raise ValueError(f"two migrations numbered {version} for {engine}")
        found[version] = entry.read_text()
    return sorted(found.items())


def statements(sql: str) -> list[str]:
    """Split a migration into statements on ``;`` outside quotes, dropping ``--`` comments."""
    out: list[str] = []
    current: list[str] = []
    i, n, quote = 0, len(sql), ""
    while i < n:
        ch = sql[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch == ";":
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current).strip())
    return [s for s in out if s]
