"""Reliability round two, the commands (issue 16): an output that is the input is refused; every
output path is checked before any work (a fault matrix: empty, a folder, a file where a folder
goes, read-only, full disk); argument ranges; bounded --duration; file modes follow the umask;
analysis files go through one schema (the panel included); onnxruntime writes no telemetry;
nothing is written outside the outputs and the cache (a filesystem audit); and hypothesis
drives every subcommand with hostile arguments: no traceback ever reaches the user.

Most tests run the CLI in-process (`cli.main`) with the expensive work replaced by a sentinel
that raises `WorkStarted`: a test that expects a refusal then also proves it came first."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emsync_bridge import atomic, cli, paths
from emsync_bridge.video.emotion import EMOTIONS


class WorkStarted(Exception):
    """Raised by the stand-ins for the expensive work (model load, analysis, daemon, panel)."""


@pytest.fixture
def no_work(monkeypatch):
    """Every entry point to expensive work raises WorkStarted (records which one)."""
    import emsync_bridge.bench.live as live_bench
    import emsync_bridge.bridge.daemon as daemon
    import emsync_bridge.bridge.doctor as doctor
    import emsync_bridge.bridge.sinks as sinks
    import emsync_bridge.models as models
    import emsync_bridge.music.train as train
    import emsync_bridge.runtime as runtime
    import emsync_bridge.bench.decode as bench
    import emsync_bridge.runtime.onnx_cache as onnx_cache
    import emsync_bridge.score as score
    import emsync_bridge.video.analysis as analysis

    hits = []

    def stub(name):
        def f(*a, **k):
            hits.append(name)
            raise WorkStarted(name)
        return f

    for mod, name in [(runtime, "load_engine"), (analysis, "analyze_video"), (score, "make_demo_video"),
                      (live_bench, "run_all"), (bench, "bench_decode"), (bench, "bench_analyze"),
                      (doctor, "run_checks"), (sinks, "probe_backends"), (models, "import_checkpoint"),
                      (models, "resolve"), (train, "train"), (train, "ship"), (onnx_cache, "ensure_exported")]:
        monkeypatch.setattr(mod, name, stub(name))

    class NoBridge:
        def __init__(self, cfg, *a, **k):
            hits.append(cfg)
            raise WorkStarted("serve")

    monkeypatch.setattr(daemon, "Bridge", NoBridge)
    try:
        import emsync_bridge.ui.app as app
        monkeypatch.setattr(app, "run", stub("panel"))
    except ImportError:
        pass
    return hits


def run(argv, capsys) -> tuple[int | str, str]:
    """cli.main in-process: (exit code or "work", stderr)."""
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    except WorkStarted:
        rc = "work"
    return rc, capsys.readouterr().err


def one_line_error(rc, err, needle=""):
    assert rc in (1, 2), (rc, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle.lower() in err.lower(), err


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from emsync_bridge.video.synth import Segment, make_video

    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    return make_video(path, [Segment("color=c=0x203040", 1.0), Segment("testsrc2", 1.0)], size=(160, 90),
                      fps=10.0, audio=None)


# ---------------------------------------------------------------- 1. input == output


@pytest.mark.parametrize("render", [True, False])
def test_score_refuses_an_output_folder_holding_its_input(video, tmp_path, capsys, no_work, render):
    d = tmp_path / "d"
    d.mkdir()
    film = d / "preview.mp4"  # the case: `score d/preview.mp4 -o d` deleted or replaced it
    shutil.copy(video, film)
    before = film.read_bytes()
    rc, err = run(["score", film, "-o", d, "--quiet"] + ([] if render else ["--no-render"]), capsys)
    one_line_error(rc, err, "input")
    assert film.read_bytes() == before and no_work == []


def test_analyze_refuses_to_write_over_its_video(video, tmp_path, capsys, no_work):
    film = tmp_path / "clip.mp4"
    shutil.copy(video, film)
    before = film.read_bytes()
    rc, err = run(["analyze", film, "--json", film], capsys)
    one_line_error(rc, err, "input")
    rc, err = run(["analyze", film, "--json", str(tmp_path / "." / "clip.mp4")], capsys)
    one_line_error(rc, err, "input")
    assert film.read_bytes() == before and no_work == []


# ---------------------------------------------------------------- 4. output fault matrix

FILE_OUTPUTS = {  # command line with OUT for the output file
    "generate -o": ["generate", "--duration", "1", "-o", "OUT"],
    "analyze --json": ["analyze", "VIDEO", "--json", "OUT"],
    "analyze --png": ["analyze", "VIDEO", "--png", "OUT"],
    "bench-live --json": ["bench-live", "--quick", "--json", "OUT"],
}
DIR_OUTPUTS = {
    "score -o": ["score", "VIDEO", "-o", "OUT", "--quiet"],
    "demo -o": ["demo", "-o", "OUT", "--quiet"],
    "serve --spool": ["serve", "--spool", "OUT", "--osc-port", "0"],
    "export --out": ["export", "--out", "OUT"],
}


def _readonly(monkeypatch):
    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(paths.tempfile, "mkstemp", refuse)


FAULTS = {  # name -> (make the fault, given the output path; the error's needle)
    "empty": (lambda p, mp: "", "empty"),
    "is a folder": (lambda p, mp: (p.mkdir(), p)[1], "folder"),
    "parent is a file": (lambda p, mp: (p.parent.joinpath("afile").write_text("x"), p.parent / "afile" / p.name)[1],
                         "not a folder"),
    "read-only (simulated: root ignores modes)": (lambda p, mp: (_readonly(mp), p)[1], "read-only"),
}
DIR_FAULTS = {
    "empty": FAULTS["empty"],
    "is a file": (lambda p, mp: (p.write_text("x"), p)[1], "file"),
    "parent is a file": FAULTS["parent is a file"],
    "read-only (simulated: root ignores modes)": FAULTS["read-only (simulated: root ignores modes)"],
}


def _argv(template, out, video):
    return [str(out) if a == "OUT" else str(video) if a == "VIDEO" else a for a in template]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("output", list(FILE_OUTPUTS))
def test_file_output_faults_are_one_line_before_any_work(output, fault, video, tmp_path, capsys, monkeypatch, no_work):
    name = "out.png" if "png" in output else "out.json" if "json" in output else "out.mid"
    out = FAULTS[fault][0](tmp_path / name, monkeypatch)
    rc, err = run(_argv(FILE_OUTPUTS[output], out, video), capsys)
    one_line_error(rc, err, FAULTS[fault][1])
    assert no_work == [], f"work started before the output was checked: {no_work}"


@pytest.mark.parametrize("fault", list(DIR_FAULTS))
@pytest.mark.parametrize("output", list(DIR_OUTPUTS))
def test_folder_output_faults_are_one_line_before_any_work(output, fault, video, tmp_path, capsys, monkeypatch,
                                                           no_work):
    out = DIR_FAULTS[fault][0](tmp_path / "outdir", monkeypatch)
    rc, err = run(_argv(DIR_OUTPUTS[output], out, video), capsys)
    one_line_error(rc, err, DIR_FAULTS[fault][1])
    assert no_work == [], f"work started before the output was checked: {no_work}"


@pytest.mark.parametrize("output", list(FILE_OUTPUTS) + list(DIR_OUTPUTS))
def test_a_missing_parent_folder_is_created_and_the_work_starts(output, video, tmp_path, capsys, no_work):
    template = {**FILE_OUTPUTS, **DIR_OUTPUTS}[output]
    name = "out.png" if "png" in output else "out.json" if "json" in output else "out.mid"
    out = tmp_path / "new" / "deeper" / (name if output in FILE_OUTPUTS else "outdir")
    rc, err = run(_argv(template, out, video), capsys)
    assert rc == "work", err
    assert out.parent.is_dir()
    assert not list(out.parent.glob(".emsync-probe-*")), "the write probe was left behind"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder(tmp_path, capsys, no_work):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = run(["generate", "-o", ro / "x.mid"], capsys)
    finally:
        ro.chmod(0o755)
    one_line_error(rc, err, "read-only")


def _enospc(monkeypatch):
    real = os.fsync

    def full(fd):
        real(fd)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", full)


def test_a_full_disk_while_writing_is_one_line_and_leaves_no_temp_file(tmp_path, capsys, monkeypatch):
    """ENOSPC simulated at the fsync of the atomic write (where a full disk shows up for
    buffered writes); the real model runs first, so this is the "after the work" case."""
    out = tmp_path / "o"
    out.mkdir()
    _enospc(monkeypatch)
    rc, err = run(["generate", "--duration", "1", "-o", out / "x.mid"], capsys)
    one_line_error(rc, err, "no space left on device")
    assert rc == 1
    assert list(out.iterdir()) == [], "a temp or partial file was left"


def test_a_full_disk_during_analyze_json_is_one_line(tmp_path, capsys, monkeypatch):
    import emsync_bridge.video.analysis as analysis

    monkeypatch.setattr(analysis, "analyze_video", lambda *a, **k: _analysis())
    _enospc(monkeypatch)
    film = tmp_path / "f.mp4"
    film.write_bytes(b"not opened: analysis is stubbed")
    rc, err = run(["analyze", film, "--json", tmp_path / "a.json", "-q"], capsys)
    one_line_error(rc, err, "no space")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.mp4"]


# ---------------------------------------------------------------- 4/5/8. argument ranges


@pytest.mark.parametrize("argv,needle", [
    (["generate", "--seed", "-1"], "seed"),
    (["generate", "--seed", "99999999999"], "seed"),
    (["generate", "--duration", "1e9"], "3600"),
    (["generate", "--duration", "nan"], "duration"),
    (["generate", "--valence", "nan"], "valence"),
    (["generate", "-o", "x.json"], ".json"),
    (["serve", "--osc-port", "70000"], "0..65535"),
    (["serve", "--osc-port", "-1"], "0..65535"),
    (["serve", "--reaper-port", "70000"], "0..65535"),
    (["serve", "--spool", ""], "empty"),
    (["serve", "--min-scene", "nan"], "min-scene"),
    (["serve", "--lead", "-5"], "lead"),
    (["serve", "--duration", "1e9"], "3600"),
    (["panel", "--osc-port", "70000"], "0..65535"),
    (["doctor", "--osc-port", "70000"], "0..65535"),
    (["score", "VIDEO", "-o", ""], "empty"),
    (["score", "VIDEO", "-o", "OUT", "--seed", "-1"], "seed"),
    (["score", "VIDEO", "-o", "OUT", "--min-scene", "-1"], "min-scene"),
    (["demo", "-o", ""], "empty"),
    (["analyze", "VIDEO", "--min-scene", "nan"], "min-scene"),
    (["analyze", "VIDEO", "--png", "DIR"], ".png"),
    (["analyze", "VIDEO", "--png", "x.xyz"], ".png"),
    (["analyze", "VIDEO", "--json", "DIR"], "folder"),
    (["analyze", "VIDEO", "--json", ""], "empty"),
])
def test_bad_arguments_are_one_line_before_any_work(argv, needle, video, tmp_path, capsys, no_work):
    (tmp_path / "DIR").mkdir()
    argv = [str(video) if a == "VIDEO" else str(tmp_path / "DIR") if a == "DIR" else str(tmp_path / "o")
            if a == "OUT" else a for a in argv]
    rc, err = run(argv, capsys)
    one_line_error(rc, err, needle)
    assert no_work == []


def test_a_relative_spool_is_made_absolute(tmp_path, capsys, no_work, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _ = run(["serve", "--spool", "rel/spool", "--osc-port", "0"], capsys)
    assert rc == "work"
    cfg = no_work[0]
    assert cfg.spool.is_absolute() and cfg.spool == (tmp_path / "rel" / "spool").resolve()


# ---------------------------------------------------------------- 8. file modes


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        p = atomic.write_atomic(tmp_path / "f.json", b"{}")
        plain = tmp_path / "plain"
        plain.write_text("x")  # what any other file the user makes gets
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask == plain.stat().st_mode & 0o777


# ---------------------------------------------------------------- 6. analysis schema, panel


def _analysis():
    from emsync_bridge.video.schema import SceneEmotion, VideoAnalysis

    probs = {e: 1 / len(EMOTIONS) for e in EMOTIONS}
    return VideoAnalysis("/nonexistent/film.mp4", 8.0, 25.0, 320, 180, False, cuts=[4.0], boundaries=[4.0],
                         scenes=[SceneEmotion(0.0, 4.0, -0.5, 0.2, probs, 0.5),
                                 SceneEmotion(4.0, 8.0, 0.5, -0.2, probs, 0.5)], valence=0.0, arousal=0.0)


def _bad_analysis_files(tmp_path) -> dict[str, Path]:
    good = _analysis().to_dict()
    many = dict(good, duration=100_000.0,
                scenes=[dict(good["scenes"][0], start=float(i), end=float(i + 1)) for i in range(100_000)])
    cases = {
        "emotions is a list": dict(good, scenes=[dict(good["scenes"][0], emotions=[0.1] * 6)]),
        "emotions is a string": dict(good, scenes=[dict(good["scenes"][0], emotions="joy")]),
        "duration -5": dict(good, duration=-5),
        "duration 1e300": dict(good, duration=1e300),
        "valence 7": dict(good, scenes=[dict(good["scenes"][0], valence=7.0)]),
        "scene outside the film": dict(good, scenes=[dict(good["scenes"][0], end=9.0)]),
        "no scenes": dict(good, scenes=[]),
        "100 000 scenes": many,
        "a list": [good],
    }
    files = {k: tmp_path / f"{i}.json" for i, k in enumerate(cases)}
    for k, v in cases.items():
        files[k].write_text(json.dumps(v))
    files["duration NaN"] = tmp_path / "nan.json"
    files["duration NaN"].write_text(json.dumps(good).replace('"duration": 8.0', '"duration": NaN'))
    files["50 000 deep"] = tmp_path / "deep.json"
    files["50 000 deep"].write_text('{"video": "x", "scenes": ' + "[" * 50_000 + "]" * 50_000 + "}")
    files["10 MB"] = tmp_path / "big.json"
    files["10 MB"].write_text(json.dumps(good)[:-1] + ', "pad": "' + "x" * 10_000_000 + '"}')
    files["not UTF-8"] = tmp_path / "bin.json"
    files["not UTF-8"].write_bytes(b'{"video": "\xff\xfe"}')
    return files


def test_the_analysis_schema_rejects_bad_files_in_one_line(tmp_path):
    from emsync_bridge.errors import EmsyncError
    from emsync_bridge.video.schema import VideoAnalysis

    good = tmp_path / "good.json"
    good.write_text(_analysis().to_json())
    assert VideoAnalysis.from_file(good).to_dict() == _analysis().to_dict()
    for name, path in _bad_analysis_files(tmp_path).items():
        with pytest.raises(EmsyncError) as exc:
            VideoAnalysis.from_file(path)
        assert "\n" not in str(exc.value) and len(str(exc.value)) < 300, (name, str(exc.value)[:300])


def test_the_panel_rejects_bad_analysis_files_with_a_message(tmp_path, qtbot):
    pytest.importorskip("PyQt6")
    from emsync_bridge.ui.window import MainWindow

    win = MainWindow(daemon_port=9, poll=False, out_dir=str(tmp_path / "out"))
    qtbot.addWidget(win)
    try:
        for name, path in _bad_analysis_files(tmp_path).items():
            win.load(str(path))
            assert win.analysis is None, f"{name}: loaded"
            assert win.message.text().startswith("⚠") and path.name in win.message.text(), name
        good = tmp_path / "good.json"
        good.write_text(_analysis().to_json())
        win.load(str(good))
        assert win.analysis is not None and len(win.analysis.scenes) == 2
    finally:
        win.shutdown()


# ---------------------------------------------------------------- 7. telemetry + filesystem audit


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_filesystem_audit_nothing_outside_outputs_and_cache_and_no_onnxruntime_telemetry(tmp_path):
    """`generate`, `analyze` and `serve` in subprocesses with HOME and the XDG folders in a temp
    tree and onnxruntime's own switch unset: afterwards the tree holds the requested outputs, the
    spool, the caches (ours: the user cache dir and EMSYNC_CACHE_DIR; matplotlib's fonts, where
    MPLCONFIGDIR says) and nothing else: no ~/.cache/Microsoft/DeveloperTools/.onnxruntime
    telemetry store."""
    from emsync_bridge.video.synth import Segment, make_video

    home, cwd, cache = tmp_path / "home", tmp_path / "cwd", tmp_path / "cache"
    for d in (home, cwd, tmp_path / "in"):
        d.mkdir()
    film = make_video(tmp_path / "in" / "film.mp4", [Segment("testsrc2", 1.0)], size=(160, 90), fps=10.0, audio=None)
    # the ONNX export is reused from the test session's cache (a first export takes minutes)
    shared = Path(os.environ["EMSYNC_CACHE_DIR"])
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY" and not k.startswith("XDG_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"), XDG_STATE_HOME=str(home / ".local/state"),
               EMSYNC_CACHE_DIR=str(shared), MPLCONFIGDIR=str(cache / "matplotlib"), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = _tree(tmp_path)
    for argv in (["generate", "--duration", "1", "-o", "out/x.mid"],
                 ["analyze", str(film), "--json", "out/a.json", "--png", "out/a.png", "-q"]):
        r = subprocess.run([sys.executable, "-m", "emsync_bridge", *argv], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    # and the daemon: up, answering, shut down over OSC
    from emsync_bridge.bridge.osc import BridgeClient
    from harness.reliability import free_udp_port, wait_for

    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, "-m", "emsync_bridge", "serve", "--spool", str(tmp_path / "spool"),
                             "--osc-port", str(port), "--reaper-port", str(free_udp_port())], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with BridgeClient(port=port, timeout=0.5) as c:
            def up():
                try:
                    return c.status()
                except Exception:
                    return None
            assert wait_for(up, 120.0), "the daemon did not answer"
            c.send("/emsync/shutdown")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    new = _tree(tmp_path) - before
    allowed = {"cwd/out/x.mid", "cwd/out/x.json", "cwd/out/a.json", "cwd/out/a.png"}
    caches = ("cache/matplotlib/", "home/.cache/emsync-bridge/")  # matplotlib's fonts; our video-analysis cache
    strays = {p for p in new if p not in allowed and not p.startswith(caches + ("spool/",))}
    assert not strays, f"written outside the outputs and the cache: {sorted(strays)}"
    assert not (home / ".cache" / "Microsoft").exists()
    modes = {(cwd / p.removeprefix("cwd/")).stat().st_mode & 0o777 for p in allowed}
    assert len(modes) == 1, f"outputs have different modes: {modes}"


# ---------------------------------------------------------------- hypothesis: no traceback, ever

SPECIAL = ["", " ", "-1", "0", "1", "-0", "65536", "70000", "1e9", "1e309", "-1e309", "nan", "inf", "-inf", "0x10",
           "1e-320", "4294967296", "9" * 40, "a,b", ",", "3,-1", "..", "/", "/dev/null", "/dev/zero", "\x00",
           "é", "default", "emsync-small", "off", "both", "live", "commit", "joy", "-", "x.json", "x.png", "x.mid"]


def _values():
    from hypothesis import strategies as st

    special = st.sampled_from(SPECIAL)
    return st.one_of(special, special, special, st.text(max_size=12),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.integers(min_value=-2**70, max_value=2**70).map(str),
                     st.sampled_from(["FILE", "DIR", "VIDEO", "MISSING/x", "FILE/x"]))


def _argv_for(command):
    from hypothesis import strategies as st

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    opts = sorted(s for a in sub._actions for s in a.option_strings if s.startswith("--") and s != "--help")
    n_pos = sum(1 for a in sub._actions if not a.option_strings)
    option = st.tuples(st.sampled_from(opts), _values()).map(list) if opts else st.just([])
    flag = st.sampled_from(opts).map(lambda o: [o]) if opts else st.just([])
    return st.tuples(st.lists(_values(), min_size=0, max_size=n_pos + 1),
                     st.lists(st.one_of(option, flag), max_size=5)).map(
        lambda t: [command, *t[0], *[x for part in t[1] for x in part]])


COMMANDS = ["generate", "score", "demo", "analyze", "serve", "panel", "export", "bench", "bench-live", "doctor",
            "ports", "train", "import-checkpoint"]
CI_EXAMPLES = int(os.environ.get("EMSYNC_HYPOTHESIS_EXAMPLES", "30"))  # x 13 commands: ~400 in CI


def _materialise(argv, root: Path):
    """Placeholders -> real paths inside `root` (a file, a folder, a video, missing ones)."""
    names = {"FILE": root / "afile", "DIR": root / "adir", "VIDEO": root / "v.mp4", "MISSING/x": root / "missing" / "x",
             "FILE/x": root / "afile" / "x"}
    return [str(names[a]) if a in names else a for a in argv]


@pytest.mark.parametrize("command", COMMANDS)
def test_no_argument_makes_a_traceback(command, tmp_path, no_work, capsys, video):
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings

    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    shutil.copy(video, tmp_path / "v.mp4")
    cwd = os.getcwd()
    outcomes: dict[str, int] = {}

    @settings(max_examples=CI_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_argv_for(command))
    def check(argv):
        argv = _materialise(argv, tmp_path)
        os.chdir(tmp_path / "adir")  # relative outputs land in the temp tree
        try:
            rc, err = run(argv, capsys)
        finally:
            os.chdir(cwd)
        outcomes[str(rc)] = outcomes.get(str(rc), 0) + 1
        assert "Traceback" not in err, (argv, err)
        assert rc in (0, 1, 2, "work"), (argv, rc, err)
        if rc in (1, 2):
            assert err.strip() and len(err.strip().splitlines()) == 1, (argv, err)

    check()
    report(f"cli:{command}", outcomes)


def report(name: str, outcomes: dict) -> None:
    """For benchmarks/cli_fuzz.py: how many examples ran and how they ended (one JSON line)."""
    path = os.environ.get("EMSYNC_HYPOTHESIS_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"test": name, "examples": sum(outcomes.values()), "outcomes": outcomes}) + "\n")
