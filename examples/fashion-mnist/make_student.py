#!/usr/bin/python3
"""Write the untrained student the distillation demo starts from: a 784-64-10 MLP
(Flatten, Gemm, Relu, Gemm) over the same [N,1,28,28] input as the teacher, with
PyTorch's default initialisation (uniform +-1/sqrt(fan_in)) from a fixed seed.

    /usr/bin/python3 examples/fashion-mnist/make_student.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(0)

    def uniform(shape, fan_in):
        b = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-b, b, size=shape).astype(np.float32)

    inits = [
        numpy_helper.from_array(uniform((64, 784), 784), "fc1.weight"),
        numpy_helper.from_array(uniform((64,), 784), "fc1.bias"),
        numpy_helper.from_array(uniform((10, 64), 64), "fc2.weight"),
        numpy_helper.from_array(uniform((10,), 64), "fc2.bias"),
    ]
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["a"], name="relu"),
        helper.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "student_mlp",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="kdcc examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, "student_mlp.onnx"))


if __name__ == "__main__":
    main()
