"""The server-wide training queue: trainings run in worker processes, a few at a time per device.

A page submits a job (one TrainRequest, or several started together such as the plain and residual
twins) with an estimate of its duration. The queue starts it when its device has a free slot, as
`python -m resnet_core.train ...` processes (worker_command), each writing its own run folder; pages
follow those folders (train.follow.RunFollower), so a run survives its browser tab and a crash in a run
never touches the server. Further jobs wait with their position and an estimate of the wait; a waiting
job can be cancelled, a running one is asked to stop through its run folder (train.runs.request_stop).

Slots per device: $RESNET_EXPLORER_TRAININGS (default: one per device; a CPU trains best alone, and a
GPU box sets more). A housekeeping thread starts and reaps jobs twice a second.

A class on one server (serving): every job has an owner, and only the owner or the lecturer cancels it; in
served mode each visitor gets a share (ClassLimits: trainings running and waiting, the longest accepted), a
visitor who left loses their place in line after a grace period, and the runs folder's disk budget is checked
before a job is accepted. The waiting and running jobs are kept on disk (queue_store): a restarted server
resumes the line in order and re-attaches workers still training, which count against the slots.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from enum import Enum
from pathlib import Path

from ..model.config import estimate_params
from ..serving import (
    TERMINAL,
    Actor,
    ClassLimits,
    NotOwnerError,
    Refusal,
    RefusedError,
    class_demo_run,
    load_limits,
    make_room,
    run_bytes_estimate,
)
from ..serving.memory import release_freed_memory
from ..status import Status
from ..train.follow import RunFollower
from ..train.launch import TrainRequest, worker_command
from ..train.run_reading import read_run
from ..train.runs import CONFIG_FILE, STOP_FILE, request_stop
from .queue_store import AdoptedWorker, load_jobs, save_jobs

TRAININGS_ENV = "RESNET_EXPLORER_TRAININGS"
SPOOL_DIR = ".queue"  # inside the runs folder: model configs and worker logs (hidden from the run history)
STOP_GRACE_S = 30.0  # a worker asked to stop that is still alive after this is terminated
CALIBRATION_JOBS = 5  # the last finished jobs per device whose measured/estimated durations correct estimates
CALIBRATION_BOUNDS = (0.25, 4.0)
TRIM_EVERY_S = 15.0  # how often the server hands freed memory back (serving.memory)
PROJECTION_STEPS = 20  # steps a running run needs before its step times project its duration
_tokens = itertools.count(1)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding resnet_core


class JobEnd(str, Enum):
    """Why a job ended without training: what the visitor (or the server) did, for the page to say in words."""

    CANCELLED = "cancelled"  # its owner (or the lecturer) took it out of the line
    LEFT = "left"  # its owner closed every tab and did not come back within the grace period
    NOT_RESTORED = "not restored"  # the server restarted and could not read it back
    STARTED_BEFORE_RESTART = "adopted"  # running when the server restarted: followed by pid


def default_slots() -> int:
    try:
        return max(1, int(os.environ.get(TRAININGS_ENV, "1")))
    except ValueError:
        return 1


@dataclass
class QueuedJob:
    """One submitted job: its requests, and how far it got."""

    id: str
    label: str
    device: str
    requests: tuple[TrainRequest, ...]
    estimate_s: float
    submitted: float = field(default_factory=time.time)
    status: Status = Status.QUEUED
    started: float | None = None
    ended: float | None = None
    error: str = ""
    owner: str = TERMINAL
    end: JobEnd | None = None
    procs: list[subprocess.Popen] = field(default_factory=list, repr=False)
    followers: list[RunFollower] = field(default_factory=list, repr=False)  # for the queue's wait estimates
    stop_asked: float | None = None

    def run_dirs(self, runs_dir: Path) -> list[Path]:
        return [runs_dir / r.name for r in self.requests]


@dataclass(frozen=True)
class JobView:
    """What a page shows of a job: its status, place in line and wait (queued), or its run folders."""

    id: str
    label: str
    status: Status
    position: int | None  # 1 = next to start; None unless queued
    wait_s: float | None  # estimated seconds until it starts; None unless queued
    run_dirs: tuple[Path, ...]
    error: str
    owner: str = TERMINAL
    end: JobEnd | None = None

    @property
    def queued(self) -> bool:
        return self.status is Status.QUEUED

    @property
    def active(self) -> bool:
        return self.status in (Status.QUEUED, Status.RUNNING)


class TrainingQueue:
    """One per server. Thread-safe: every browser session's script thread calls it."""

    def __init__(self, runs_dir: str | Path, slots: int | None = None, poll_s: float = 0.5):
        self.runs_dir = Path(runs_dir).resolve()  # workers run in PACKAGE_ROOT
        self.spool = self.runs_dir / SPOOL_DIR
        self.slots = slots or default_slots()
        self._jobs: dict[str, QueuedJob] = {}
        self._lock = threading.RLock()
        self._poll_s = poll_s
        self._closed = False
        self._ratios: dict[str, deque[float]] = {}  # per device: measured / estimated duration of finished jobs
        self._seen: dict[str, float] = {}  # owner -> when one of their pages last looked at the queue
        self.restore_problems: list[str] = []
        self._restore()
        self._thread = threading.Thread(target=self._housekeeping, name="resnet-training-queue", daemon=True)
        self._thread.start()

    # ---- what pages call -----------------------------------------------------------------

    def unique_name(self, base: str) -> str:
        """A run folder name not used on disk nor by a waiting job."""
        with self._lock:
            taken = {r.name for job in self._jobs.values() for r in job.requests}
            for i in itertools.count(1):
                name = base if i == 1 else f"{base}-{i}"
                if name not in taken and not (self.runs_dir / name).exists():
                    return name
        raise AssertionError("unreachable")

    def submit(self, label: str, requests: Sequence[TrainRequest], estimate_s: float, device: str = "cpu",
               actor: Actor | None = None, limits: ClassLimits | None = None) -> JobView:
        """Queue a job; its requests start together (one slot) when `device` has a free slot.

        `actor` owns it (default: the terminal); with `limits`, the class's limits are checked first (in served
        mode, for a visitor: their trainings running and waiting, the estimate against the cap; in every mode the
        runs folder's disk budget). A refusal raises RefusedError, whose kind names the limit."""
        if not requests:
            raise ValueError("a job needs at least one training request")
        actor = actor or Actor(TERMINAL, lecturer=True)
        with self._lock:
            estimate = max(float(estimate_s), 1.0)
            if limits is not None:
                self._check_share(actor, limits, estimate, device)
                self._check_disk(requests, limits)
            job = QueuedJob(f"job{next(_tokens)}-{os.getpid()}", label, device,
                            tuple(dc_replace(r, owner=actor.owner) for r in requests), estimate, owner=actor.owner)
            self._jobs[job.id] = job
            self._seen[actor.owner] = time.time()
            self._pump()
            self._save()
            return self._view(job)

    def refusal(self, actor: Actor, limits: ClassLimits, estimate_s: float, device: str) -> RefusedError | None:
        """What submit would refuse for this visitor now (before the click: the page disables Start and says why)."""
        with self._lock:
            try:
                self._check_share(actor, limits, max(float(estimate_s), 1.0), device)
            except RefusedError as exc:
                return exc
            return None

    def wait_for_new(self, device: str) -> float:
        """Seconds a job submitted now on `device` would wait before it starts (0 with a free slot)."""
        with self._lock:
            return self._waits(device, extra=True).get("", 0.0)

    def touch(self, owner: str) -> None:
        """A page of `owner` is open: their waiting jobs keep their place (see ClassLimits.leave_grace_s)."""
        with self._lock:
            self._seen[owner] = time.time()

    def drop_absent(self, limits: ClassLimits, now: float | None = None) -> list[str]:
        """Waiting jobs of visitors whose pages have all been closed for longer than the grace period leave the
        line (served mode only); their ids are returned."""
        if not limits.served:
            return []
        now = time.time() if now is None else now
        dropped = []
        with self._lock:
            for job in self._jobs.values():
                if job.status is Status.QUEUED and job.owner != TERMINAL and \
                        now - self._seen.get(job.owner, job.submitted) > limits.leave_grace_s:
                    job.status, job.ended, job.end = Status.STOPPED, now, JobEnd.LEFT
                    job.error = "its visitor left: a waiting job leaves the line when every tab of its visitor " \
                                f"has been closed for {limits.leave_grace_s:.0f} s"
                    dropped.append(job.id)
            if dropped:
                self._save()
        return dropped

    def _check_share(self, actor: Actor, limits: ClassLimits, estimate: float, device: str) -> None:
        if not limits.served or actor.lecturer:
            return
        mine = [j for j in self._jobs.values() if j.owner == actor.owner]
        running = sum(j.status is Status.RUNNING for j in mine)
        waiting = sum(j.status is Status.QUEUED for j in mine)
        if running >= limits.max_running and waiting >= limits.max_queued:
            raise RefusedError(Refusal.QUEUED_LIMIT,
                               f"you already have {running} training(s) running and {waiting} waiting, this class's "
                               f"share per visitor ({limits.max_running} running, {limits.max_queued} waiting): "
                               "stop one, or wait for one to end")
        if running + waiting >= limits.max_running + limits.max_queued:
            raise RefusedError(Refusal.RUNNING_LIMIT,
                               f"you already have {running + waiting} training(s) running or waiting, this class's "
                               f"share per visitor: stop one, or wait for one to end")
        took = estimate * self.calibration(device)
        if took > limits.training_cap_s:
            raise RefusedError(Refusal.TOO_LONG,
                               f"this training would take about {_minutes(took)} here, over this class's cap of "
                               f"{_minutes(limits.training_cap_s)} per training: use fewer epochs or images, "
                               "or a smaller model")

    def _check_disk(self, requests: Sequence[TrainRequest], limits: ClassLimits) -> None:
        need = sum(_request_bytes(r) for r in requests)
        need += sum(_request_bytes(r) for j in self._jobs.values() if j.status is Status.QUEUED for r in j.requests)
        demo = class_demo_run(self.runs_dir)
        make_room(self.runs_dir, need, limits.runs_budget_bytes, prune=limits.served,
                  protected=() if demo is None else (demo.name,))

    def view(self, job_id: str) -> JobView | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else self._view(job)

    def cancel(self, job_id: str, actor: Actor | None = None) -> None:
        """A waiting job leaves the line; a running one is asked to stop (it saves what it trained). Only its
        owner or the lecturer may (`actor`; None: the server itself)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status.ended:
                return
            if actor is not None and not actor.may_control(job.owner):
                raise NotOwnerError(f"the training {job.label!r}")
            if job.status is Status.QUEUED:
                job.status, job.ended, job.end = Status.STOPPED, time.time(), JobEnd.CANCELLED
                job.error = "you left the line before it started"
                self._save()
                return
            if job.stop_asked is None:
                job.stop_asked = time.time()
                for path in job.run_dirs(self.runs_dir):
                    if path.is_dir():
                        request_stop(path)

    def calibration(self, device: str) -> float:
        """How long trainings on `device` take here against their estimates: the median of measured/estimated
        over the last few finished jobs, a running job's projection (from its step times) until one has finished,
        1.0 before that.

        Every estimate scales one speed probe the server took when it started, perhaps while a class was opening
        the app at once (measured: a probe under six page loads read 2.6x slow); finished runs correct it, so the
        waits in line and the estimates pages show hold under the load the server really has."""
        with self._lock:
            ratios = list(self._ratios.get(device, ()))
            if not ratios:
                now = time.time()
                projected = [(self._projected_s(job, now), job.estimate_s) for job in self._running(device)]
                ratios = [total / estimate for total, estimate in projected if total is not None]
            if not ratios:
                return 1.0
            low, high = CALIBRATION_BOUNDS
            return min(max(statistics.median(ratios), low), high)

    def jobs(self) -> list[JobView]:
        """Every job this server ran or holds, in submission order."""
        with self._lock:
            return [self._view(j) for j in self._jobs.values()]

    def close(self, stop_running: bool = True) -> None:
        """Stop the housekeeping (and ask running jobs to stop): for tests and benchmarks."""
        with self._lock:
            self._closed = True
            if stop_running:
                for job in self._jobs.values():
                    if job.status is Status.RUNNING:
                        self.cancel(job.id)
        self._thread.join(2)

    # ---- inside ----------------------------------------------------------------------------

    def _view(self, job: QueuedJob) -> JobView:
        position = wait = None
        if job.status is Status.QUEUED:
            waits = self._waits(job.device)
            line = [j for j in self._jobs.values() if j.status is Status.QUEUED and j.device == job.device]
            position = line.index(job) + 1
            wait = waits.get(job.id)
        return JobView(job.id, job.label, job.status, position, wait, tuple(job.run_dirs(self.runs_dir)), job.error,
                       job.owner, job.end)

    def _running(self, device: str) -> list[QueuedJob]:
        return [j for j in self._jobs.values() if j.status is Status.RUNNING and j.device == device]

    def _waits(self, device: str, extra: bool = False) -> dict[str, float]:
        """Seconds until each waiting job on `device` starts: slots free up as running jobs end (their
        remaining time from their progress so far), and each job ahead takes a slot for its estimate. With
        `extra`, also a job submitted now (under the key "")."""
        now = time.time()
        scale = self.calibration(device)
        free_at = [now + self._remaining(j, now, scale) for j in self._running(device)]
        free_at += [now] * max(0, self.slots - len(free_at))
        waits = {}
        for job in (j for j in self._jobs.values() if j.status is Status.QUEUED and j.device == device):
            free_at.sort()
            start = free_at.pop(0)
            waits[job.id] = start - now
            free_at.append(start + job.estimate_s * scale)
        if extra:
            waits[""] = min(free_at) - now
        return waits

    def _projected_s(self, job: QueuedJob, now: float) -> float | None:
        """A running job's whole duration as its runs' own step times project it: elapsed plus the slowest run's
        time left. None until every run has PROJECTION_STEPS steps (the first ones pay for start-up)."""
        if not job.followers:
            job.followers = [RunFollower(p) for p in job.run_dirs(self.runs_dir)]
        snaps = [f.poll() for f in job.followers]
        if job.started is None or any(s.step < PROJECTION_STEPS or s.eta_s is None for s in snaps):
            return None
        return (now - job.started) + max(s.eta_s for s in snaps)

    def _remaining(self, job: QueuedJob, now: float, scale: float) -> float:
        elapsed = now - (job.started or now)
        projected = self._projected_s(job, now)  # measured progress beats the estimate once there is some
        return max((projected if projected is not None else job.estimate_s * scale) - elapsed, 0.0)

    def _housekeeping(self) -> None:
        last_drop = last_trim = time.time()
        while not self._closed:
            with self._lock:
                self._pump()
            if time.time() - last_drop > 5.0:
                last_drop = time.time()
                self.drop_absent(load_limits(self.runs_dir))
            if time.time() - last_trim > TRIM_EVERY_S:  # what closed sessions freed goes back to the system
                last_trim = time.time()
                release_freed_memory(at_most_every_s=TRIM_EVERY_S)
            time.sleep(self._poll_s)

    def _save(self) -> None:
        """The waiting and running jobs, on disk (queue_store); a full disk never stops the queue."""
        kept = [{"id": j.id, "label": j.label, "device": j.device, "owner": j.owner, "estimate_s": j.estimate_s,
                 "submitted": j.submitted, "requests": [r.to_dict() for r in j.requests], "started": j.started,
                 "pids": [p.pid for p in j.procs]}
                for j in self._jobs.values() if j.status in (Status.QUEUED, Status.RUNNING)]
        try:
            save_jobs(self.spool, kept)
        except OSError:
            pass

    def _restore(self) -> None:
        """The jobs a previous server left: waiting ones keep their order, running ones are followed by pid."""
        stored, self.restore_problems = load_jobs(self.spool)
        for old in stored:
            job = QueuedJob(old.id, old.label, old.device, old.requests, old.estimate_s, submitted=old.submitted,
                            owner=old.owner)
            if old.started is not None:
                job.status, job.started, job.end = Status.RUNNING, old.started, JobEnd.STARTED_BEFORE_RESTART
                job.procs = [AdoptedWorker(pid) for pid in old.pids]  # type: ignore[misc]
            self._jobs[job.id] = job

    def _pump(self) -> None:
        """Reap ended workers, enforce stop requests, start waiting jobs while slots are free."""
        now = time.time()
        changed = False
        for job in self._jobs.values():
            if job.status is Status.RUNNING:
                self._reap(job, now)
                changed = changed or job.status.ended
        for device in {j.device for j in self._jobs.values() if j.status is Status.QUEUED}:
            while len(self._running(device)) < self.slots and not self._closed:
                waiting = [j for j in self._jobs.values() if j.status is Status.QUEUED and j.device == device]
                if not waiting:
                    break
                self._launch(waiting[0])
                changed = True
        if changed:
            self._save()

    def _launch(self, job: QueuedJob) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        job.status, job.started = Status.RUNNING, time.time()
        env = dict(os.environ)
        # Processes started together share the cores instead of each taking all of them.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // len(job.requests)))
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        # The worker imports this very resnet_core, whatever the server's working directory.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
        # A lower priority keeps the web server responsive while workers use every core.
        nice = ["nice", "-n", "5"] if shutil.which("nice") else []
        try:
            for request in job.requests:
                log = open(self.spool / f"{request.name}.log", "wb")  # noqa: SIM115 - the child holds it
                try:
                    job.procs.append(subprocess.Popen(nice + worker_command(request, self.runs_dir, self.spool),
                                                      stdout=log, stderr=subprocess.STDOUT, env=env,
                                                      cwd=PACKAGE_ROOT, start_new_session=True))
                finally:
                    log.close()
        except OSError as exc:
            job.status, job.ended, job.error = Status.FAILED, time.time(), f"could not start the worker: {exc}"
            for proc in job.procs:
                proc.terminate()

    def _reap(self, job: QueuedJob, now: float) -> None:
        if job.stop_asked is not None and now - job.stop_asked > STOP_GRACE_S:
            for proc in job.procs:
                if proc.poll() is None:
                    proc.terminate()
        if any(proc.poll() is None for proc in job.procs):
            if job.stop_asked is not None:  # a worker may have created its folder after Stop was pressed
                for path in job.run_dirs(self.runs_dir):
                    if (path / CONFIG_FILE).is_file() and not (path / STOP_FILE).exists():
                        request_stop(path)
                        job.stop_asked = now  # its grace starts when it can first see the request
            return
        job.ended = now
        statuses, errors = [], []
        for request, proc in zip(job.requests, job.procs):
            path = self.runs_dir / request.name
            if (path / CONFIG_FILE).is_file():
                info = read_run(path)
                statuses.append(info.status)
                if info.status.bad:
                    errors.append(f"{request.name}: {info.reason}")
            else:  # the worker gave up before its run folder existed: bad flags, unreadable data, ...
                statuses.append(Status.FAILED)
                errors.append(self._log_tail(request.name) or f"the worker exited with code {proc.returncode}")
        bad = [s for s in statuses if s.bad]
        job.status = bad[0] if bad else (Status.STOPPED if Status.STOPPED in statuses else Status.FINISHED)
        job.error = "; ".join(errors)
        if job.status in (Status.FINISHED, Status.DID_NOT_LEARN) and job.started is not None:  # ran to their end
            ratios = self._ratios.setdefault(job.device, deque(maxlen=CALIBRATION_JOBS))
            ratios.append((now - job.started) / job.estimate_s)

    def _log_tail(self, name: str) -> str:
        """The worker's last words (argparse's "error: ..." line, a traceback's last line)."""
        try:
            lines = (self.spool / f"{name}.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if "error" in line.lower()]
        return (errors[-1] if errors else lines[-1] if lines else "").strip()[:500]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _request_bytes(request: TrainRequest) -> int:
    """The run folder a request will write, from what it declares (parameters counted without building)."""
    steps = request.train.max_steps or request.train.epochs * -(-request.data.n_train // request.train.batch_size)
    return run_bytes_estimate(estimate_params(request.model), steps)
