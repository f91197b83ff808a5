"""Build and run Flowdesk's image from its Dockerfile without a container engine.

No container engine runs where Flowdesk is tested, so this script reads the Dockerfile and
performs its instructions itself, in a scratch folder, then runs the image the way compose.yaml
does and checks that it works:

- Each stage's filesystem is a folder. The image's own top-level paths (``/app``, ``/venv``,
  ``/home``, ``/build``: every absolute path the Dockerfile names outside the system's folders)
  are rewritten into it; commands find the system's own tools where the image would.
- ``FROM python:X.Y-slim`` is a copy of this machine's Python X.Y (``python`` first on PATH, its
  standard library without the tests), as the base image provides it.
- COPY takes the build context through ``.dockerignore``, COPY --from another stage's folder;
  files belong to root unless ``--chown`` says otherwise, as in a build.
- RUN runs ``/bin/sh -c`` with the image's environment only, never this shell's: the same
  commands, pip installing from PyPI as in a build. One exception: ``useradd`` would add a user
  to this machine, so its id and home folder are recorded instead.
- USER switches to that numeric id with ``setpriv``: the same rights as in the container (not
  root, the code read-only, only what the Dockerfile gave the user writable).

Then it runs the image as ``docker run -e …`` would: ``check --deploy`` and ``migrate`` one-offs,
the CMD (gunicorn) until the HEALTHCHECK command passes, a collected static file, that the code
is read-only to the user, and Celery worker and beat until each has started.

Like Docker's layer cache, a stage before the last is kept (under ``var/image-check/cache``) and
reused while its instructions and the files it copies are unchanged, so only the first run waits
for pip. ``--no-cache`` rebuilds everything.

Exit status: 0 when every step passed, 1 when one failed (the output says which), 3 when this
machine cannot stand in for the base image (no such Python, not root, no setpriv).
"""

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Top-level folders that belong to the machine, not to the image: paths under them are used as
# they are (the image's /usr/bin is this machine's /usr/bin).
SYSTEM_DIRS = {"bin", "sbin", "usr", "lib", "lib64", "etc", "dev", "proc", "sys", "tmp", "run"}
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# An absolute path at the start of a word (`/venv/bin/pip`, `PATH=/venv/bin`), not inside a URL
# (`https://build.invalid`, `postgres://user@localhost/db`) nor in the middle of a path.
ABSOLUTE = re.compile(r"(?<![\w.:/@$-])/([A-Za-z0-9_][\w.-]*)")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
# Settings for the run: test-only values that pass production's refusals, never used elsewhere.
RUN_SETTINGS = {
    "SECRET_KEY": "image-check-only-4Jf8Kq2Lw9Zx6Nc1Vb7Mh3Tp5Rd0Gs-never-deployed",
    "ALLOWED_HOSTS": "flowdesk.image-check.invalid",
    "FLOWS_API_URL": "https://flows.image-check.invalid",
    "FLOWS_CLIENT_ID": "image-check",
    "FLOWS_CLIENT_SECRET": "image-check",
    "FLOWS_WEBHOOK_SECRET": "whsec_aW1hZ2UtY2hlY2s=",
    "EMAIL_HOST": "smtp.image-check.invalid",
    # As behind compose's proxy: requests that say they came over HTTPS are not redirected.
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


class CheckFailed(Exception):
    """A step of the build or of the run did not do what the image must do."""


class CannotEmulate(Exception):
    """This machine cannot stand in for the image (exit status 3)."""


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def __str__(self) -> str:
        return f"{self.keyword} {self.args}"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class User:
    uid: int
    gid: int
    home: str


@dataclass
class Image:
    """What the last stage leaves: its folder, environment, working folder, user and commands."""

    root: Path
    env: dict[str, str]
    workdir: str
    user: str | None
    cmd: list[str]
    healthcheck: list[str]
    users: dict[str, User]


def log(message: str) -> None:
    print(message, flush=True)


# --- Reading the Dockerfile and .dockerignore ----------------------------------------------------


def parse_dockerfile(path: Path) -> list[Stage]:
    """Instructions, one per logical line (continuations joined, comments dropped), by stage."""
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not pending:
            start = number
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        text = " ".join([*pending, line])
        pending = []
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            raise CheckFailed(f"Dockerfile line {start}: {keyword} before FROM")
        else:
            stages[-1].instructions.append(instruction)
    return stages


def ignore_patterns(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore`` as (is an exception, pattern), in Docker's syntax: Go's filepath.Match
    plus ``**``, a leading ``!`` for an exception, the last matching line deciding."""
    patterns = []
    if path.exists():
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            line = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            patterns.append((exception, re.compile(_glob_to_regex(line))))
    return patterns


def _glob_to_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(char)
            else:
                out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return out


def excluded(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether .dockerignore leaves this path (or a folder above it) out of the context."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for exception, pattern in patterns:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            result = not exception
    return result


def context_files(context: Path, patterns: list[tuple[bool, re.Pattern[str]]]) -> list[str]:
    """Every file of the build context that .dockerignore lets through, relative, sorted."""
    has_exceptions = any(exception for exception, _ in patterns)
    files = []
    for folder, dirs, names in os.walk(context):
        relative_folder = os.path.relpath(folder, context)
        relative_folder = "" if relative_folder == "." else relative_folder + "/"
        if not has_exceptions:
            dirs[:] = [d for d in dirs if not excluded(relative_folder + d, patterns)]
        dirs.sort()
        for name in sorted(names):
            relative = relative_folder + name
            if not excluded(relative, patterns):
                files.append(relative)
    return files


# --- Paths and environments ----------------------------------------------------------------------


def image_dirs(stages: list[Stage]) -> set[str]:
    """The image's own top-level folders: those its absolute paths name, outside the system's."""
    names = {"home", "root"}
    for stage in stages:
        for instruction in stage.instructions:
            for match in ABSOLUTE.finditer(instruction.args):
                if match.group(1) not in SYSTEM_DIRS:
                    names.add(match.group(1))
    return names


class Paths:
    """Rewrites the image's absolute paths into one stage's folder."""

    def __init__(self, root: Path, names: set[str]) -> None:
        self.root = root
        self.names = names

    def text(self, value: str) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(1) in self.names:
                return f"{self.root}/{match.group(1)}"
            return match.group(0)

        return ABSOLUTE.sub(replace, value)

    def path(self, image_path: str) -> Path:
        return Path(self.text(image_path))


def expand(value: str, env: dict[str, str]) -> str:
    """Docker's ``$NAME`` / ``${NAME}`` substitution in ENV, WORKDIR and COPY."""
    return VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


def base_environment(python: Path) -> dict[str, str]:
    """The base image's environment: its Python first on PATH. The copied interpreter's own
    library folder comes first too, as it may still name the original's (its RUNPATH)."""
    return {
        "PATH": f"{python}/bin:{SYSTEM_PATH}",
        "LANG": "C.UTF-8",
        "LD_LIBRARY_PATH": f"{python}/lib",
    }


# --- The base image: a copy of this machine's Python ---------------------------------------------


def find_python(version: str) -> Path:
    """A working interpreter of this version: on PATH, then pyenv's (whose shims may fail)."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv = shutil.which("pyenv")
    if pyenv:
        pyenv_root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout
        candidates += sorted(
            str(p)
            for p in Path(pyenv_root.strip()).glob(f"versions/{version}*/bin/python{version}")
        )
    for candidate in candidates:
        if not candidate:
            continue
        result = subprocess.run(
            [
                candidate,
                "-c",
                "import sys; print(sys.version_info[:2] == "
                f"{tuple(int(n) for n in version.split('.'))}, sys.executable)",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0 and result.stdout.startswith("True"):
            return Path(result.stdout.split(maxsplit=1)[1].strip())
    raise CannotEmulate(f"the base image needs Python {version}, and this machine has none")


def base_python(version: str, cache: Path) -> Path:
    """A copy of Python ``version`` that any user may run (the original may sit under a home
    folder others cannot enter), kept in the cache: the base image's interpreter."""
    executable = find_python(version)
    prefix = Path(
        subprocess.run(
            [executable, "-c", "import sys; print(sys.base_prefix)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    digest = hashlib.sha256(f"{executable}:{executable.stat().st_mtime}".encode()).hexdigest()
    target = cache / f"python-{version}-{digest[:12]}"
    if (target / "complete").exists():
        return target
    building = Path(tempfile.mkdtemp(prefix=f".python-{version}-", dir=cache))
    (building / "bin").mkdir()
    (building / "lib").mkdir()
    shutil.copy2(executable, building / "bin" / f"python{version}")
    for name in ("python", "python3"):
        (building / "bin" / name).symlink_to(f"python{version}")
    for library in prefix.glob("lib/libpython*.so*"):
        shutil.copy2(library, building / "lib" / library.name, follow_symlinks=True)
    shutil.copytree(
        prefix / "lib" / f"python{version}",
        building / "lib" / f"python{version}",
        symlinks=True,
        ignore=lambda folder, names: (
            [n for n in names if n in ("test", "idlelib", "tkinter", "turtledemo")]
            + ([n for n in names if n != "README.txt"] if folder.endswith("site-packages") else [])
        ),
    )
    (building / "complete").touch()
    _open_to_all(building)
    try:
        building.rename(target)
    except OSError:  # another run made it meanwhile
        shutil.rmtree(building, ignore_errors=True)
    return target


def _open_to_all(folder: Path) -> None:
    folder.chmod(0o755)


# --- Building ------------------------------------------------------------------------------------


class Builder:
    def __init__(self, dockerfile: Path, cache: Path, scratch: Path, use_cache: bool) -> None:
        self.context = dockerfile.parent
        self.stages = parse_dockerfile(dockerfile)
        self.names = image_dirs(self.stages)
        self.cache = cache
        self.scratch = scratch
        self.use_cache = use_cache
        self.patterns = ignore_patterns(self.context / ".dockerignore")
        self.files = context_files(self.context, self.patterns)
        self.built: dict[str, tuple[Path, str]] = {}  # stage name or index -> (root, key)
        self.users: dict[str, User] = {}

    def build(self) -> Image:
        image: Image | None = None
        for index, stage in enumerate(self.stages):
            last = index == len(self.stages) - 1
            image = self.build_stage(index, stage, cached=self.use_cache and not last)
        assert image is not None
        return image

    def stage_key(self, stage: Stage) -> str:
        """Like a layer cache key: the base, every instruction, and every file copied in."""
        digest = hashlib.sha256(stage.base.encode())
        for instruction in stage.instructions:
            digest.update(str(instruction).encode() + b"\0")
            if instruction.keyword == "COPY":
                flags, sources, _ = self.copy_args(instruction, {})
                if "from" in flags:
                    digest.update(self.built[flags["from"]][1].encode())
                else:
                    for relative in self.context_sources(sources):
                        file = self.context / relative
                        digest.update(relative.encode() + oct(file.stat().st_mode).encode())
                        digest.update(hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest()[:16]

    def build_stage(self, index: int, stage: Stage, *, cached: bool) -> Image:
        match = re.fullmatch(r"python:(\d+\.\d+)(?:[.\d]*)(?:-slim(?:-\w+)?)?", stage.base)
        if not match:
            raise CannotEmulate(f"FROM {stage.base}: only python:X.Y-slim images are known here")
        python = base_python(match.group(1), self.cache)
        key = self.stage_key(stage)
        label = stage.name or str(index)
        if cached:
            kept = self.cache / f"stage-{label}-{key}"
            if (kept / "complete").exists():
                log(f"stage {label}: unchanged, reusing {kept}")
                return self.finish_stage(stage, label, kept / "root", key, python)
            root = Path(tempfile.mkdtemp(prefix=f".stage-{label}-", dir=self.cache)) / "root"
        else:
            root = self.scratch / f"stage-{label}"
        root.mkdir(parents=True)
        _open_to_all(root.parent)
        _open_to_all(root)
        started = time.monotonic()
        image = self.run_instructions(stage, label, root, python)
        log(f"stage {label}: built in {time.monotonic() - started:.0f} s")
        if cached:
            (root.parent / "complete").touch()
            kept = self.cache / f"stage-{label}-{key}"
            try:
                root.parent.rename(kept)
            except OSError:
                shutil.rmtree(root.parent, ignore_errors=True)
            for old in self.cache.glob(f"stage-{label}-*"):
                if old != kept and time.time() - old.stat().st_mtime > 24 * 3600:
                    shutil.rmtree(old, ignore_errors=True)
            image = self.finish_stage(stage, label, kept / "root", key, python)
        self.built[label] = (image.root, key)
        return image

    def finish_stage(self, stage: Stage, label: str, root: Path, key: str, python: Path) -> Image:
        """The environment and settings a cached stage leaves, without running it again."""
        self.built[label] = (root, key)
        return self.run_instructions(stage, label, root, python, dry=True)

    def run_instructions(
        self, stage: Stage, label: str, root: Path, python: Path, *, dry: bool = False
    ) -> Image:
        paths = Paths(root, self.names)
        env = base_environment(python)
        workdir, user = "/", None
        cmd: list[str] = []
        healthcheck: list[str] = []
        for instruction in stage.instructions:
            keyword, args = instruction.keyword, instruction.args
            if not dry:
                log(f"stage {label}: {keyword} {args[:110]}{'…' if len(args) > 110 else ''}")
            if keyword == "ENV":
                for word in shlex.split(args):
                    name, _, value = word.partition("=")
                    env[name] = expand(value, env)
            elif keyword == "WORKDIR":
                workdir = os.path.join(workdir, expand(args, env))
                if not dry:
                    paths.path(workdir).mkdir(parents=True, exist_ok=True)
            elif keyword == "USER":
                user = args
            elif keyword == "CMD":
                cmd = json.loads(args)
            elif keyword == "HEALTHCHECK":
                healthcheck = json.loads(args[args.index("CMD ") + 4 :])
            elif keyword in ("EXPOSE", "LABEL"):
                pass
            elif dry:
                if keyword == "RUN" and args.startswith("useradd "):
                    self.useradd(shlex.split(args), paths, create=False)
                continue
            elif keyword == "COPY":
                self.copy(instruction, paths, env, workdir)
            elif keyword == "RUN":
                self.run(args, paths, env, workdir, user, root)
            else:
                raise CannotEmulate(f"Dockerfile line {instruction.line}: {keyword} is not known")
        return Image(root, env, workdir, user, cmd, healthcheck, dict(self.users))

    # COPY

    def copy_args(
        self, instruction: Instruction, env: dict[str, str]
    ) -> tuple[dict[str, str], list[str], str]:
        words = shlex.split(instruction.args)
        flags = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        words = [expand(word, env) for word in words]
        return flags, words[:-1], words[-1]

    def context_sources(self, sources: list[str]) -> list[str]:
        """The context's files under these sources, after .dockerignore."""
        chosen = []
        for source in sources:
            prefix = os.path.normpath(source).lstrip("/")
            for relative in self.files:
                if prefix == "." or relative == prefix or relative.startswith(prefix + "/"):
                    chosen.append(relative)
            if not any(r == prefix or r.startswith(prefix + "/") for r in self.files) and (
                prefix != "."
            ):
                raise CheckFailed(f"COPY {source}: not in the build context (or .dockerignored)")
        return chosen

    def copy(self, instruction: Instruction, paths: Paths, env: dict[str, str], workdir: str):
        flags, sources, destination = self.copy_args(instruction, env)
        into_folder = destination.endswith("/") or destination in (".", "./") or len(sources) > 1
        target = paths.path(os.path.normpath(os.path.join(workdir, destination)))
        copied: list[Path] = []
        if "from" in flags:
            stage_root = self.built[flags["from"]][0]
            for source in sources:
                origin = Paths(stage_root, self.names).path(source)
                if origin.is_dir():
                    shutil.copytree(origin, target, symlinks=True, dirs_exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name if into_folder else target)
                copied.append(target)
        else:
            for source in sources:
                prefix = os.path.normpath(source).lstrip("/")
                is_folder = prefix == "." or (self.context / prefix).is_dir()
                for relative in self.context_sources([source]):
                    if is_folder:
                        inside = relative if prefix == "." else relative[len(prefix) + 1 :]
                        out = target / inside
                    else:
                        out = target / Path(relative).name if into_folder else target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(self.context / relative, out)
                    copied.append(out)
        if "chown" in flags:
            uid, _, gid = flags["chown"].partition(":")
            owner = (self.numeric(uid, "user"), self.numeric(gid or uid, "group"))
            for path in copied:
                os.lchown(path, *owner)
                if path.is_dir():
                    for item in path.rglob("*"):
                        os.lchown(item, *owner)

    def numeric(self, name: str, kind: str) -> int:
        if name.isdigit():
            return int(name)
        if name in self.users:
            return self.users[name].uid if kind == "user" else self.users[name].gid
        raise CheckFailed(f"unknown {kind} {name!r}")

    # RUN

    def run(
        self,
        command: str,
        paths: Paths,
        env: dict[str, str],
        workdir: str,
        user: str | None,
        root: Path,
    ) -> None:
        if command.startswith("["):
            raise CannotEmulate("RUN in exec form is not known here")
        words = shlex.split(command)
        if words and words[0] == "useradd":
            self.useradd(words, paths)
            return
        if "useradd" in words:
            raise CannotEmulate("useradd must be a RUN of its own to be recorded here")
        home = paths.path(self.home_of(user))
        home.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [*self.as_user(user), "/bin/sh", "-c", paths.text(command)],
            cwd=paths.path(workdir),
            env={**{k: paths.text(v) for k, v in env.items()}, "HOME": str(home)},
        )
        if result.returncode != 0:
            raise CheckFailed(f"RUN failed with exit status {result.returncode}: {command}")

    def useradd(self, words: list[str], paths: Paths, create: bool = True) -> None:
        """Record the user ``useradd`` would add (uid, a group of the same id, home folder);
        adding it to this machine would change the machine, not the image."""
        name, uid, create_home = words[-1], None, False
        for i, word in enumerate(words[1:-1], 1):
            if word in ("--uid", "-u"):
                uid = int(words[i + 1])
            elif word in ("--create-home", "-m"):
                create_home = True
        if uid is None:
            raise CannotEmulate("useradd without --uid: its id would depend on the machine")
        self.users[name] = User(uid=uid, gid=uid, home=f"/home/{name}")
        if create_home and create:
            home = paths.path(f"/home/{name}")
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, uid, uid)

    def home_of(self, user: str | None) -> str:
        if user is None or user.split(":")[0] in ("root", "0"):
            return "/root"
        name = user.split(":")[0]
        for known_name, known in self.users.items():
            if name in (known_name, str(known.uid)):
                return known.home
        return "/"

    def as_user(self, user: str | None) -> list[str]:
        """The prefix that runs a command as the image's USER: setpriv with its numeric ids."""
        if user is None or user.split(":")[0] in ("root", "0"):
            return []
        name, _, group = user.partition(":")
        uid = self.numeric(name, "user")
        gid = self.numeric(group, "group") if group else self.users_by_uid(uid).gid
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]

    def users_by_uid(self, uid: int) -> User:
        for known in self.users.values():
            if known.uid == uid:
                return known
        return User(uid=uid, gid=uid, home="/")


# --- Running -------------------------------------------------------------------------------------


class Container:
    """The built image, run as ``docker run -e …`` would: its environment plus the given one,
    its working folder, its user."""

    def __init__(self, image: Image, builder: Builder, env: dict[str, str]) -> None:
        self.image = image
        self.paths = Paths(image.root, builder.names)
        self.prefix = builder.as_user(image.user)
        home = self.paths.path(builder.home_of(image.user))
        self.env = {
            **{k: self.paths.text(v) for k, v in {**image.env, **env}.items()},
            "HOME": str(home),
        }
        self.cwd = self.paths.path(image.workdir)
        self.processes: list[subprocess.Popen[str]] = []

    def command(self, argv: list[str]) -> list[str]:
        return [*self.prefix, *[self.paths.text(word) for word in argv]]

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv),
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, argv: list[str], log_file: Path) -> subprocess.Popen[str]:
        output = log_file.open("w")
        process = subprocess.Popen(
            self.command(argv),
            cwd=self.cwd,
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_until(check, what: str, timeout: float, process=None, log_file=None) -> None:
    """Poll ``check`` until it is true; fail on the deadline or when ``process`` exits."""
    deadline = time.monotonic() + timeout
    while not check():
        if process is not None and process.poll() is not None:
            raise CheckFailed(
                f"{what}: the process exited ({process.returncode})\n{_tail(log_file)}"
            )
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not within {timeout:.0f} s\n{_tail(log_file)}")
        time.sleep(0.2)


def _tail(log_file: Path | None, lines: int = 40) -> str:
    if log_file is None or not log_file.exists():
        return ""
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_off(container: Container, argv: list[str], what: str) -> str:
    started = time.monotonic()
    result = container.run(argv)
    if result.returncode != 0:
        raise CheckFailed(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    log(f"run: {what}: passed in {time.monotonic() - started:.0f} s")
    return result.stdout + result.stderr


def check_image(image: Image, builder: Builder, args: argparse.Namespace, logs: Path) -> None:
    if image.user is None or image.user.split(":")[0] in ("root", "0"):
        raise CheckFailed("the image runs as root: USER must name another user")
    port = free_port()
    env = {
        **RUN_SETTINGS,
        "DATABASE_URL": args.database_url,
        "PORT": str(port),
        # Loopback only while checking: the image itself binds 0.0.0.0:$PORT.
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
    }
    if args.broker_url:
        env["CELERY_BROKER_URL"] = args.broker_url
    container = Container(image, builder, env)
    try:
        manifest = container.cwd / "staticfiles" / "staticfiles.json"
        if not manifest.exists():
            raise CheckFailed("collectstatic left no staticfiles/staticfiles.json in the image")
        probe = (
            "import os, sys; sys.exit(os.access('manage.py', os.W_OK) or not os.access("
            "os.environ['FLOWDESK_VAR_DIR'], os.W_OK))"
        )
        if container.run(["python", "-c", probe]).returncode != 0:
            raise CheckFailed("the user may write the code, or may not write FLOWDESK_VAR_DIR")
        log("run: the code is read-only to the user, FLOWDESK_VAR_DIR writable")
        one_off(
            container,
            ["python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            "manage.py check --deploy --fail-level WARNING",
        )
        if args.migrate:
            one_off(
                container,
                ["python", "manage.py", "migrate", "--noinput"],
                "manage.py migrate --noinput",
            )

        web_log = logs / "web.log"
        web = container.start(image.cmd, web_log)
        started = time.monotonic()
        wait_until(
            lambda: container.run(image.healthcheck, timeout=30).returncode == 0,
            "the web server's HEALTHCHECK",
            args.timeout,
            web,
            web_log,
        )
        log(f"run: CMD answers its HEALTHCHECK after {time.monotonic() - started:.0f} s")
        status = Path(f"/proc/{web.pid}/status").read_text()
        uid = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        if uid is None or uid.group(1) == "0":
            raise CheckFailed("the web server runs as root")
        log(f"run: the web server runs as uid {uid.group(1)}")
        static = next(iter(json.loads(manifest.read_text())["paths"].values()))
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/static/{static}",
            headers={"Host": RUN_SETTINGS["ALLOWED_HOSTS"], "X-Forwarded-Proto": "https"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200 or "immutable" not in response.headers.get(
                "Cache-Control", ""
            ):
                raise CheckFailed(f"/static/{static}: {response.status} {response.headers}")
        log(f"run: serves the collected /static/{static}, cached for good")

        if not args.skip_celery:
            worker_log, beat_log = logs / "worker.log", logs / "beat.log"
            worker = container.start(
                [
                    "python",
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=1",
                ],
                worker_log,
            )
            beat = container.start(
                ["python", "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"], beat_log
            )
            wait_until(
                lambda: " ready." in worker_log.read_text(),
                "the Celery worker",
                args.timeout,
                worker,
                worker_log,
            )
            log("run: the Celery worker is ready")
            schedule = Path(container.env["FLOWDESK_VAR_DIR"])
            wait_until(
                lambda: any(schedule.glob("celerybeat-schedule*")),
                "Celery beat's schedule file in FLOWDESK_VAR_DIR",
                args.timeout,
                beat,
                beat_log,
            )
            log("run: Celery beat is running and keeps its schedule in FLOWDESK_VAR_DIR")
    finally:
        container.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("IMAGE_CHECK_DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/flowdesk_deploy",
        help="PostgreSQL for the run (production mode refuses anything else)",
    )
    parser.add_argument("--broker-url", help="CELERY_BROKER_URL (default: the image's own)")
    parser.add_argument("--migrate", action="store_true", help="run migrate before the server")
    parser.add_argument("--skip-celery", action="store_true", help="do not start worker and beat")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every stage")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for each start")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "image-check" / "cache")
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        log("image-check: needs root, as a build does (RUN as root, then USER)")
        return 3
    if not shutil.which("setpriv"):
        log("image-check: needs setpriv (util-linux) to run as the image's user")
        return 3
    args.cache.mkdir(parents=True, exist_ok=True)
    for folder in (args.cache, *args.cache.parents):
        if folder in (ROOT, ROOT.parent):
            break
        folder.chmod(folder.stat().st_mode | 0o055)
    closed = [f for f in args.cache.parents if not f.stat().st_mode & 0o001]
    if closed:
        log(f"image-check: the image's user cannot enter {closed[0]}: give --cache elsewhere")
        return 3
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=args.cache.parent))
    _open_to_all(scratch)
    logs = scratch / "logs"
    logs.mkdir()
    try:
        builder = Builder(args.dockerfile, args.cache, scratch, use_cache=not args.no_cache)
        image = builder.build()
        log(f"built: user {image.user}, CMD {shlex.join(image.cmd)[:80]}…")
        check_image(image, builder, args, logs)
    except CannotEmulate as exc:
        log(f"image-check: cannot stand in for a container engine here: {exc}")
        return 3
    except (CheckFailed, subprocess.TimeoutExpired, urllib.error.URLError) as exc:
        log(f"image-check: FAILED: {exc}")
        return 1
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    log("image-check: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
