// onnx_model.h — a ufo network as an ONNX model (standard operators, opset 17) for deployment
// runtimes: ONNX Runtime, TensorRT, OpenVINO, vendor NPU toolchains.
//
// The graph takes the images ufo-infer takes: "images", uint8 [batch,H,W,C] (NHWC, 0..255, the
// layout of ufo datasets), with a dynamic batch dimension, and normalises them inside the graph.
// It returns "logits" and "probs" (softmax), float [batch,K], of one task.
//
// What it exports is a plain network: a ViT with one FFN per block (a dense model, a task
// sub-network, a sub-architecture with per-block sizes) or a CNN. Task-MoE supernets and
// elastic sub-architectures are cut to such a network first (nn/extract.h); ufo-export does so.
#pragma once
#include "nn/network.h"

#include <string>
#include <utility>
#include <vector>

namespace ufo {

inline constexpr int kOnnxOpset = 17;   // the first with LayerNormalization

struct OnnxMeta {
    std::string graph_name;                                  // e.g. "fashion"
    std::string doc;                                         // the model's doc_string
    std::vector<std::pair<std::string, std::string>> props;  // metadata_props, in order
};

struct OnnxModel {
    std::string bytes;      // the serialized ModelProto
    size_t weights = 0;     // floats stored as initializers (the task's head only)
    int nodes = 0;
};

// Task `task` of `m` as an ONNX model, checked with ONNX's own model checker. Of an elastic
// model the whole model is exported (its search space is not part of the graph). Throws
// ufo::Error naming `where` for a network it cannot express (a Task-MoE supernet: extract a
// task first) or a model whose protobuf would pass 2 GB.
OnnxModel export_onnx(const Network& m, int task, const OnnxMeta& meta, const std::string& where);

}  // namespace ufo
