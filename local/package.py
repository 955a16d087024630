"""Build the FunctionGraph zip: index.py at the root, the handler package, the schemas, the runtime wheels, bytecode."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-zip.txt"
# Nothing of these is needed at run time in FunctionGraph.
_PRUNE_DIRS = {"__pycache__", "tests", "bin"}
_EPOCH = (2020, 1, 1, 0, 0, 0)


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _interpreter_version(python: str) -> str | None:
    """'3.12' for the given interpreter, or None when it is not there."""
    found = shutil.which(python)
    if not found:
        return None
    try:
        result = subprocess.run(
            [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def find_interpreter(python: str) -> tuple[str, str] | None:
    """(path, 'X.Y') of a working interpreter for `python` (a name like python3.12 or a path).

    A name that is only a pyenv shim for another version fails to run; then pyenv's own installs and the
    usual system paths of that version are tried.
    """
    candidates = [python]
    wanted = re.fullmatch(r"python(\d+\.\d+)", python)
    if wanted:
        version = wanted.group(1)
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        candidates += sorted((str(p) for p in pyenv.glob(f"{version}.*/bin/python{version}")), reverse=True)
        candidates += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    for candidate in candidates:
        found = _interpreter_version(candidate)
        if found and (not wanted or found == wanted.group(1)):
            return shutil.which(candidate) or candidate, found
    return None


def _copy_sources(build: Path) -> None:
    for source in sorted((ROOT / "handler").rglob("*.py")):
        copy = build / source.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copy)
    (build / "schemas").mkdir()
    for schema in sorted((ROOT / "schemas").glob("*.schema.json")):
        if schema.name != "template.schema.json":
            shutil.copy2(schema, build / "schemas" / schema.name)
    shutil.copy2(ROOT / "index.py", build / "index.py")


def _install_dependencies(build: Path, version: str) -> None:
    _say(f"installing runtime dependencies for CPython {version} on manylinux2014_x86_64 (pinned)")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(build), "--platform", "manylinux2014_x86_64", "--implementation", "cp",
            "--python-version", version, "--only-binary=:all:", "--no-deps", "-r", str(REQUIREMENTS),
        ],
        check=True,
    )  # fmt: skip
    for path in sorted(build.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _PRUNE_DIRS:
            shutil.rmtree(path)


def _compile(build: Path, python: str) -> None:
    _say(f"compiling bytecode with {python} (unchecked-hash: valid without a writable code folder)")
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", "-d", ".", str(build)],
        check=True,
        cwd=build,
    )


def _zip(build: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(build.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(build).as_posix(), _EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)


BUILD_RECORD = "nodepool-sync-build.json"  # at the zip's root: the Python it was built for


def built_for(zip_path: Path) -> str:
    """The Python version a zip was built for ("" when it does not say)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            record = json.loads(archive.read(BUILD_RECORD))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return ""
    return str(record.get("python", "")) if isinstance(record, dict) else ""


def build(output: Path, python: str, bytecode: bool = True) -> Path:
    """Build the zip at `output` for the Python version of interpreter `python`; returns the zip's path."""
    found = find_interpreter(python)
    if found is None:
        target = python.removeprefix("python")
        print(
            f"WARNING: no interpreter {python!r} on this machine: the zip gets sources only, so every cold start "
            f"compiles them. Install Python {target} or set PYTHON_TARGET to one you have.",
            file=sys.stderr,
        )
        version, bytecode = target, False
    else:
        python, version = found
    with tempfile.TemporaryDirectory(prefix="nodepool-sync-build-") as temp:
        build_dir = Path(temp)
        _say("copying handler/, schemas/ and index.py")
        _copy_sources(build_dir)
        _install_dependencies(build_dir, version)
        if bytecode:
            _compile(build_dir, python)
        record = {"python": version, "bytecode": bytecode}  # what deploy-config checks against the runtime
        (build_dir / BUILD_RECORD).write_text(json.dumps(record) + "\n", encoding="utf-8")
        _say(f"writing {output}")
        _zip(build_dir, output)
    unpacked = sum(info.file_size for info in zipfile.ZipFile(output).infolist())
    print(
        f"{output}: {os.path.getsize(output) / 1e6:.2f} MB zipped, {unpacked / 1e6:.2f} MB unpacked "
        f"(Python {version}, {'with' if bytecode else 'without'} bytecode)"
    )
    return output
