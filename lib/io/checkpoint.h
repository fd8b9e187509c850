// checkpoint.h — the one checkpoint format (formats/checkpoint.md): a self-describing HDF5 file
// holding the architecture, the weights by module, provenance and optionally the full
// training state for an exact resume.
#pragma once
#include "nn/vit.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ufo {

namespace h5 { class File; }

struct Provenance {
    std::string tool, command;
    std::string parent;              // checkpoint this one was made from ("" = none)
    uint64_t parent_checksum = 0;    // fnv1a of the parent file's bytes
    std::string parent_arch;         // the sub-architecture of the parent this was cut from
    // Tensor name -> the parent tensor it was copied from (ufo-extract); stored as the
    // tensor's "source" attribute.
    std::map<std::string, std::string> sources;
    // More root attributes (name, value), e.g. a distillation's teacher and settings.
    std::vector<std::pair<std::string, std::string>> attrs;
};

// Everything besides the weights that a bit-exact resume needs.
struct TrainState {
    uint64_t step = 0;
    uint64_t seed = 0;
    std::vector<float> adam_m, adam_v;   // flat, parameter layout order
    // Running sums of the log interval that was open when the checkpoint was written.
    double log_loss_sum = 0;
    int64_t log_correct = 0, log_count = 0, log_steps = 0;
    struct TaskLog { double loss_sum = 0; int64_t correct = 0, count = 0, steps = 0; };
    std::vector<TaskLog> task_logs;      // the same for tasks 2.. of a multi-task run
    std::string train_options;           // JSON of the training options, for the record
    bool routes_frozen = false;          // supernets: routes fixed by --route-freeze-at
};

struct LoadedCheckpoint {
    std::string kind;                    // "dense", "supernet", "subnet", "elastic" (ViT) or "cnn"
    std::string path;
    std::unique_ptr<Network> net;
    bool has_train_state = false;
    TrainState state;
    Provenance provenance;
    // The ViT inside; "<path>: is a cnn checkpoint, not a ViT" for another family.
    ViT& vit() const;
};

// "a dense checkpoint", "an elastic checkpoint": for messages.
std::string kind_phrase(const std::string& kind);

// Reads and validates (format name/version, every shape against the architecture, dtypes).
LoadedCheckpoint load_checkpoint(const std::string& path, bool want_train_state = false);
// Architecture only (cheap): for --resume compatibility checks.
ViTConfig read_architecture(const std::string& path);
// Atomic: temp file + rename. zstd_level 0 writes uncompressed.
void save_checkpoint(const std::string& path, const std::string& kind, const Network& m,
                     const Provenance& prov, const TrainState* state, int zstd_level = 0);

// A ViT's /arch group (and the root /@tasks) as a checkpoint stores it, for other files that
// describe a model's architecture (ufo-search's predictor files). The reader validates.
void write_vit_arch(h5::File& f, const ViTConfig& c);
ViTConfig read_vit_arch(const h5::File& f);

}  // namespace ufo
