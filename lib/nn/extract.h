// extract.h — cutting standalone sub-networks out of a Task-MoE supernet or an elastic model.
// Tensors are matched by role (block, FFN set, task), never by name.
#pragma once
#include "nn/vit.h"

#include <map>
#include <memory>
#include <string>

namespace ufo {

// Sub-network tensor name -> the supernet tensor it was copied from.
using SourceMap = std::map<std::string, std::string>;

// Task `task`'s sub-network along its route (cfg.tasks[task].route): a plain ViT with one FFN
// per block and the task's head, whose logits equal the supernet's on that route. Records in
// *sources (when given) which supernet tensor each tensor came from.
std::unique_ptr<ViT> extract_task(const ViT& supernet, int task, SourceMap* sources);
// The shared branch: every block's shared FFN and no task head, as a backbone for new tasks.
std::unique_ptr<ViT> extract_shared(const ViT& supernet, SourceMap* sources);
// A sub-architecture (depth, per-block heads and FFN width; nn/elastic.h) as a standalone
// dense ViT with physically smaller tensors: the first heads of each block's q, k, v rows and
// projection columns, the first hidden units of fc1 rows and fc2 columns. Its logits equal
// the source's run with that Active, up to the summation order of the smaller products.
std::unique_ptr<ViT> extract_arch(const ViT& model, const Active& a, SourceMap* sources);

}  // namespace ufo
