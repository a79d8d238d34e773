"""Convert the TFLite YAMNet audio classifier into the ONNX file we ship (`audio-yamnet.onnx`).

    python scripts/build_audio_model.py yamnet.tflite OUT.onnx

YAMNet (Plakal & Ellis, tensorflow/models `research/audioset/yamnet`, Apache-2.0): a MobileNet V1
over 0.96 s log-mel patches, 521 AudioSet classes. The file converted is the TFLite-compatible
export whose front end (framing, Hann window, DFT, mel) is written as matrix products, stored in
GitHub Jaskaran197/Speaker-Detector (`yamnet.tflite`, commit 4ec29b6938f1051fe36b46786f8d486d8b74a38e,
sha256 469be6a3421cbc52cf97e9f2f966cba984198e8e7af9854d68b3e3ebb1e04194); see
`emsync_bridge/models/VIDEO_MODELS.md` for the provenance check. A build-time tool only (needs the
`tflite` flatbuffer package); nothing here runs in the product.

The graph is batched here: input float32 [N, 15600] (0.975 s of 16 kHz mono audio in −1..1), outputs
`scores` [N, 521] (sigmoid) and `embedding` [N, 1024]. int8 weights stay int8 (DequantizeLinear with
the file's per-tensor scale), so the ONNX file is the TFLite file's size; activations run in float32
(the TFLite hybrid kernels also quantize activations, so scores differ by that rounding only).
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WINDOW = 15600  # samples per patch: 96 frames of 25 ms, hop 10 ms, at 16 kHz


def dft_matrices(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary rows of the one-sided DFT: [n_fft // 2 + 1, n_fft]."""
    k = np.arange(n_fft // 2 + 1)[:, None] * np.arange(n_fft)[None, :]
    ang = 2 * np.pi * k / n_fft
    return np.cos(ang).astype(np.float32), (-np.sin(ang)).astype(np.float32)


def mel_matrix(n_mels: int, n_bins: int, rate: float = 16000.0, lo: float = 125.0, hi: float = 7500.0) -> np.ndarray:
    """tf.signal.linear_to_mel_weight_matrix (HTK mel, DC row zero) as YAMNet uses it, transposed: [n_mels, n_bins]."""
    def mel(f):
        return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)
    bins = mel(np.linspace(0.0, rate / 2, n_bins)[1:])[:, None]
    edges = np.linspace(mel(lo), mel(hi), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0.0, np.minimum((bins - lower) / (center - lower), (upper - bins) / (upper - center)))
    return np.vstack([np.zeros((1, n_mels)), w]).T.astype(np.float32)


def convert(src: str, dst: str) -> None:
    import tflite

    m = tflite.Model.GetRootAsModel(open(src, "rb").read(), 0)
    g = m.Subgraphs(0)
    names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    ops = []
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = m.OperatorCodes(op.OpcodeIndex())
        ops.append((names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())], op))

    def const(i):
        """(array, scale) of a constant tensor; scale None for float/int32 tensors."""
        t = g.Tensors(i)
        data = m.Buffers(t.Buffer()).DataAsNumpy()
        dtype = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.INT32: np.int32,
                 tflite.TensorType.INT8: np.int8}[t.Type()]
        arr = np.frombuffer(data.tobytes(), dtype).reshape(t.ShapeAsNumpy())
        q = t.Quantization()
        if t.Type() == tflite.TensorType.INT8:
            assert q.ScaleLength() == 1 and int(q.ZeroPointAsNumpy()[0]) == 0
            return arr, float(q.ScaleAsNumpy()[0])
        return arr, None

    kinds = [k for k, _ in ops]
    assert kinds[:19] == ["RESHAPE", "SLICE", "RESHAPE", "GATHER", "RESHAPE", "MUL", "PAD", "FULLY_CONNECTED",
                          "MUL", "FULLY_CONNECTED", "MUL", "ADD", "SQRT", "FULLY_CONNECTED", "LOG",
                          "STRIDED_SLICE", "RESHAPE", "GATHER", "RESHAPE"], kinds[:19]
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def dequant(name, arr, scale, transpose=None):
        """int8 weights kept int8 in the file, dequantized in the graph."""
        q = arr if transpose is None else arr.transpose(transpose)
        init(name + "_q", q)
        init(name + "_s", np.float32(scale))
        init(name + "_z", np.int8(0))
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"], [name]))
        return name

    # front end: the same framing, window, DFT and mel products as ops 0-18, with a batch axis
    frames_idx, _ = const(ops[3][1].Inputs(1))           # [96, 5] indices of 80-sample hops
    chunk = g.Tensors(ops[2][1].Outputs(0)).ShapeAsNumpy()  # [195, 80]
    window, _ = const(ops[5][1].Inputs(1))               # [1, 400]
    pads, _ = const(ops[6][1].Inputs(1))                 # [[0, 0], [56, 56]]
    re, re_s = const(ops[7][1].Inputs(1))                # [257, 512]
    im, im_s = const(ops[9][1].Inputs(1))
    mel, mel_s = const(ops[13][1].Inputs(1))             # [64, 257]
    mel_b, _ = const(ops[13][1].Inputs(2))               # [64]: the log offset
    begin, _ = const(ops[15][1].Inputs(1))
    end, _ = const(ops[15][1].Inputs(2))
    assert begin.tolist() == [0, 0] and end.tolist()[1] >= 64 and pads.tolist()[0] == [0, 0]
    n_frames, n_fft = frames_idx.shape[0], 400 + int(pads[1].sum())
    # The file stores the DFT and mel matrices as int8; their rounding noise (-48 dB) fills the
    # silent bands that YAMNet's float front end leaves at log(0.001) (the TFLite hybrid kernel hides
    # it by rounding its input to int8 too). So the exact float matrices go in, after checking that
    # the stored ones are these matrices rounded.
    dft_re, dft_im = dft_matrices(n_fft)
    mel_exact = mel_matrix(64, n_fft // 2 + 1)
    for name, exact, q, scale in (("DFT re", dft_re, re, re_s), ("DFT im", dft_im, im, im_s), ("mel", mel_exact, mel, mel_s)):
        err = np.abs(np.abs(exact) - np.abs(q.astype(np.float64) * scale)).max()
        assert err <= 0.51 * scale, (name, err, scale)
    init("chunk_shape", np.int64([-1, int(chunk[0]), int(chunk[1])]))
    init("frames_idx", frames_idx.astype(np.int64))
    init("frame_shape", np.int64([-1, n_frames, 400]))
    init("window", window.reshape(400).astype(np.float32))
    init("fft_pads", np.int64([0, 0, int(pads[1][0]), 0, 0, int(pads[1][1])]))
    init("patch_shape", np.int64([-1, 1, n_frames, 64]))
    nodes += [
        helper.make_node("Reshape", ["waveform", "chunk_shape"], ["chunks"]),
        helper.make_node("Gather", ["chunks", "frames_idx"], ["framed"], axis=1),
        helper.make_node("Reshape", ["framed", "frame_shape"], ["frames"]),
        helper.make_node("Mul", ["frames", "window"], ["windowed"]),
        helper.make_node("Pad", ["windowed", "fft_pads"], ["padded"]),
        helper.make_node("MatMul", ["padded", init("dft_re", dft_re.T)], ["spec_re"]),
        helper.make_node("MatMul", ["padded", init("dft_im", dft_im.T)], ["spec_im"]),
        helper.make_node("Mul", ["spec_re", "spec_re"], ["pow_re"]),
        helper.make_node("Mul", ["spec_im", "spec_im"], ["pow_im"]),
        helper.make_node("Add", ["pow_re", "pow_im"], ["power"]),
        helper.make_node("Sqrt", ["power"], ["magnitude"]),
        helper.make_node("MatMul", ["magnitude", init("mel", mel_exact.T)], ["mel_lin"]),
        helper.make_node("Add", ["mel_lin", init("mel_offset", mel_b.astype(np.float32))], ["mel_off"]),
        helper.make_node("Log", ["mel_off"], ["log_mel"]),
        helper.make_node("Reshape", ["log_mel", "patch_shape"], ["x0"]),  # NCHW: time × mel
    ]
    assert n_fft == 512 and re.shape == (257, 512)

    # MobileNet V1 body and classifier (ops 19-59)
    cur, dequantized = "x0", {}
    init("zero", np.float32(0))
    init("six", np.float32(6))
    acts = {tflite.ActivationFunctionType.RELU: ("zero", None), tflite.ActivationFunctionType.RELU6: ("zero", "six")}
    for k, (kind, op) in enumerate(ops[19:], start=19):
        p = f"l{k}"
        if kind == "DEQUANTIZE":
            arr, s = const(op.Inputs(0))
            dequantized[op.Outputs(0)] = (arr, s)
            continue
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            wi = op.Inputs(1)
            w, s = dequantized[wi] if wi in dequantized else const(wi)
            b, _ = const(op.Inputs(2))
            if kind == "CONV_2D":
                opt = tflite.Conv2DOptions()
                perm, group = (0, 3, 1, 2), 1          # OHWI -> OIHW
            else:
                opt = tflite.DepthwiseConv2DOptions()
                perm, group = (3, 0, 1, 2), w.shape[3]  # 1HWC -> C1HW
            opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            assert opt.Padding() == tflite.Padding.SAME
            lo, hi = acts[opt.FusedActivationFunction()]
            wname = dequant(p + "_w", w, s, perm) if s is not None else init(p + "_w", w.transpose(perm))
            nodes += [
                helper.make_node("Conv", [cur, wname, init(p + "_b", b)], [p + "_c"], group=int(group),
                                 auto_pad="SAME_UPPER", strides=[opt.StrideH(), opt.StrideW()],
                                 kernel_shape=[int(w.shape[1]), int(w.shape[2])]),
                helper.make_node("Clip", [p + "_c", lo] + ([hi] if hi else []), [p + "_y"]),
            ]
            cur = p + "_y"
        elif kind == "MEAN":
            nodes.append(helper.make_node("ReduceMean", [cur], ["embedding"], axes=[2, 3], keepdims=0))
            cur = "embedding"
        elif kind == "FULLY_CONNECTED":
            w, s = const(op.Inputs(1))
            b, _ = const(op.Inputs(2))
            nodes += [helper.make_node("MatMul", [cur, dequant("cls_w", w, s, (1, 0))], ["logits_nb"]),
                      helper.make_node("Add", ["logits_nb", init("cls_b", b)], ["logits"])]
            cur = "logits"
        elif kind == "LOGISTIC":
            nodes.append(helper.make_node("Sigmoid", [cur], ["scores"]))
        else:
            raise ValueError(f"unexpected op {kind}")
    graph = helper.make_graph(
        nodes, "yamnet",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N", WINDOW])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 521]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1024])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="emsync-bridge")
    model.ir_version = 8
    model.doc_string = "YAMNet (tensorflow/models research/audioset/yamnet, Apache-2.0), TFLite export converted"
    onnx.checker.check_model(model)
    onnx.save(model, dst)


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
