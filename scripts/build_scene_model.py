"""Convert Coral's MobileNet V1 embedding extractor (TFLite, uint8) into the ONNX file we ship.

    python scripts/build_scene_model.py mobilenet_v1_1.0_224_quant_embedding_extractor.tflite OUT.onnx

Source: github.com/google-coral/test_data (Apache-2.0), commit 104342d2d3480b3e66203073dac24f4e2dbb4c41,
sha256 f409ef4f73fcbb9667841965623c5c8524aac33d41b9bf5f3667161fb4a76319. A build-time tool only
(needs the `tflite` flatbuffer package: `python -m pip install tflite`); nothing here runs in the
product. The graph is 14 conv + 13 depthwise-conv layers with fused ReLU6 and a final average pool.
Weights stay uint8 (DequantizeLinear with the file's scale and zero point, so the ONNX file is the
same size as the TFLite one); activations run in float32, so outputs differ from the fully
quantized TFLite run by its activation rounding only. Input: float32 [N, H, W, 3] RGB 0..255 (native 224 × 224; any size runs)
(the TFLite input's scale 1/128 and zero point 128 are applied in the graph); output [N, 1024].
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

    def tensor(i):
        t = g.Tensors(i)
        q = t.Quantization()
        data = m.Buffers(t.Buffer()).DataAsNumpy()
        dtype = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT32: np.int32}.get(t.Type())
        arr = None if isinstance(data, int) or dtype is None else np.frombuffer(data.tobytes(), dtype).reshape(t.ShapeAsNumpy())
        return arr, float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])

    nodes, inits = [], []
    _, in_scale, in_zp = tensor(g.Inputs(0))
    inits += [numpy_helper.from_array(np.float32([in_zp]), "in_zp"), numpy_helper.from_array(np.float32([in_scale]), "in_scale")]
    nodes += [
        helper.make_node("Transpose", ["image"], ["x_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Sub", ["x_nchw", "in_zp"], ["x_c"]),
        helper.make_node("Mul", ["x_c", "in_scale"], ["x0"]),
    ]
    cur = "x0"
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = m.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if kind == "AVERAGE_POOL_2D":
            nodes += [helper.make_node("GlobalAveragePool", [cur], ["pooled"]),
                      helper.make_node("Flatten", [cur.replace(cur, "pooled")], ["embedding"])]
            break
        w, w_scale, w_zp = tensor(op.Inputs(1))
        b, b_scale, _ = tensor(op.Inputs(2))
        if kind == "CONV_2D":
            opt = tflite.Conv2DOptions()
            opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            w_onnx, group = w.transpose(0, 3, 1, 2), 1  # OHWI -> OIHW
        elif kind == "DEPTHWISE_CONV_2D":
            opt = tflite.DepthwiseConv2DOptions()
            opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            w_onnx, group = w.transpose(3, 0, 1, 2), w.shape[3]  # 1HWC -> C1HW
        else:
            raise ValueError(f"unexpected op {kind}")
        assert opt.Padding() == tflite.Padding.SAME and opt.FusedActivationFunction() == tflite.ActivationFunctionType.RELU6
        p = f"l{k}"
        inits += [
            numpy_helper.from_array(np.ascontiguousarray(w_onnx), f"{p}_wq"),
            numpy_helper.from_array(np.float32(w_scale), f"{p}_ws"),
            numpy_helper.from_array(np.uint8(w_zp), f"{p}_wz"),
            numpy_helper.from_array((b.astype(np.float64) * b_scale).astype(np.float32), f"{p}_b"),
        ]
        nodes += [
            helper.make_node("DequantizeLinear", [f"{p}_wq", f"{p}_ws", f"{p}_wz"], [f"{p}_w"]),
            helper.make_node("Conv", [cur, f"{p}_w", f"{p}_b"], [f"{p}_c"], group=int(group), auto_pad="SAME_UPPER",
                             strides=[opt.StrideH(), opt.StrideW()], kernel_shape=list(w_onnx.shape[2:])),
            helper.make_node("Clip", [f"{p}_c", "zero", "six"], [f"{p}_y"]),
        ]
        cur = f"{p}_y"
    inits += [numpy_helper.from_array(np.float32(0), "zero"), numpy_helper.from_array(np.float32(6), "six")]
    graph = helper.make_graph(
        nodes, "mobilenet_v1_embedding",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1024])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="emsync-bridge")
    model.ir_version = 8
    model.doc_string = "MobileNet V1 1.0 224 embedding extractor (google-coral/test_data, Apache-2.0), converted"
    onnx.checker.check_model(model)
    onnx.save(model, dst)


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
