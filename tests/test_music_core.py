"""Music core: vocabulary, MIDI <-> tokens, the transformer, generation bookkeeping, metrics."""

import math
import subprocess
import sys

import mido
import numpy as np
import pytest
import torch

from emsync_bridge.errors import EmsyncError
from emsync_bridge.music import metrics, vocab
from emsync_bridge.music.generate import (BoundaryTracker, Conditioning, EmotionSegment,
                                          SamplingConfig, generate)
from emsync_bridge.music.midi import Note, Score, read_midi, score_to_tokens, tokens_to_score, write_midi
from emsync_bridge.music.model import CONFIGS, build_model
from emsync_bridge.runtime.torch_engine import TorchEngine

POP909_TRACKS = {"MELODY": "strings", "BRIDGE": "guitar", "PIANO": "piano"}


# ------------------------------------------------------------------------------------ vocabulary

def test_vocabulary_indices_match_emsync():
    assert vocab.VOCAB_SIZE == 1011
    assert (vocab.PAD, vocab.START, vocab.BAR, vocab.CHORD) == (0, 1, 2, 3)
    assert vocab.timeshift(1) == 4 and vocab.timeshift(125) == 128
    assert vocab.note_off("bass", 21) == 129 and vocab.note_on("bass", 21) == 217
    assert vocab.note_off("drums", 21) == 305 and vocab.note_on("drums", 108) == 480
    assert vocab.note_off("guitar", 21) == 481 and vocab.note_on("guitar", 21) == 569
    assert vocab.note_off("piano", 21) == 657 and vocab.note_on("piano", 21) == 745
    assert vocab.note_off("strings", 21) == 833 and vocab.note_on("strings", 108) == 1008
    assert (vocab.LESS_INSTRUMENTS, vocab.MORE_INSTRUMENTS) == (1009, 1010)
    for tok in range(vocab.VOCAB_SIZE):
        ev = vocab.decode_token(tok)
        if ev.kind in ("on", "off"):
            assert getattr(vocab, f"note_{ev.kind}")(ev.instrument, ev.pitch) == tok
    with pytest.raises(ValueError):
        vocab.decode_token(1011)


def test_long_gaps_become_repeated_shifts():
    assert vocab.timeshift_tokens(300) == [128, 128, vocab.timeshift(50)]


# ----------------------------------------------------------------------------- MIDI <-> tokens

def _match_notes(orig, decoded, tol=vocab.TICK_S):
    by_key = {}
    for n in decoded:
        by_key.setdefault((n.instrument, n.pitch), []).append(n)
    worst = 0.0
    for n in orig:
        cands = [m for m in by_key.get((n.instrument, n.pitch), []) if abs(m.start - n.start) <= tol]
        assert cands, f"note lost in round trip: {n}"
        worst = max(worst, min(max(abs(m.start - n.start), abs(m.end - n.end)) for m in cands))
    return worst


def test_round_trip_pop909_within_8ms(pop909_dir, tmp_path):
    files = sorted(pop909_dir.glob("*/[0-9][0-9][0-9].mid"))[:20]
    assert len(files) == 20
    worst = 0.0
    for f in files:
        score = read_midi(f, POP909_TRACKS)
        assert score.downbeats, "POP909 files carry tempo and meter: BAR tokens expected"
        tokens = score_to_tokens(score)
        assert tokens.count(vocab.BAR) == len(score.downbeats)
        back = tokens_to_score(tokens)
        assert len(back.notes) == len(score.notes)
        worst = max(worst, _match_notes(score.notes, back.notes))
        # and through a real file on disk
        write_midi(back, tmp_path / "rt.mid")
        reread = read_midi(tmp_path / "rt.mid")
        assert all(vocab.MIN_PITCH <= n.pitch <= vocab.MAX_PITCH for n in reread.notes)
        assert len(reread.notes) == len(back.notes)
    assert worst <= vocab.TICK_S + 1e-9


def test_written_midi_has_named_tracks_programs_and_drum_channel(tmp_path):
    notes = [Note("bass", 40, 0.0, 1.0), Note("drums", 36, 0.0, 0.1), Note("piano", 60, 0.5, 1.0),
             Note("guitar", 64, 0.5, 1.0), Note("strings", 72, 0.0, 2.0)]
    write_midi(Score(notes=notes, duration=2.0), tmp_path / "x.mid")
    mid = mido.MidiFile(tmp_path / "x.mid")
    assert mid.type == 1
    names = [m.name for t in mid.tracks for m in t if m.type == "track_name"]
    assert names == [f"EmSync {i}" for i in vocab.INSTRUMENTS]
    drum_ons = [m for t in mid.tracks for m in t if m.type == "note_on" and m.note == 36]
    assert drum_ons and all(m.channel == 9 for m in drum_ons)
    programs = {m.channel: m.program for t in mid.tracks for m in t if m.type == "program_change"}
    assert programs[0] == 32 and programs[1] == 25 and programs[3] == 48
    assert abs(mid.length - 2.0) < 0.01


def test_chord_tokens_before_long_chords_only():
    beat = 0.5
    long_chord = [Note("piano", p, 1.0, 1.0 + 2 * beat) for p in (60, 64, 67)]
    short_chord = [Note("piano", p, 3.0, 3.0 + beat) for p in (60, 64, 67)]
    tokens = score_to_tokens(Score(notes=long_chord + short_chord, duration=4.0), with_bars=False)
    assert tokens.count(vocab.CHORD) == 1
    i = tokens.index(vocab.CHORD)
    t = sum(vocab.shift_ticks(x) for x in tokens[:i]) * vocab.TICK_S
    assert abs(t - 1.0) < 1e-9
    assert vocab.decode_token(tokens[i + 1]).kind == "on"


def test_decoder_never_leaves_notes_open_and_accents_chords():
    on, off = vocab.note_on, vocab.note_off
    tokens = [vocab.CHORD, on("piano", 60), on("bass", 40), vocab.timeshift(50), off("piano", 60),
              off("guitar", 50),  # stray OFF: ignored
              on("piano", 62), vocab.timeshift(10), on("piano", 62)]  # retrigger, then left open
    score = tokens_to_score(tokens, end_time=1.0)
    assert {(n.instrument, n.pitch) for n in score.notes} == {("piano", 60), ("bass", 40), ("piano", 62)}
    assert all(n.end <= 1.0 + 1e-9 and n.end > n.start for n in score.notes)
    first = [n for n in score.notes if n.pitch == 60][0]
    assert first.velocity == 120
    assert [n for n in score.notes if n.pitch == 40][0].velocity == 80  # bass is not accented
    assert len([n for n in score.notes if n.pitch == 62]) == 2


@pytest.mark.parametrize("content", [b"", b"not a midi file at all", b"MThd\x00\x00\x00\x06\x00"])
def test_malformed_midi_is_a_clear_error(tmp_path, content):
    p = tmp_path / "bad.mid"
    p.write_bytes(content)
    with pytest.raises(EmsyncError, match="MIDI"):
        read_midi(p)
    with pytest.raises(EmsyncError, match="not found"):
        read_midi(tmp_path / "missing.mid")


# ----------------------------------------------------------------------------------------- model

def test_official_config_parameter_count_and_names():
    model = build_model("emsync-37m")
    assert model.num_parameters() == 37_178_355
    sd = model.state_dict()
    expected = {
        "positional_encoding": (1, 1216, 256), "embedding.weight": (1011, 512),
        "fc_conditions.0.0.weight": (256, 1), "fc_conditions.1.2.weight": (512, 256),
        "null_conditions.0": (1, 512), "null_conditions.1": (1, 512),
        "ff_times_to_chord.0.weight": (128, 1), "ff_times_to_chord.2.weight": (256, 128),
        "fc.weight": (1011, 512), "fc.bias": (1011,),
        "enc_layers.10.rga.E": (1216, 64), "enc_layers.0.rga.Wq.weight": (512, 512),
        "enc_layers.3.FFN_pre.weight": (2048, 512), "enc_layers.3.FFN_suf.weight": (512, 2048),
        "enc_layers.7.layernorm2.bias": (512,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert len(sd) == 18 + 11 * 17  # top-level keys + per-layer keys (E, 4 linears, 2 FFN, 2 LN)


def test_kv_cache_gives_the_full_pass_logits():
    torch.manual_seed(0)
    model = build_model("emsync-small").eval()
    T = 200
    tokens = torch.randint(4, 1011, (1, T))
    b = torch.rand(1, T) * 8
    v, a = torch.tensor([0.3]), torch.tensor([math.nan])  # a missing arousal uses the null vector
    with torch.no_grad():
        full, _ = model(tokens, b, v, a)
        logits, past = model(tokens[:, :50], b[:, :50], v, a)
        steps = [logits]
        for t in range(50, T):
            out, past = model(tokens[:, t:t + 1], b[:, t:t + 1], past=past)
            steps.append(out)
    assert (full - torch.cat(steps, 1)).abs().max().item() <= 1e-4


def test_conditioning_changes_the_output():
    torch.manual_seed(0)
    model = build_model("emsync-small").eval()
    tokens = torch.randint(4, 1011, (1, 20))
    with torch.no_grad():
        hi, _ = model(tokens, torch.full((1, 20), 8.0), torch.tensor([0.8]), torch.tensor([0.8]))
        lo, _ = model(tokens, torch.full((1, 20), 8.0), torch.tensor([-0.8]), torch.tensor([-0.8]))
        near, _ = model(tokens, torch.full((1, 20), 0.0), torch.tensor([0.8]), torch.tensor([0.8]))
    assert (hi - lo).abs().max() > 1e-3 and (hi - near).abs().max() > 1e-3


# ------------------------------------------------------------------------------------ generation

def test_boundary_bookkeeping_on_hand_made_tokens():
    tr = BoundaryTracker([2.0, 5.0, 20.0])
    assert tr.b() == 2.0
    assert tr.advance(vocab.timeshift(125)) == pytest.approx(1.0)  # cursor 1.0
    tr.advance(vocab.CHORD)  # 1.0 s before the 2.0 target: not within (strictly) 1 s
    assert tr.hits()[0].hit_time is None
    tr.advance(vocab.timeshift(75))  # cursor 1.6
    assert tr.b() == pytest.approx(0.4)
    tr.advance(vocab.CHORD)
    assert tr.hits()[0].hit_time == pytest.approx(1.6)
    assert tr.b() == pytest.approx(3.4)  # the used target no longer counts
    for _ in range(4):
        tr.advance(vocab.timeshift(125))  # cursor 5.6: target 5.0 passed without a chord
    assert tr.hits()[1].hit_time is None
    assert tr.b() == 8.0  # next target 14.4 s away: clamped
    tr.advance(vocab.CHORD)  # 0.6 s after 5.0: still within 1 s, so it counts late
    assert tr.hits()[1].hit_time == pytest.approx(5.6)
    for _ in range(20):
        tr.advance(vocab.timeshift(125))
    assert tr.b() == 8.0  # nothing ahead


def test_emotion_curve_lookup():
    cond = Conditioning([EmotionSegment(0, 0.5, 0.1), EmotionSegment(4.0, -0.5, None)])
    assert cond.emotion_at(3.9) == (0.5, 0.1) and cond.emotion_at(4.0) == (-0.5, None)
    with pytest.raises(EmsyncError):
        Conditioning.constant(1.5, 0).validate(10)
    with pytest.raises(EmsyncError):
        Conditioning.constant(0, 0, [-1.0]).validate(10)


@pytest.fixture(scope="module")
def small_engine():
    torch.manual_seed(0)
    return TorchEngine(build_model("emsync-small"))


def test_same_seed_same_notes(small_engine):
    cond = Conditioning.constant(0.2, -0.3, [1.0])
    a = generate(small_engine, 2.0, cond, SamplingConfig(seed=7))
    b = generate(small_engine, 2.0, cond, SamplingConfig(seed=7))
    c = generate(small_engine, 2.0, cond, SamplingConfig(seed=8))
    assert a.tokens == b.tokens
    assert a.tokens != c.tokens
    assert a.tokens[0] == vocab.BAR


def test_reference_and_cached_decoders_agree_before_the_window_slides(small_engine):
    cond = Conditioning.constant(0.5, 0.5, [0.5, 1.5])
    a = generate(small_engine, 1.5, cond, SamplingConfig(seed=3), decoder="reference")
    b = generate(small_engine, 1.5, cond, SamplingConfig(seed=3), decoder="cached")
    assert a.tokens == b.tokens


def test_cached_decoder_slides_its_window():
    torch.manual_seed(0)
    cfg = CONFIGS["emsync-small"]
    from emsync_bridge.music.model_config import ModelConfig
    tiny = build_model(ModelConfig(**{**cfg.to_dict(), "context_len": 40}))
    engine = TorchEngine(tiny)
    gen = generate(engine, 1e9, Conditioning.constant(0, 0), SamplingConfig(seed=1), max_tokens=150)
    assert len(gen.tokens) == 150 and gen.truncated
    assert engine.cached_len <= 40


def test_excluded_instruments_are_never_played(small_engine):
    gen = generate(small_engine, 3.0, Conditioning.constant(0, 0), SamplingConfig(seed=2, instruments=("piano",)))
    played = {n.instrument for n in gen.score().notes}
    assert played <= {"piano"}


# --------------------------------------------------------------------------------------- metrics

def _chord(t, held=1.0, pitches=(60, 64, 67)):
    return [Note("piano", p, t, t + held) for p in pitches]


def test_long_chord_hit_rate_with_known_answers():
    notes = _chord(2.0) + _chord(6.3) + _chord(9.0, held=0.3)  # the last is too short
    notes += [Note("drums", 36, t, t + 0.1) for t in np.arange(0, 12, 0.5)]
    score = Score(notes=notes, duration=12.0)
    assert metrics.long_chords(score.notes) == [2.0, 6.3]
    rep = metrics.boundary_report(score, [2.0, 6.0, 9.0, 11.0])
    assert rep.hit_rate[0.25] == 0.25 and rep.hit_rate[0.5] == 0.5 and rep.hit_rate[1.0] == 0.5
    assert rep.mean_offset == pytest.approx(0.15)
    assert 0 < rep.random_rate[1.0] < 0.6


def test_notes_per_second_mode_and_entropy():
    c_major = [Note("piano", p, i * 0.5, i * 0.5 + 0.5) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])]
    a_minor = [Note("piano", p, i * 0.5, i * 0.5 + 0.5) for i, p in enumerate([57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57])]
    assert metrics.estimate_key(c_major)[:2] == ("C", "major")
    assert metrics.estimate_key(a_minor)[:2] == ("A", "minor")
    score = Score(notes=c_major + [Note("drums", 42, 0, 0.1)], duration=5.5)
    assert metrics.notes_per_second(score) == pytest.approx(12 / 5.5)
    assert metrics.notes_per_second(score, "drums") == pytest.approx(1 / 5.5)
    one_pc = [Note("piano", 60, 0, 1), Note("piano", 72, 1, 2)]
    assert metrics.pitch_class_entropy(one_pc) == 0.0
    assert metrics.pitch_class_entropy(c_major) > 2.0


# ------------------------------------------------------------------------------------------- CLI

def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "emsync_bridge.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_cli_generate_writes_midi_and_json(tmp_path):
    out = tmp_path / "g.mid"
    r = _cli("generate", "--duration", "4", "--valence", "0.5", "--arousal", "-0.2",
             "--boundaries", "1.5,3", "--seed", "1", "-o", str(out))
    assert r.returncode == 0, r.stderr
    import json
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["duration"] == 4.0 and len(report["boundaries"]) == 2
    assert report["tokens"][0] == vocab.BAR and report["wall_time"] > 0
    mid = mido.MidiFile(out)
    assert abs(mid.length - 4.0) < 1.0


@pytest.mark.parametrize("args,needle", [
    (["--valence", "3"], "valence must be within"),
    (["--only", "arousal,foo"], "unknown part(s) foo"),
    (["--valence-guidance", "-1"], "valence guidance"),
])
def test_evaluate_bad_options_one_line(tmp_path, args, needle):
    out = tmp_path / "e.json"
    proc = subprocess.run([sys.executable, "-m", "emsync_bridge.music.evaluate", "--seeds", "1", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and not out.exists()
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and needle in proc.stderr


def test_cli_generate_free_key_turns_the_mode_aid_off(tmp_path):
    import json

    from emsync_bridge.runtime import load_engine

    r = _cli("generate", "--duration", "6", "--valence", "0.8", "--seed", "4", "--free-key", "-o", str(tmp_path / "f.mid"))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["mode_from_valence"] is False
    from emsync_bridge.music.tempo_fit import fit_tempo

    engine, _ = load_engine(None)  # the same model, decoded in-process with the aid off and on
    cond = Conditioning.constant(0.8, None, tempo=fit_tempo([], None).tempo)  # the CLI's default --tempo auto
    free = generate(engine, 6.0, cond, SamplingConfig(seed=4, mode_from_valence=False))
    locked = generate(engine, 6.0, cond, SamplingConfig(seed=4))
    assert report["tokens"] == free.tokens != locked.tokens


@pytest.mark.parametrize("args,needle", [
    (["--valence", "2"], "valence"),
    (["--boundaries", "3,-1"], "non-negative"),
    (["--boundaries", "a,b"], "comma-separated"),
    (["--duration", "-5"], "duration"),
    (["--valence-guidance", "-1"], "valence guidance"),
    (["--model", "no-such-model"], "unknown model"),
])
def test_cli_generate_bad_values_one_line(tmp_path, args, needle):
    r = _cli("generate", "--duration", "2", *args, "-o", str(tmp_path / "x.mid"))
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_landing_and_holding_aids_for_boundaries():
    tr = BoundaryTracker([1.0], hold_s=1.0)
    tr.advance(vocab.timeshift(100))  # cursor 0.8
    # a 0.6 s shift would jump the 1.0 s target: it is shortened to land on it
    landed = tr.land(vocab.timeshift(75))
    assert vocab.shift_ticks(landed) == 25
    assert tr.land(vocab.CHORD) == vocab.CHORD and tr.land(vocab.timeshift(10)) == vocab.timeshift(10)
    tr.advance(landed)
    assert tr.b() == 0.0
    tr.advance(vocab.timeshift(50))  # 0.4 s late, not hit yet: still due (held at 0)
    assert tr.b() == 0.0
    tr.advance(vocab.timeshift(75))  # 1.0 s late: dropped
    assert tr.b() == 8.0
    emsync = BoundaryTracker([1.0])  # EMSYNC: no hold
    emsync.advance(vocab.timeshift(125))
    emsync.advance(vocab.timeshift(10))
    assert emsync.b() == 8.0


def test_valence_guidance_extrapolates_from_the_null_valence(small_engine):
    from emsync_bridge.music.generate import _decoder

    seq, bs = [vocab.MORE_INSTRUMENTS, vocab.BAR, vocab.timeshift(20)], [8.0, 8.0, 8.0]
    cond = small_engine.prefill(np.array(seq), np.array(bs, dtype=np.float32), 0.8, 0.1)
    null = small_engine.prefill(np.array(seq), np.array(bs, dtype=np.float32), None, 0.1)
    assert np.abs(cond - null).max() > 1e-4  # the valence slot matters
    guided = _decoder("cached", small_engine, 3.0).next_logits(seq, bs, 0.8, 0.1, True)
    np.testing.assert_allclose(guided, null + 3.0 * (cond - null), rtol=1e-5, atol=1e-4)
    # with no valence there is nothing to guide by: the plain logits
    plain = _decoder("cached", small_engine, 3.0).next_logits(seq, bs, None, 0.1, True)
    np.testing.assert_allclose(plain, null, rtol=1e-5, atol=1e-5)
    cond_v = Conditioning.constant(0.8, 0.0)
    guided_gen = generate(small_engine, 2.0, cond_v, SamplingConfig(seed=5, valence_guidance=3.0))
    plain_gen = generate(small_engine, 2.0, cond_v, SamplingConfig(seed=5, valence_guidance=1.0))
    assert guided_gen.tokens != plain_gen.tokens


class _CountingEngine:
    """The real engine, noting when the unguided twin is asked for logits (a spy, not a mock)."""

    def __init__(self, engine, events):
        self.engine, self.events = engine, events

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def twin(self):
        twin, events = self.engine.twin(), self.events

        class Twin(_CountingEngine):
            def prefill(self, *a):
                events.append("uncond")
                return self.engine.prefill(*a)

            def step(self, *a):
                events.append("uncond")
                return self.engine.step(*a)
        return Twin(twin, events)


def test_valence_guidance_runs_over_the_opening_and_after_each_valence_change(small_engine):
    plain = generate(small_engine, 6.0, Conditioning.constant(0.8, 0.0), SamplingConfig(seed=3))
    no_window = generate(small_engine, 6.0, Conditioning.constant(0.8, 0.0),
                         SamplingConfig(seed=3, valence_guidance=3.0, valence_guidance_s=0.0))
    assert no_window.tokens == plain.tokens  # a zero window is no guidance at all

    events: list = []
    cond = Conditioning([EmotionSegment(0.0, 0.8, 0.0), EmotionSegment(3.0, -0.8, 0.0)])
    generate(_CountingEngine(small_engine, events), 6.0, cond,
             SamplingConfig(seed=3, valence_guidance=3.0, valence_guidance_s=1.0),
             on_token=lambda tok, cursor: events.append(cursor))
    cursor, guided_at = 0.0, []  # the cursor when each guided token was chosen
    for e in events:
        if e == "uncond":
            guided_at.append(cursor)
        else:
            cursor = e
    change = next(e for e in events if e != "uncond" and e >= 3.0)
    assert guided_at and all(t < 1.0 or change <= t < change + 1.0 for t in guided_at)
    assert any(t < 1.0 for t in guided_at) and any(t >= change for t in guided_at)


def test_mode_steer_takes_the_tonic_from_the_first_notes_and_biases_the_other_mode():
    from emsync_bridge.music.generate import (MODE_BASS_RIVAL_PENALTY, MODE_BASS_TONIC_BONUS, MODE_NOTES,
                                              MODE_PENALTY, ModeSteer)

    steer = ModeSteer()
    steer.hear(vocab.note_on("drums", 42))  # drums have no pitch class
    for pitch in (48, 60, 64, 67)[:MODE_NOTES]:
        assert steer.bias(0.8) is None  # no key before the first notes
        steer.hear(vocab.note_on("piano", pitch))
    assert steer.tonic == 0  # C
    steer.hear(vocab.note_on("piano", 61))  # later notes do not move the tonic
    assert steer.tonic == 0

    rows = {name: i for i, name in enumerate(vocab.INSTRUMENTS)}
    pc = (np.arange(vocab.N_PITCHES) + vocab.MIN_PITCH) % 12

    def nats(valence, instrument, pitch_classes):
        return set(np.round(steer.bias(valence)[rows[instrument], np.isin(pc, pitch_classes)], 6))

    light = round(-MODE_PENALTY * 0.8, 6)
    for inst in ("bass", "guitar", "piano", "strings"):
        assert nats(0.8, inst, (1, 3, 6, 8, 10)) == {light}  # out of C major
        assert nats(-0.8, inst, (1, 4, 6, 9)) == {light}  # out of C minor (harmonic minor's B allowed)
    for inst in ("guitar", "piano", "strings"):  # no tonic boost: the model picks the chords
        assert nats(0.8, inst, (0, 2, 4, 5, 7, 9, 11)) == {0.0}
        assert nats(-0.8, inst, (0, 2, 3, 5, 7, 8, 10, 11)) == {0.0}
    # the bass only leans away from the relative key's tonic (A under C major, Eb under C minor)
    # and lightly toward the tonic's root (C)
    relative, root = round(-MODE_BASS_RIVAL_PENALTY * 0.8, 6), round(MODE_BASS_TONIC_BONUS * 0.8, 6)
    assert 0 < root < -relative
    assert nats(0.8, "bass", (9,)) == {relative} and nats(0.8, "bass", (0,)) == {root}
    assert nats(0.8, "bass", (2, 4, 5, 7, 11)) == {0.0}
    assert nats(-0.8, "bass", (3,)) == {relative} and nats(-0.8, "bass", (0,)) == {root}
    assert nats(-0.8, "bass", (2, 5, 7, 8, 10, 11)) == {0.0}
    assert not steer.bias(0.8)[rows["drums"]].any()
    assert steer.bias(0.1) is None and steer.bias(None) is None  # near-neutral valence: model alone


def test_mode_steer_leans_the_bass_only_while_the_music_drifts_to_the_relative_key():
    from emsync_bridge.music.generate import ModeSteer

    rows = {name: i for i, name in enumerate(vocab.INSTRUMENTS)}
    pc = (np.arange(vocab.N_PITCHES) + vocab.MIN_PITCH) % 12

    def bass_a(steer):  # the bass's nats on A (the relative minor's tonic under C major)
        return set(np.round(steer.bias(0.8)[rows["bass"], pc == 9], 6))

    def triad(*pitches):
        return [vocab.note_on("bass", pitches[0] - 24)] + [vocab.note_on("piano", p) for p in pitches]

    c_major, a_minor = triad(60, 64, 67), triad(57, 60, 64)
    steer = ModeSteer(tonic=0)
    assert steer.drifting(0.8) == 9 and bass_a(steer) != {0.0}  # nothing heard yet: lean from the relative key
    steer.listen(c_major, 4.0)  # C major clearly sounding: the bass may play A (vi)
    steer.listen(triad(65, 69, 72), 1.0)  # IV
    assert steer.drifting(0.8) is None and bass_a(steer) == {0.0}
    steer.listen(a_minor, 6.0)  # A minor takes over: the lean is back
    assert steer.drifting(0.8) == 9 and bass_a(steer) != {0.0}
    steer.listen(c_major, 10.0)  # and the A minor fades (MODE_MEMORY_S)
    assert steer.drifting(0.8) is None
    steer.listen([vocab.note_on("drums", 36)] * 20, 10.0)  # drums are no pitch class
    assert steer.drifting(0.8) is None
    # under C minor: secure on Cm; drifting to the relative Eb major, or to Bb major (bVII, the
    # drift measured in generated minor pieces) -- the bass then leans away from that key's tonic
    minor = ModeSteer(tonic=0)
    minor.listen(triad(60, 63, 67), 5.0)
    assert minor.drifting(-0.8) is None
    minor.listen(triad(63, 67, 70), 8.0)
    assert minor.drifting(-0.8) == 3
    bvii = ModeSteer(tonic=0)
    bvii.listen(triad(58, 62, 65) + triad(63, 67, 70) + triad(65, 68, 72), 6.0)  # Bb, Eb, Fm
    assert bvii.drifting(-0.8) == 10
    row = bvii.bias(-0.8)[rows["bass"]]
    assert row[pc == 10].max() < row[pc == 3].min() <= 0.0 < row[pc == 0].min()


@pytest.mark.parametrize("tonic", range(12))
def test_tonic_chord_is_the_wanted_mode_in_register(tonic):
    from emsync_bridge.music.generate import ModeSteer

    steer = ModeSteer(tonic)
    for valence, third in ((0.8, 4), (-0.8, 3)):
        evs = [vocab.decode_token(t) for t in steer.chord(valence)]
        assert [e.kind for e in evs] == ["on"] * 4
        bass, *triad = evs
        assert bass.instrument == "bass" and 28 <= bass.pitch <= 39 and bass.pitch % 12 == tonic
        assert all(e.instrument == "piano" for e in triad) and 55 <= triad[0].pitch <= 66
        assert [e.pitch - triad[0].pitch for e in triad] == [0, third, 7] and triad[0].pitch % 12 == tonic


def test_a_fresh_piece_opens_on_its_tonic_chord_and_a_mode_change_re_primes(small_engine):
    from emsync_bridge.music.generate import EmotionSegment

    cond = Conditioning([EmotionSegment(0.0, 0.8, 0.0), EmotionSegment(2.0, -0.8, 0.0)], [])
    gen = generate(small_engine, 4.0, cond, SamplingConfig(seed=5))
    evs = [vocab.decode_token(t) for t in gen.tokens]
    opening = [e for e in evs[1:5]]
    assert evs[0].kind == "bar" and all(e.kind == "on" for e in opening)
    tonic = opening[0].pitch % 12
    assert {(e.pitch - tonic) % 12 for e in opening} == {0, 4, 7}  # major at valence +0.8
    # at the change to -0.8 (the first token at or after 2 s): the same tonic, minor
    tick, change = 0, None
    for i, t in enumerate(gen.tokens):
        tick += vocab.shift_ticks(t)
        if tick * vocab.TICK_S >= 2.0:
            change = i + 1
            break
    chord = [vocab.decode_token(t) for t in gen.tokens[change:change + 4]]
    assert [e.kind for e in chord] == ["on"] * 4 and chord[0].instrument == "bass"
    assert {(e.pitch - tonic) % 12 for e in chord} == {0, 3, 7}
    free = generate(small_engine, 4.0, cond, SamplingConfig(seed=5, mode_from_valence=False))
    assert vocab.decode_token(free.tokens[1]).kind != "on" or free.tokens[1:5] != gen.tokens[1:5]


def test_a_splice_keeps_the_key_of_the_music_before_it(small_engine):
    from emsync_bridge.music.generate import ModeSteer

    # a primer that opens on a C chord, then stays in A minor: the splice's key is the primer's
    primer = [vocab.BAR] + [vocab.note_on("piano", p) for p in (60, 64, 67, 72)]
    for _ in range(6):
        primer += [vocab.note_on("bass", 45), vocab.note_on("piano", 69), vocab.note_on("piano", 72),
                   vocab.note_on("piano", 76), vocab.note_on("piano", 68), vocab.timeshift(30)]
    steer = ModeSteer()
    for tok in primer:
        steer.hear(tok, settle=False)
    steer.settle()
    assert steer.tonic == 9  # A, not the C of the first four notes
    gen = generate(small_engine, 4.0, Conditioning.constant(0.8, 0.0), SamplingConfig(seed=2), primer=primer)
    added = [vocab.decode_token(t) for t in gen.tokens[len(primer):]]
    pcs = [ev.pitch % 12 for ev in added if ev.kind == "on" and ev.instrument != "drums"]
    # an untrained model, steered lightly, leans to A major: more in-scale notes than its 7/12
    assert pcs and np.mean([(pc - 9) % 12 in (0, 2, 4, 5, 7, 9, 11) for pc in pcs]) > 0.7


def test_mode_bias_changes_which_pitch_not_whether_or_on_what_a_note_is_played():
    from emsync_bridge.music.generate import ModeSteer, Sampler

    steer = ModeSteer()
    for pitch in (48, 60, 64, 67):
        steer.hear(vocab.note_on("piano", pitch))
    logits = np.random.default_rng(0).normal(0, 1, vocab.VOCAB_SIZE)
    plain, biased = Sampler(SamplingConfig(seed=1, top_p=1.0, temperature=1.0)), Sampler(SamplingConfig(seed=1, top_p=1.0, temperature=1.0))
    a = np.array([plain(logits) for _ in range(3000)])
    b = np.array([biased(logits, bias=steer.bias(0.8)) for _ in range(3000)])
    ons = {i: [vocab.note_on(i, p) for p in range(vocab.MIN_PITCH, vocab.MAX_PITCH + 1)] for i in vocab.INSTRUMENTS}
    for inst, tokens in ons.items():  # each instrument plays as often as before
        assert abs(np.isin(a, tokens).mean() - np.isin(b, tokens).mean()) < 0.03, inst
    pitched = [t for i in ("bass", "guitar", "piano", "strings") for t in ons[i]]
    in_c_major = [vocab.note_on(i, p) for i in ("bass", "guitar", "piano", "strings")
                  for p in range(vocab.MIN_PITCH, vocab.MAX_PITCH + 1) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]
    share = lambda x: np.isin(x, in_c_major).sum() / np.isin(x, pitched).sum()  # noqa: E731
    assert share(a) < 0.65 and share(b) > 0.8  # 2 * 0.8 nats off the out-of-scale notes: a lean, not a lock


def test_a_part_silent_for_wake_s_is_woken_and_only_it():
    from emsync_bridge.music.generate import WAKE_NATS, WAKE_S, Sampler, _wake

    rows = {name: i for i, name in enumerate(vocab.INSTRUMENTS)}
    last_on = np.zeros(len(vocab.INSTRUMENTS))
    last_on[[rows["bass"], rows["piano"], rows["strings"], rows["drums"]]] = WAKE_S + 1.0
    assert _wake(last_on, WAKE_S + 2.0, WAKE_NATS) is not None
    wake = _wake(last_on, WAKE_S + 2.0, WAKE_NATS)  # the guitar has not played since 0
    assert wake[rows["guitar"]] == WAKE_NATS and wake.sum() == WAKE_NATS  # drums are never woken
    assert _wake(last_on, WAKE_S - 0.5, WAKE_NATS) is None  # nothing silent for WAKE_S yet

    logits = np.random.default_rng(0).normal(0, 1, vocab.VOCAB_SIZE)
    guitar = [vocab.note_on("guitar", p) for p in range(vocab.MIN_PITCH, vocab.MAX_PITCH + 1)]
    logits[guitar] -= 2.0  # a model that has all but dropped the guitar
    plain, woken = Sampler(SamplingConfig(seed=1, top_p=1.0, temperature=1.0)), Sampler(SamplingConfig(seed=1, top_p=1.0, temperature=1.0))
    a = np.isin([plain(logits) for _ in range(6000)], guitar).mean()
    b = np.isin([woken(logits, wake=wake) for _ in range(6000)], guitar).mean()
    assert b > 3 * a  # e^1.5 = 4.5 times as likely, before renormalising


@pytest.mark.parametrize("seed", range(6))
def test_a_splice_starts_with_a_note_not_a_rest(small_engine, seed):
    primer = [vocab.BAR, vocab.note_on("piano", 60), vocab.timeshift(60), vocab.note_off("piano", 60)]
    gen = generate(small_engine, 3.0, Conditioning.constant(0, 0), SamplingConfig(seed=seed, attack_at_start=True),
                   primer=primer)
    new = gen.tokens[len(primer):]
    first_on = next(i for i, t in enumerate(new) if vocab.decode_token(t).kind == "on")
    assert not any(vocab.is_timeshift(t) for t in new[:first_on])
    assert any(vocab.is_timeshift(t) for t in new[first_on:])  # time moves on after it


@pytest.mark.parametrize("seed", range(4))
def test_every_boundary_gets_a_held_chord(small_engine, seed):
    """The boundary aids on: each target gets a CHORD, three pitched notes on it, held >= 0.5 s
    (even from an untrained model, which on its own would almost never do so)."""
    targets = [0.7, 1.9, 3.1]
    gen = generate(small_engine, 4.0, Conditioning.constant(0, 0, targets), SamplingConfig(seed=seed))
    assert all(h.hit_time == pytest.approx(h.target, abs=vocab.TICK_S) for h in gen.hits)
    held = metrics.long_chords(gen.score().notes)
    # a group may start up to the 60 ms onset window early (a model note just before the cut)
    assert all(min(abs(t - c) for c in held) <= 0.06 + 1e-9 for t in targets), held


def test_emsync_exact_mode_skips_targets(small_engine):
    exact = SamplingConfig(seed=4, land_on_boundaries=False, hold_missed_boundaries=False, chord_on_boundaries=False)
    gen = generate(small_engine, 3.0, Conditioning.constant(0, 0, [1.37]), exact)
    assert gen.tokens == generate(small_engine, 3.0, Conditioning.constant(0, 0, [1.37]), exact).tokens


def test_every_release_is_of_a_sounding_note():
    from emsync_bridge.music.generate import NoteKeeper

    keeper = NoteKeeper()
    keeper.advance(vocab.note_on("strings", 60), 0.0)
    keeper.advance(vocab.note_on("strings", 64), 0.5)
    keeper.advance(vocab.note_on("piano", 48), 0.5)
    logits = np.zeros(vocab.VOCAB_SIZE)
    logits[vocab.note_off("strings", 61)] = 3.0  # the model "releases" a silent key
    out = keeper.redirect(logits)
    p = np.exp(logits - np.log(np.exp(logits).sum()))
    q = np.exp(out - np.log(np.exp(out[np.isfinite(out)]).sum()))
    silent_strings = [vocab.note_off("strings", k) for k in range(vocab.MIN_PITCH, vocab.MAX_PITCH + 1) if k not in (60, 64)]
    assert not q[silent_strings].any()
    # their probability went to the oldest sounding strings note; the others keep theirs
    assert q[vocab.note_off("strings", 60)] == pytest.approx(p[silent_strings].sum() + p[vocab.note_off("strings", 60)])
    assert q[vocab.note_off("strings", 64)] == pytest.approx(p[vocab.note_off("strings", 64)])
    assert q[vocab.CHORD] == pytest.approx(p[vocab.CHORD])
    # a boundary chord's sustained note is not a target: the next oldest is
    kept = keeper.redirect(logits, keep={vocab.note_on("strings", 60)})
    assert kept[vocab.note_off("strings", 64)] > 3.0
    # drums are never redirected; a note held RELEASE_S is due for release
    from emsync_bridge.music.generate import RELEASE_S
    assert keeper.due(RELEASE_S - 0.1) is None and keeper.due(RELEASE_S) == vocab.note_off("strings", 60)


def test_drum_hits_are_released_as_one_shots(small_engine):
    from emsync_bridge.music.generate import DRUM_RELEASE_S, NoteKeeper

    keeper = NoteKeeper()
    keeper.advance(vocab.note_on("drums", 42), 1.0)
    assert keeper.due(1.0 + DRUM_RELEASE_S - 0.01) is None
    assert keeper.due(1.0 + DRUM_RELEASE_S) == vocab.note_off("drums", 42)
    # in generated music no drum note rings past DRUM_RELEASE_S plus the one shift that may pass first
    notes = generate(small_engine, 20.0, Conditioning.constant(0.0, 0.8), SamplingConfig(seed=2)).score().notes
    drums = [n for n in notes if n.instrument == "drums"]
    assert drums and max(n.duration for n in drums) <= DRUM_RELEASE_S + 1.0 + 1e-6


def test_an_instrument_over_its_voices_releases_its_oldest_note(monkeypatch):
    import emsync_bridge.music.generate as G

    monkeypatch.setattr(G, "VOICES", {**G.VOICES, "bass": 1, "strings": 2, "piano": None})
    keeper = G.NoteKeeper()
    keeper.advance(vocab.note_on("bass", 40), 0.0)
    for k, p in enumerate((60, 64, 67)):
        keeper.advance(vocab.note_on("strings", p), 0.1 * k)
    for p in range(48, 56):  # no limit: never released for its count
        keeper.advance(vocab.note_on("piano", p), 0.0)
    assert keeper.due(0.3) == vocab.note_off("strings", 60)  # three strings over two: the oldest goes
    # a boundary chord's held note is not stolen: the next oldest is
    assert keeper.due(0.3, keep={vocab.note_on("strings", 60)}) == vocab.note_off("strings", 64)
    keeper.advance(vocab.note_off("strings", 60), 0.3)
    assert keeper.due(0.3) is None
    keeper.advance(vocab.note_on("bass", 43), 0.5)
    assert keeper.due(0.5) == vocab.note_off("bass", 40)
    # a re-struck key counts its age from the new onset
    keeper.advance(vocab.note_off("bass", 40), 0.5)
    keeper.advance(vocab.note_on("strings", 64), 0.6)
    keeper.advance(vocab.note_on("strings", 72), 0.7)
    assert keeper.due(0.7) == vocab.note_off("strings", 67)


def test_generated_music_keeps_to_each_instruments_voices(small_engine):
    from emsync_bridge.music.generate import VOICES

    # no boundaries: a boundary chord's notes are exempt while held (SUSTAIN_S), nothing else is
    gen = generate(small_engine, 20.0, Conditioning.constant(0.5, 0.5), SamplingConfig(seed=5))
    notes = gen.score().notes
    for inst, limit in VOICES.items():
        if limit is None:
            continue
        mine = [n for n in notes if n.instrument == inst]
        worst = max((sum(1 for m in mine if m.start <= n.start < m.end) for n in mine), default=0)
        assert worst <= limit, (inst, worst)


def test_the_decoder_releases_long_notes_in_the_token_stream(small_engine):
    from emsync_bridge.music.generate import RELEASE_S

    gen = generate(small_engine, 20.0, Conditioning.constant(0.0, 0.0), SamplingConfig(seed=3))
    tick, on_at = 0, {}
    for t in gen.tokens:
        ev = vocab.decode_token(t)
        tick += vocab.shift_ticks(t)
        if ev.kind == "on" and ev.instrument != "drums":
            on_at[(ev.instrument, ev.pitch)] = tick
        elif ev.kind == "off":
            on_at.pop((ev.instrument, ev.pitch), None)
        # checked before each token; one time shift (<= 1 s) may pass first
        assert all((tick - s) * vocab.TICK_S <= RELEASE_S + 1.0 + 1e-9 for s in on_at.values())


def test_unreleased_notes_are_let_go():
    from emsync_bridge.music.generate import MAX_NOTE_S, Generation
    on = vocab.note_on("strings", 60)
    gen = Generation(tokens=[on] + [vocab.timeshift(125)] * 20, duration=20.0, hits=[], wall_time=0.0,
                     decoder="cached", engine="t", provider="t", seed=0)
    (note,) = gen.score().notes
    assert note.start == 0.0 and note.end == MAX_NOTE_S


@pytest.mark.parametrize("numerator", [2, 3, 4])
def test_a_files_own_meter_at_tick_0_sets_the_bars(tmp_path, numerator):
    """The 4/4 default used to be sorted in with a file's time signature at tick 0 and win: a 2/4
    or 3/4 file got BAR tokens every 4 beats."""
    import mido

    from emsync_bridge.music.midi import read_midi, score_to_tokens

    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=4, time=0))
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 0.5 s per beat
    tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=480 * 12))
    mid.save(tmp_path / "m.mid")
    score = read_midi(tmp_path / "m.mid")
    assert np.allclose(np.diff(score.downbeats), 0.5 * numerator)
    bars = [i for i, t in enumerate(score_to_tokens(score)) if t == vocab.BAR]
    assert len(bars) == len(score.downbeats) == 12 // numerator + 1


def test_pop909_001_is_in_2_4(pop909_dir):
    from emsync_bridge.music.midi import read_midi

    score = read_midi(pop909_dir / "001" / "001.mid")
    assert len(score.beats) == 2 * len(score.downbeats)  # two beats a bar, as the file says
    assert score.downbeats[:8] == pytest.approx(score.beats[:16:2])
