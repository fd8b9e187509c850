// extract.h — cutting standalone sub-networks out of a Task-MoE supernet.
#pragma once
#include "io/checkpoint.h"
#include "nn/model.h"

#include <memory>

namespace ufo {

// Task `task`'s sub-network along its route (cfg.tasks[task].route): a plain ViT with one FFN
// per block and the task's head, whose logits equal the supernet's on that route. Records in
// prov->sources which supernet tensor each tensor came from.
std::unique_ptr<Model> extract_task(const Model& supernet, int task, Provenance* prov);
// The shared branch: every block's shared FFN and no task head, as a backbone for new tasks.
std::unique_ptr<Model> extract_shared(const Model& supernet, Provenance* prov);

}  // namespace ufo
